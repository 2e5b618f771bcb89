package uploader

import (
	"os/exec"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestSSHDHashSessionsReused: with verify = "auto", every file is hashed on the
// server, but after the first (a one-shot exec session that proves the server
// runs commands) through a long-lived session that is kept and reused, also for
// names a shell would otherwise read as code.
func TestSSHDHashSessionsReused(t *testing.T) {
	s := sshdtest.Start(t)
	o := sshdOptions(s)
	o.Verify = VerifyAuto
	o.Connections = 1
	u := newUploader(t, o)
	names := []string{"h/first.wav", "h/it's.wav", "h/-dash.wav", "h/$(touch pwned).wav", "h/ spaced .wav", "h/ünï.wav"}
	for _, n := range names {
		j, data := localFile(t, 5000, n)
		res, err := u.Upload(t.Context(), j)
		if err != nil {
			t.Fatalf("Upload(%q): %v", n, err)
		}
		if res.Verified != VerifyHash || res.SHA256 != sum(data) {
			t.Errorf("Upload(%q) = verified %q, sha256 %s; want hash and %s", n, res.Verified, res.SHA256, sum(data))
		}
	}
	c := u.firstConn()
	c.hashers.mu.Lock()
	idle, count := len(c.hashers.idle), c.hashers.count
	c.hashers.mu.Unlock()
	if count != 1 || idle != 1 {
		t.Errorf("hashing sessions: %d open, %d idle; want one, kept for the next file", count, idle)
	}
	// A file of a few MiB is hashed with openssl where the server has it (its SHA
	// instructions make it several times cheaper than sha256sum); a failed try would
	// have turned it off for the connection.
	if _, err := exec.LookPath("openssl"); err == nil {
		j, data := localFile(t, opensslFrom, "h/it's large.mov")
		res, err := u.Upload(t.Context(), j)
		must(t, err)
		if res.Verified != VerifyHash || res.SHA256 != sum(data) || c.noOpenSSL.Load() {
			t.Errorf("large file: verified %q, sha256 %s, openssl off %v; want hash, %s, false", res.Verified, res.SHA256, c.noOpenSSL.Load(), sum(data))
		}
	}
}
