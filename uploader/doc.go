// Package uploader moves one settled local file to the destination atomically:
// it writes a temporary name (Options.TempName, ".NAME.partial" by default)
// beside or just below the final name, hashes the file
// in the same read pass that feeds the upload (sha256 always, plus the
// configured md5 or xxh64), checks the size on the server (and, with
// verify = "hash", the server's sha256sum), lets the caller journal the rename
// intent, renames into place, then writes the checksum file NAME.sha256 /
// .md5 / .xxh64 the same way.
//
// Writes are pipelined: many SFTP write requests are in flight per file, and
// the uploader tracks which offsets the server acknowledged, so the contiguous
// acknowledged prefix can be checkpointed (Job.Checkpoint) and an interrupted
// upload resumed from it (Job.Resume) after truncating the partial there,
// never from the remote size. A server that refuses writes out of order is
// found on its first refusal (or by Probe) and gets every later file in order,
// still pipelined. Files share a small pool of SSH connections and one
// bandwidth limit that follows a time-of-day schedule.
//
// It speaks SFTP over SSH (host keys always checked against known_hosts) and
// file:// for a local or mounted folder. Every failure is returned as an
// *Error whose Code is one of the SPEC's failure reasons and whose Transient
// flag tells the caller whether to retry; Reason gives its sentence with the
// server's own words (SFTP status and message) beside it. The uploader itself
// never retries a failure; it only sends a file again at once when the
// server's refusal showed how to send it differently (in order, or from its
// start instead of a resumed partial).
//
// It is not a scheduler: it does not know about requests, journals or retry
// back-off. Those belong to the caller, which reaches this package only
// through its own small interface and stores the checkpoints it is given.
package uploader
