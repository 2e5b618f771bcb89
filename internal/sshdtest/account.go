//go:build unix

package sshdtest

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Account returns the unprivileged account tests run things as when they run as root
// (TestUser, created when missing), else the current user. Root reads and enters every
// folder, so tests of what the kernel refuses run their part as this account.
func Account(t testing.TB) (*user.User, error) { return loginUser(t) }

// RerunAsAccount runs the calling test again, in a copy of this test binary, as Account's
// unprivileged user, and fails unless it ran there and passed: a test of what the kernel
// refuses calls it when it runs as root (as CI does), where it would otherwise prove nothing.
func RerunAsAccount(t *testing.T) {
	t.Helper()
	u, err := Account(t)
	if err != nil {
		t.Fatalf("no unprivileged account to run %s as: %v", t.Name(), err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := t.TempDir()
	for p := dir; p != filepath.Dir(p) && p != os.TempDir(); p = filepath.Dir(p) {
		must(t, os.Chmod(p, 0o755)) // t.TempDir's folders are root's, mode 700
	}
	self, err := os.Executable()
	must(t, err)
	bin := filepath.Join(dir, filepath.Base(self))
	copyFile(t, self, bin)
	cmd := exec.Command(bin, "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR=/tmp", "HOME=/tmp")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	t.Logf("%s as the user %s:\n%s", t.Name(), u.Username, out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s as the user %s: %v", t.Name(), u.Username, err)
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	must(t, err)
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	must(t, err)
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	must(t, out.Close())
}
