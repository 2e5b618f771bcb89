//go:build unix

package watcher

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// A folder hotdrop cannot enter is said once (a WARN naming it and what to change), its known
// files, or the folder itself when none was known, are reported Denied with a sentence naming
// the folder and the user, and all of it lifts when the folder can be read again: its files
// settle anew and what is no longer there is Removed (issue 14). Before, the files known in it
// stayed settling forever, without a word.
func TestDeniedFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		sshdtest.RerunAsAccount(t) // root enters every folder: the kernel refuses only someone else
		return
	}
	for _, mode := range []string{ModeEvents, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			t.Cleanup(func() {
				_ = filepath.Walk(root, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o755) })
			})
			writeFile(t, root, "sub/known.txt", "k")
			writeFile(t, root, "sub/deeper/frame.exr", "f")
			// Made ready outside the watcher's sight (.hotdrop* is never watched), then moved in.
			writeFile(t, root, ".hotdrop-stage/new.txt", "n")
			must(t, os.Chmod(filepath.Join(root, ".hotdrop-stage"), 0))
			must(t, os.Mkdir(filepath.Join(root, ".hotdrop-empty"), 0))
			h := start(t, Options{Root: root, Settle: 100 * time.Millisecond, Poll: 50 * time.Millisecond, Rescan: time.Hour, Mode: mode}, nil)
			h.c.waitKind(t, Ready, "sub/known.txt")
			h.c.waitKind(t, Ready, "sub/deeper/frame.exr")

			must(t, os.Chmod(filepath.Join(root, "sub"), 0o300)) // enter, but not list
			must(t, os.Rename(filepath.Join(root, ".hotdrop-stage"), filepath.Join(root, "locked")))
			must(t, os.Rename(filepath.Join(root, ".hotdrop-empty"), filepath.Join(root, "empty")))
			for _, rel := range []string{"sub/known.txt", "sub/deeper/frame.exr", "locked", "empty"} {
				h.c.waitKind(t, Denied, rel)
			}
			user := serviceUser()
			for _, e := range h.c.all() {
				if e.Kind != Denied {
					continue
				}
				folder := filepath.Join(root, strings.SplitN(e.Rel, "/", 2)[0])
				for _, want := range []string{"cannot enter the folder " + folder + " (owner ", "the user " + user, "chmod u+rx " + folder} {
					if !strings.Contains(e.Reason, want) {
						t.Errorf("Denied %s: reason %q lacks %q", e.Rel, e.Reason, want)
					}
				}
			}
			if n := h.c.count(Denied, "locked/new.txt"); n != 0 {
				t.Errorf("locked/new.txt reported Denied %d times: it was never seen", n)
			}

			// Removed while denied: its hold goes with it.
			must(t, os.Remove(filepath.Join(root, "empty")))
			h.c.waitKind(t, Removed, "empty")
			// Readable again: the files settle anew, the folder's own hold is lifted.
			must(t, os.Chmod(filepath.Join(root, "sub"), 0o755))
			must(t, os.Chmod(filepath.Join(root, "locked"), 0o755))
			h.c.waitKind(t, Ready, "locked/new.txt")
			h.c.waitKind(t, Removed, "locked")
			h.c.waitFor(t, "sub's files ready again", 10*time.Second, func([]got) bool {
				return h.c.count(Ready, "sub/known.txt") == 2 && h.c.count(Ready, "sub/deeper/frame.exr") == 2
			})
			for _, rel := range []string{"sub/known.txt", "sub/deeper/frame.exr", "locked", "empty"} {
				if n := h.c.count(Denied, rel); n != 1 {
					t.Errorf("%s reported Denied %d times, want once", rel, n)
				}
			}
			for _, rel := range []string{"sub/known.txt", "sub/deeper/frame.exr"} {
				if n := h.c.count(Removed, rel); n != 0 {
					t.Errorf("%s reported Removed %d times; it never went away", rel, n)
				}
			}
			if n := strings.Count(h.log.String(), "cannot enter folder"); n != 3 {
				t.Errorf("%d WARN lines about folders that cannot be entered, want one for each of sub, locked, empty:\n%s", n, h.log.String())
			}
		})
	}
}
