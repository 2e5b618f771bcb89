package uploader

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// Tests against the real OpenSSH sshd: its error mapping and extensions are
// what ingest servers run, and the in-process server differs from it.

func sshdUploader(t *testing.T, s *sshdtest.Server) *Uploader {
	t.Helper()
	return newUploader(t, Options{URL: s.URL(), IdentityFile: s.IdentityFile, KnownHosts: s.KnownHosts})
}

// syncBuffer is a log sink safe for the uploader's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSSHDUpload(t *testing.T) {
	s := sshdtest.Start(t)
	var logs syncBuffer
	u := newUploader(t, Options{URL: s.URL(), IdentityFile: s.IdentityFile, KnownHosts: s.KnownHosts,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	// Several max-size packets, and a short last one.
	j, data := localFile(t, 3*openSSHMaxWrite+4321, "PKG-1/AV/movie.mxf")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	final := filepath.Join(s.Dir, "PKG-1", "AV", "movie.mxf")
	if res.Remote != final || res.SHA256 != sum(data) {
		t.Errorf("Upload() = %+v, want remote %s sha256 %s", res, final, sum(data))
	}
	assertFile(t, final, data)
	assertNoPartial(t, s.Dir)
	if _, ok := u.firstConn().sftp.HasExtension("limits@openssh.com"); !ok {
		t.Error("sshd did not advertise limits@openssh.com; the large packets went untested")
	}
	if !u.firstConn().posixRename {
		t.Error("sshd did not advertise posix-rename@openssh.com")
	}
	// internal-sftp logs to syslog only, so the uploader's own log is the witness. A new
	// file is published by the plain rename, which never overwrites (OpenSSH links the
	// new name); only a replace uses posix-rename.
	if !strings.Contains(logs.String(), `method=rename`) || strings.Contains(logs.String(), `method=posix-rename`) {
		t.Errorf("uploader log does not show a new file published by the plain rename:\n%s", logs.String())
	}

	// Without Replace the name is refused; replacing goes through posix-rename, atomically.
	_, err = u.Upload(t.Context(), j)
	wantCode(t, err, CodeRemoteExists, false)
	j2, data2 := localFile(t, 1000, "PKG-1/AV/movie.mxf")
	j2.Replace = true
	_, err = u.Upload(t.Context(), j2)
	must(t, err)
	assertFile(t, final, data2)
	if !strings.Contains(logs.String(), `method=posix-rename@openssh.com`) {
		t.Errorf("uploader log shows no posix-rename for the replace:\n%s", logs.String())
	}
}

func TestSSHDPermissionDenied(t *testing.T) {
	s := sshdtest.Start(t)
	u := sshdUploader(t, s)
	// Owned by root (or, without root, by the login user) and read-only:
	// the login user cannot create anything in it.
	ro := filepath.Join(s.Dir, "ro")
	must(t, os.Mkdir(ro, 0o555))
	must(t, os.Chmod(ro, 0o555))
	j, _ := localFile(t, 1000, "ro/f.bin")
	_, err := u.Upload(t.Context(), j)
	wantCode(t, err, CodePermissionDenied, false)
	assertNoPartial(t, s.Dir)
}

func TestSSHDHostKeyChanged(t *testing.T) {
	s := sshdtest.Start(t)
	ts := &testServer{knownHosts: s.KnownHosts}
	ts.pin(t, s.Addr, newHostKey(t))
	u := sshdUploader(t, s)
	j, _ := localFile(t, 1000, "f.bin")
	_, err := u.Upload(t.Context(), j)
	wantCode(t, err, CodeHostKeyChanged, false)
	if got := files(t, s.Dir); len(got) != 0 {
		t.Errorf("files on the server after a host key mismatch = %v, want none", got)
	}
}

// TestSSHDNoSpace fills a small tmpfs: OpenSSH answers a bare SSH_FX_FAILURE
// and statvfs@openssh.com tells it apart. Needs mount (root, unconfined).
func TestSSHDNoSpace(t *testing.T) {
	s := sshdtest.Start(t)
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	full := filepath.Join(s.Dir, "full")
	must(t, os.Mkdir(full, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); TestSSHDFileSizeLimit covers a full disk with prlimit --fsize", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", full).Run() })
	uid, gid := lookupIDs(t, s.User)
	must(t, os.Chown(full, uid, gid))
	u := sshdUploader(t, s)
	j, data := localFile(t, 2<<20, "full/big.bin")
	j.Checkpoint = func(Checkpoint) {} // a full disk is permanent: no partial kept even so
	_, err := u.Upload(t.Context(), j)
	e := wantCode(t, err, CodeNoSpace, false)
	if !strings.Contains(e.Msg, "bytes free") {
		t.Errorf("no_space message %q does not say how much room there is", e.Msg)
	}
	assertNoPartial(t, s.Dir)

	// Space returns (the tmpfs grows): the same job is delivered, as after `hotdrop retry`.
	if out, err := exec.Command("mount", "-o", "remount,size=8m", full).CombinedOutput(); err != nil {
		t.Fatalf("remount tmpfs: %v: %s", err, out)
	}
	_, err = u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(full, "big.bin"), data)
}

func lookupIDs(t *testing.T, name string) (int, int) {
	t.Helper()
	out, err := exec.Command("id", "-u", name).Output()
	must(t, err)
	uid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	out, err = exec.Command("id", "-g", name).Output()
	must(t, err)
	gid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return uid, gid
}

// TestSSHDFileSizeLimit: where no tmpfs can be mounted, a write limit on sshd (prlimit
// --fsize) stands in for a full disk. OpenSSH says only "Failure"; statvfs shows room, so
// the error is remote_error with the server's words, permanent, and no partial is left.
func TestSSHDFileSizeLimit(t *testing.T) {
	s := sshdtest.StartWith(t, sshdtest.Options{FileSizeLimit: 1 << 20})
	u := sshdUploader(t, s)
	j, _ := localFile(t, 2<<20, "limited/big.bin")
	j.Checkpoint = func(Checkpoint) {}
	_, err := u.Upload(t.Context(), j)
	e := Classify(err)
	if e == nil || (e.Code != CodeNoSpace && e.Code != CodeRemoteError) || e.Transient {
		t.Fatalf("Upload past the file size limit: %v, want permanent no_space or remote_error", err)
	}
	if e.Code == CodeRemoteError && !strings.Contains(err.Error(), "ailure") {
		t.Errorf("remote_error %q does not carry the server's words", err)
	}
	t.Logf("prlimit --fsize: %s: %v", e.Code, err)
	assertNoPartial(t, s.Dir)
}
