//go:build unix

package watcher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
)

// Links, FIFOs and sockets are reported once as Unsafe, never followed or
// opened, and nothing hangs on a FIFO nobody writes to.
func TestUnsafeReportedOnce(t *testing.T) {
	for _, tt := range []struct {
		mode    string
		network bool
	}{{ModeEvents, false}, {ModePoll, false}, {ModePoll, true}} {
		name := tt.mode
		if tt.network {
			name += "-network"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root, outside := t.TempDir(), t.TempDir()
			writeFile(t, outside, "secret.txt", "secret")
			writeFile(t, outside, "dir/inner.txt", "inner")
			must(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "link.txt")))
			must(t, os.Symlink(filepath.Join(outside, "dir"), filepath.Join(root, "dirlink")))
			must(t, syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644))
			writeFile(t, root, "ok.txt", "ok")
			h := start(t, Options{Root: root, Settle: 100 * time.Millisecond, Poll: 50 * time.Millisecond, Rescan: 200 * time.Millisecond, Mode: tt.mode},
				func(w *Watcher) {
					if tt.network {
						w.fsType = func(string) (string, bool) { return "nfs", true }
					}
				})
			h.c.waitKind(t, Ready, "ok.txt")
			// Made while running: reached by an event or a poll.
			must(t, syscall.Mkfifo(filepath.Join(root, "late-pipe"), 0o644))
			must(t, os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(root, "late-link")))
			h.c.waitKind(t, Unsafe, "late-pipe")
			h.c.waitKind(t, Unsafe, "late-link")
			h.waitTicks(t, "rescan", 2) // each lists the tree again
			h.waitTicks(t, "poll", 2)

			want := map[string]string{
				"link.txt": "symbolic link", "dirlink": "symbolic link", "late-link": "symbolic link",
				"pipe": "named pipe", "late-pipe": "named pipe",
			}
			for rel, reason := range want {
				if n := h.c.count(Unsafe, rel); n != 1 {
					t.Errorf("%s reported Unsafe %d times, want once", rel, n)
				}
				for _, e := range h.c.all() {
					if e.Rel == rel && e.Kind == Unsafe && !strings.Contains(e.Reason, reason) {
						t.Errorf("%s: reason %q, want it to say %q", rel, e.Reason, reason)
					}
				}
			}
			for _, e := range h.c.all() {
				if strings.HasPrefix(e.Rel, "dirlink/") || (e.Kind != Unsafe && want[e.Rel] != "") {
					t.Errorf("followed or treated as a file: %s %s", e.Kind, e.Rel)
				}
			}

			must(t, os.Remove(filepath.Join(root, "pipe")))
			h.c.waitKind(t, Removed, "pipe")
		})
	}
}

func TestFreshStatRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "f", "12345")
	must(t, syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644))
	must(t, os.Symlink(filepath.Join(dir, "f"), filepath.Join(dir, "link")))
	tests := []struct {
		name    string
		wantErr error
	}{{"f", nil}, {"pipe", errNotRegular}, {"link", errNotRegular}, {"missing", os.ErrNotExist}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var info FileInfo
			var err error
			go func() { info, err = freshStat(filepath.Join(dir, tt.name)); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("freshStat(%s) hangs", tt.name)
			}
			if tt.wantErr == nil {
				if err != nil || info.Size != 5 || info.Inode == 0 {
					t.Fatalf("freshStat(%s) = %+v, %v; want size 5, an inode, no error", tt.name, info, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("freshStat(%s) error = %v, want %v", tt.name, err, tt.wantErr)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A folder above a settling file swapped for a link to a folder holding a file of the same
// name (issue 10): the settle check must not follow the link and report the foreign file's
// identity for the path; the file is gone from the tree, and the link is reported Unsafe
// when its folder is next listed. No file events arrive (as on a network mount).
func TestSettleNeverFollowsASwappedFolder(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	writeFile(t, root, "a/b/x.txt", "ours")
	const theirs = "the victim's, longer"
	writeFile(t, outside, "b/x.txt", theirs)
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	fake := newFakeNotifier()
	h := start(t, Options{Root: root, Settle: 2 * time.Second, Rescan: time.Hour, Mode: ModeEvents, Clock: fc},
		func(w *Watcher) { w.newNotifier = func() (notifier, error) { return fake, nil } })
	h.c.waitKind(t, Settling, "a/b/x.txt")
	must(t, os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a.away")))
	must(t, os.Symlink(outside, filepath.Join(root, "a")))
	h.advance(t, fc, 3*time.Second)
	h.c.waitKind(t, Removed, "a/b/x.txt")
	for _, e := range h.c.all() {
		if strings.HasPrefix(e.Rel, "a/") && e.Info.Size == int64(len(theirs)) {
			t.Fatalf("the file behind the link was reported: %s %s size %d", e.Kind, e.Rel, e.Info.Size)
		}
	}
	h.w.Rescan()
	h.c.waitKind(t, Unsafe, "a")
}
