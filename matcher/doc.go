// Package matcher decides which Source Request a file fulfils and whether it may be delivered
// as it stands: naming rules for the File Bin, sidecar metadata, source type profiles, writers'
// checksum files and the portable-names policy (SPEC.md: Words, Folders, Matching).
//
// A Matcher is built once from rules, profiles and requests (New) and is then immutable and
// safe for concurrent use; a change to any of them is applied by building a new Matcher and
// re-evaluating the files that are not delivered yet. Evaluate judges one file and returns a
// Verdict: the request, a hold reason or nothing, the merged metadata with the source of every
// value, the effective profile, and a Trace that `hotdrop explain` prints. It never guesses: a
// name that fits several requests is held ambiguous_match, one that fits none is held
// no_matching_request with the nearest requests and how they differ.
//
// The package reads sidecars, checksum files and ready markers beside the file, and hashes the
// file only when asked (Input.VerifyChecksums, or Checksum.Verify). It does not watch, settle,
// count a request's files, upload, journal or report: those are the watcher's and the delivery
// engine's. It imports no other hotdrop package; cmd/hotdrop converts the config into Options.
package matcher
