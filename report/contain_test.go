//go:build unix

package report

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
)

// Attack 3 of issue 10: a render-farm user renames a drop folder (or the title folder above it)
// and puts a link to a root-owned folder in its place. Before the fix the daemon wrote
// .hotdrop-status.json into that folder.
func TestStatusFileNeverWrittenThroughALink(t *testing.T) {
	for _, swapped := range []string{"Wednesday/Subtitle fr-FR [SR-1]", "Wednesday"} {
		t.Run(swapped, func(t *testing.T) {
			root := t.TempDir()
			folder := filepath.Join(root, "Wednesday", "Subtitle fr-FR [SR-1]")
			if err := os.MkdirAll(folder, 0o755); err != nil {
				t.Fatal(err)
			}
			victim := t.TempDir()
			if err := os.MkdirAll(filepath.Join(victim, "Subtitle fr-FR [SR-1]"), 0o700); err != nil {
				t.Fatal(err)
			}
			w := &StatusFiles{Root: root}
			v := delivery.RequestView{ID: "SR-1", Folder: folder, State: delivery.Waiting, UpdatedAt: time.Now()}
			w.RequestChanged(v)
			if _, err := ReadStatus(folder); err != nil {
				t.Fatalf("status file before the swap: %v", err)
			}
			dir := filepath.Join(root, filepath.FromSlash(swapped))
			if err := os.Rename(dir, dir+".away"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, dir); err != nil {
				t.Fatal(err)
			}
			v.State = delivery.Delivered
			w.RequestChanged(v)
			var found []string
			_ = filepath.WalkDir(victim, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					found = append(found, p)
				}
				return nil
			})
			if len(found) > 0 {
				t.Fatalf("status file written through the link into %v", found)
			}
			// The folder that was moved away keeps its last status, not the new one.
			s, err := ReadStatus(filepath.Join(root, "Wednesday.away", "Subtitle fr-FR [SR-1]"))
			if swapped != "Wednesday" {
				s, err = ReadStatus(dir + ".away")
			}
			if err != nil || s.Request == nil || s.Request.State != string(delivery.Waiting) {
				t.Errorf("status in the moved folder: %+v, %v; want the one written before the swap", s.Request, err)
			}
		})
	}
}

// A request without a drop folder (it takes no deliveries) gets no status file and no error.
func TestStatusFileMissingFolderIsQuiet(t *testing.T) {
	root := t.TempDir()
	w := &StatusFiles{Root: root}
	w.RequestChanged(delivery.RequestView{ID: "SR-2", Folder: filepath.Join(root, "gone"), UpdatedAt: time.Now()})
	if _, err := os.Lstat(filepath.Join(root, "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("folder made for a status file: %v", err)
	}
}
