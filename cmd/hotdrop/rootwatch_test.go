package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestRootMadeAgain (issue 14, item 12): watch.root deleted and made again gets its drop
// folders back, and files dropped there are delivered, without a SIGHUP.
func TestRootMadeAgain(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	e.start()
	if err := os.RemoveAll(e.cfg.Watch.Root); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(e.cfg.Watch.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the drop folder made again", func() bool {
		_, err := os.Stat(e.folder("SR-1"))
		return err == nil
	})
	writeFile(t, filepath.Join(e.folder("SR-1"), "after.ttml"), 100)
	e.waitStatus("SR-1", "delivered")
}
