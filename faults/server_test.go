//go:build faults

package faults

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// retry runs `hotdrop retry ID`, which asks the running daemon through its API.
func (s *scenario) retry(id string) error {
	out, err := exec.Command(bin, "retry", id, "--config", s.cfgFile).CombinedOutput()
	if err != nil {
		return fmt.Errorf("hotdrop retry %s: %v: %s", id, err, out)
	}
	return nil
}

// testUser is the unprivileged account the test sshd logs in.
func testUser(t *testing.T) (int, int) {
	u, err := user.Lookup(sshdtest.TestUser)
	if err != nil {
		t.Skipf("no user %s: %v", sshdtest.TestUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// TestDiskFull delivers a file larger than the server's free space: a small tmpfs mounted
// as the remote folder where mounting is allowed, else sshd under `prlimit --fsize`. The file
// must fail no_space with no partial left behind; with room made and `hotdrop retry`, it
// must then arrive.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the full-disk scenario needs root (tmpfs) and the unprivileged test user")
	}
	uid, gid := testUser(t)
	limit := int64(cfg.diskMiB) << 20
	r := request{"SR-1", "fr-FR", 1}

	// Try the tmpfs on a throw-away folder first, so a refused mount falls back before sshd starts.
	probe, err := os.MkdirTemp("", "hotdrop-faults-mount-*")
	must(t, err)
	method := "tmpfs"
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe).CombinedOutput(); err != nil {
		method = "prlimit-fsize"
		t.Logf("mount -t tmpfs refused (%v: %s); using prlimit --fsize on sshd", err, strings.TrimSpace(string(out)))
	} else {
		_ = exec.Command("umount", probe).Run()
	}
	os.Remove(probe)

	su := setup{sub: "full", requests: []request{r}}
	if method == "prlimit-fsize" {
		su.srvOpts.FileSizeLimit = limit
	}
	s := newScenario(t, "diskfull", su)
	s.figure("method", method)
	s.figure("space", fmt.Sprintf("%dMiB", cfg.diskMiB))
	must(t, os.MkdirAll(s.remote, 0o755))
	if method == "tmpfs" {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", limit), "tmpfs", s.remote).CombinedOutput(); err != nil {
			t.Fatalf("mount tmpfs on %s: %v: %s", s.remote, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", "-l", s.remote).Run() })
	}
	must(t, os.Chown(s.remote, uid, gid))

	p := s.start()
	src := s.drop(s.waitFolder(r), "full.ttml", 2*limit+12345)
	s.figure("file", mib(src.size))
	st, ok := s.waitState(r, 2*time.Minute, "failed", "delivered")
	s.figure("state", stateOf(st))
	s.figure("reason", reasonOf(st))
	s.goal(ok && stateOf(st) == "failed" && reasonOf(st) == "no_space", "request %s reason %q, want failed no_space", stateOf(st), reasonOf(st))
	left := s.checkRemote(nil).leftovers
	s.figure("partials_left", len(left))
	s.goal(len(left) == 0, "temp files left on the full disk: %v", left)
	if method == "tmpfs" {
		var fs syscall.Statfs_t
		if syscall.Statfs(s.remote, &fs) == nil {
			s.figure("space_used_after_fail", mib(int64(fs.Blocks-fs.Bfree)*fs.Bsize))
		}
		// Room is made; an operator says retry.
		if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", 4*limit), s.remote).CombinedOutput(); err != nil {
			t.Fatalf("remount: %v: %s", err, out)
		}
		if err := s.retry(r.id); err != nil {
			t.Fatal(err)
		}
		st, ok = s.waitState(r, cfg.deliverWithin, "delivered")
		s.figure("after_retry", stateOf(st))
		s.goal(ok, "after room was made and `hotdrop retry`, the request is %s, want delivered", stateOf(st))
		rc := s.checkRemote([]source{src})
		s.figure("identical", yesNo(rc.identical == 1))
		s.goal(rc.identical == 1, "the retried file is not on the server identical")
	} else {
		s.figure("after_retry", "n/a(prlimit)")
	}
	if code := p.stop(); code != 0 {
		t.Errorf("the daemon exited %d on SIGTERM, want 0", code)
	}
}

// TestPermissionDenied delivers into a remote folder the (unprivileged) login user cannot
// write: the file fails permission_denied, nothing is left there; once the folder is made
// writable, `hotdrop retry` delivers it.
func TestPermissionDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the permission scenario needs root to own the folder the test user cannot write")
	}
	uid, gid := testUser(t)
	r := request{"SR-1", "fr-FR", 1}
	s := newScenario(t, "permission", setup{sub: "readonly", requests: []request{r}})
	must(t, os.MkdirAll(s.remote, 0o755)) // root's: the test user may read, not write
	p := s.start()
	src := s.drop(s.waitFolder(r), "denied.ttml", 1<<20+777)
	st, ok := s.waitState(r, 2*time.Minute, "failed", "delivered")
	s.figure("state", stateOf(st))
	s.figure("reason", reasonOf(st))
	s.goal(ok && stateOf(st) == "failed" && reasonOf(st) == "permission_denied", "request %s reason %q, want failed permission_denied", stateOf(st), reasonOf(st))
	var there []string
	_ = filepath.Walk(s.remote, func(p string, fi os.FileInfo, err error) error {
		if err == nil && p != s.remote {
			there = append(there, p)
		}
		return nil
	})
	s.figure("remote_entries", len(there))
	s.goal(len(there) == 0, "the read-only folder holds %v", there)

	must(t, os.Chown(s.remote, uid, gid))
	if err := s.retry(r.id); err != nil {
		t.Fatal(err)
	}
	st, ok = s.waitState(r, cfg.deliverWithin, "delivered")
	s.figure("after_retry", stateOf(st))
	s.goal(ok, "after the folder was made writable and `hotdrop retry`, the request is %s, want delivered", stateOf(st))
	s.figure("identical", yesNo(s.checkRemote([]source{src}).identical == 1))
	if code := p.stop(); code != 0 {
		t.Errorf("the daemon exited %d on SIGTERM, want 0", code)
	}
}
