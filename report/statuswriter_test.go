package report

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
)

// The writer writes the newest view of each folder, and Close leaves nothing unwritten.
func TestStatusWriterWritesNewestAndFlushesOnClose(t *testing.T) {
	root := t.TempDir()
	w := NewStatusWriter(&StatusFiles{Root: root})
	var folders []string
	for i := range 50 {
		dir := filepath.Join(root, fmt.Sprintf("SR-%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		folders = append(folders, dir)
	}
	for round, state := range []delivery.State{delivery.Waiting, delivery.Settling, delivery.Delivered} {
		for i, dir := range folders {
			w.RequestChanged(delivery.RequestView{ID: fmt.Sprintf("SR-%d", i), Folder: dir, State: state, UpdatedAt: time.Unix(int64(round), 0)})
		}
	}
	w.Close()
	for i, dir := range folders {
		s, err := ReadStatus(dir)
		if err != nil {
			t.Fatalf("SR-%d: %v", i, err)
		}
		if s.Request.State != string(delivery.Delivered) {
			t.Errorf("SR-%d: status file says %s, want the newest view's delivered", i, s.Request.State)
		}
	}
	// After Close a view is still written (at once).
	w.RequestChanged(delivery.RequestView{ID: "SR-0", Folder: folders[0], State: delivery.Held})
	if s, err := ReadStatus(folders[0]); err != nil || s.Request.State != string(delivery.Held) {
		t.Errorf("after Close: %+v, %v", s.Request, err)
	}
}
