package uploader

import (
	"crypto/md5"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// TestSSHDHashSessionTools: the hashing session hashes in one python3 process where the
// server has python3, and runs the tool per file where it has not or its python3 does not
// start. With python3 (and no
// openssl) OpenSSL's sha256 is still answered, which only python3 can have done; without
// it, only the tools the server has answer. A missing file is answered with a failure and
// the session stays in step.
func TestSSHDHashSessionTools(t *testing.T) {
	for _, tc := range []struct {
		name         string
		tools        []string
		brokenPython bool // a python3 that fails at once, beside the tools
		openssl      bool // whether opensslSHA256 is answered
	}{
		{"python3", []string{"sh", "sha256sum", "python3"}, false, true},
		{"shell", []string{"sh", "sha256sum", "md5sum"}, false, false},
		{"a broken python3", []string{"sh", "sha256sum", "md5sum"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := sshdtest.ToolPath(t, tc.tools...)
			if tc.brokenPython {
				must(t, os.WriteFile(filepath.Join(path, "python3"), []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o755))
			}
			s := sshdtest.StartWith(t, sshdtest.Options{Path: path})
			o := sshdOptions(s)
			o.Verify = VerifyAuto
			o.Connections = 1
			u := newUploader(t, o)
			j, data := localFile(t, 5000, "h/it's.wav")
			res, err := u.Upload(t.Context(), j) // the first hash proves the shell
			must(t, err)
			if res.Verified != VerifyHash {
				t.Fatalf("verified %q, want hash", res.Verified)
			}
			c := u.firstConn()
			p := c.abs("h/it's.wav")
			got, ok := c.hashers.sum(t.Context(), c.ssh, p, "sha256sum")
			if !ok || got != sum(data) {
				t.Errorf("sha256sum: %q, %v; want %s", got, ok, sum(data))
			}
			got, ok = c.hashers.sum(t.Context(), c.ssh, p, "md5sum")
			if want := fmt.Sprintf("%x", md5.Sum(data)); !ok || got != want {
				t.Errorf("md5sum: %q, %v; want %s", got, ok, want)
			}
			got, ok = c.hashers.sum(t.Context(), c.ssh, p, opensslSHA256)
			if ok != tc.openssl || (ok && got != sum(data)) {
				t.Errorf("openssl's sha256: %q, %v; want answered %v with %s", got, ok, tc.openssl, sum(data))
			}
			if got, ok := c.hashers.sum(t.Context(), c.ssh, p+".missing", "sha256sum"); ok {
				t.Errorf("a missing file was hashed: %q", got)
			}
			c.hashers.mu.Lock()
			idle, count := len(c.hashers.idle), c.hashers.count
			c.hashers.mu.Unlock()
			if count != 1 || idle != 1 {
				t.Errorf("hashing sessions: %d open, %d idle; want one, kept in step after a failure", count, idle)
			}
		})
	}
}
