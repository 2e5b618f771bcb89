package uploader

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/cespare/xxhash/v2"
)

// Checksum kinds for Options.Checksum: the checksum file written beside a
// delivered file, in sha256sum format. sha256 itself is always computed, for
// status files and events.
const (
	ChecksumNone   = "none"
	ChecksumSHA256 = "sha256"
	ChecksumMD5    = "md5"
	ChecksumXXH64  = "xxh64" // xxHash64, as in ASC MHL; big-endian hex like xxhsum
)

// Verify modes for Options.Verify, and what Result.Verified reports.
const (
	// VerifyAuto (the default) uses the strongest check the server offers:
	// its hash where it has one, else the size; a resumed file is never
	// checked on its size alone (see VerifyReadback).
	VerifyAuto = "auto"
	VerifySize = "size" // the server's size of the partial equals the local size
	VerifyHash = "hash" // also sha256sum (or md5sum) over an SSH exec session
	// VerifyReadback is reported for a resumed file on a server that cannot
	// hash: the bytes below the resume offset, written by an earlier
	// attempt, were read back and hashed; the rest, sent and acknowledged
	// in this attempt, by size.
	VerifyReadback = "readback"
)

// hashes computes sha256 and, when configured, a second checksum from the
// same bytes in one pass.
type hashes struct {
	sha   hash.Hash
	extra hash.Hash // nil when the configured kind is sha256 or none
	kind  string
}

func newHashes(kind string) *hashes {
	h := &hashes{sha: sha256.New(), kind: kind}
	switch kind {
	case ChecksumMD5:
		h.extra = md5.New()
	case ChecksumXXH64:
		h.extra = xxhash.New()
	}
	return h
}

// Write feeds p to every hash; hash.Hash writes never fail.
func (h *hashes) Write(p []byte) {
	h.sha.Write(p)
	if h.extra != nil {
		h.extra.Write(p)
	}
}

// sums returns the sha256 and the configured checksum, lower-case hex.
func (h *hashes) sums() (sha, sum string) {
	sha = hex.EncodeToString(h.sha.Sum(nil))
	switch {
	case h.extra != nil:
		return sha, hex.EncodeToString(h.extra.Sum(nil))
	case h.kind == ChecksumSHA256:
		return sha, sha
	}
	return sha, ""
}

// checkChecksumKind accepts the kinds above; "" means none.
func checkChecksumKind(k string) error {
	switch k {
	case "", ChecksumNone, ChecksumSHA256, ChecksumMD5, ChecksumXXH64:
		return nil
	}
	return fmt.Errorf("destination checksum %q: want sha256, md5, xxh64 or none", k)
}
