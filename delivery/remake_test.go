package delivery

import (
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/watcher"
)

// TestRemovedDropFolderIsMadeAgain: a drop folder removed by hand went unnoticed (the
// request still named the folder, which was gone) until a reload. It is made again a moment
// after, as are those under a removed folder above them, and the File Bin; a request that
// takes no delivery is left without one.
func TestRemovedDropFolderIsMadeAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarnessWith(t, t.TempDir(), newMemStore(), newFakeUploader(), func(o *Options) { o.Clock = clock.Real{} },
			req("SR-20", 1), req("SR-21", 1, "title", "Thursday"), req("SR-22", 1, "title", "Thursday", "language", "de-DE"),
			req("SR-23", 1, "title", "Thursday", "language", "it-IT", "status", "cancelled"))
		folder := func(id string) string {
			for _, v := range h.eng.Requests() {
				if v.ID == id {
					return v.Folder
				}
			}
			t.Fatalf("no request %s", id)
			return ""
		}
		gone := func(p string) {
			t.Helper()
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(h.root, p)
			h.events <- watcher.Event{Kind: watcher.FolderRemoved, Path: p, Rel: filepath.ToSlash(rel)}
		}
		gone(folder("SR-20"))
		gone(filepath.Join(h.root, "_bin"))
		gone(filepath.Join(h.root, "Thursday")) // SR-21's and SR-22's, above them
		waitUntil(t, func() bool {
			for _, id := range []string{"SR-20", "SR-21", "SR-22"} {
				if fi, err := os.Stat(folder(id)); err != nil || !fi.IsDir() {
					return false
				}
			}
			fi, err := os.Stat(filepath.Join(h.root, "_bin"))
			return err == nil && fi.IsDir()
		})
		if _, err := os.Stat(folder("SR-23")); err == nil {
			t.Error("the drop folder of a cancelled request was made")
		}
	})
}
