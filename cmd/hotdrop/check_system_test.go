package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/config"
)

// check reports the inotify headroom, and warns, naming the sysctl to raise, when the folders
// to watch use most of the limit. The limit is lowered for the test, not on the machine.
func TestCheckReportsWatchHeadroom(t *testing.T) {
	root := t.TempDir()
	for i := range 9 {
		if err := os.MkdirAll(filepath.Join(root, fmt.Sprintf("SR-%d", i)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	limitFile := filepath.Join(t.TempDir(), "max_user_watches")
	old := maxUserWatchesFile
	maxUserWatchesFile = limitFile
	t.Cleanup(func() { maxUserWatchesFile = old })
	cfg := config.Default()
	cfg.Watch.Root = root

	if err := os.WriteFile(limitFile, []byte("1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(checkSystem(cfg), "\n"); !strings.Contains(got, "10 folder(s) to watch, limit 1000: ok (headroom 990)") {
		t.Errorf("with room to spare: %q", got)
	}
	if err := os.WriteFile(limitFile, []byte("11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(checkSystem(cfg), "\n"); !strings.Contains(got, "use most of fs.inotify.max_user_watches = 11") || !strings.Contains(got, "sysctl -w fs.inotify.max_user_watches=44") {
		t.Errorf("near the limit: %q", got)
	}
}
