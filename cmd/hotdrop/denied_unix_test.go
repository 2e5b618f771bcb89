//go:build unix

package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestDeniedFolderEndToEnd: a sub-folder of a drop folder that the daemon's user cannot enter
// makes its request held permission_denied in the status file, with a sentence naming the
// folder and the user, and one WARN line; once the folder is readable again the file is
// delivered without a retry (issue 14: it stayed settling forever, without a word). Root
// enters every folder, so as root this runs again as an unprivileged user.
func TestDeniedFolderEndToEnd(t *testing.T) {
	if os.Geteuid() == 0 {
		sshdtest.RerunAsAccount(t)
		return
	}
	out := t.TempDir()
	e := newE2E(t, "", "file://"+filepath.ToSlash(out), "", "", "auto")
	e.start()
	reel := filepath.Join(e.folder("SR-1"), "reel")
	if err := os.Mkdir(reel, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(reel, "a.ttml"), 1000)
	if err := os.Chmod(reel, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(reel, 0o755) })
	s := e.waitStatus("SR-1", "held")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != 1 || s.Files[0].Reason == nil || s.Files[0].Reason.Code != "permission_denied" ||
		!strings.Contains(s.Files[0].Reason.Message, "cannot enter the folder "+reel) ||
		!strings.Contains(s.Files[0].Reason.Message, "the user "+me.Username) {
		t.Fatalf("status files = %+v, want one held permission_denied naming %s and the user %s", s.Files, reel, me.Username)
	}
	t.Logf("held %s: %s", s.Files[0].Name, s.Files[0].Reason.Message)
	if n := strings.Count(e.logged.String(), "cannot enter folder"); n != 1 {
		t.Errorf("%d WARN lines about the folder, want 1", n)
	}
	if err := os.Chmod(reel, 0o755); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("SR-1", "delivered")
}
