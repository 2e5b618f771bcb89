package delivery

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

// TestResumablePartialsFirst: after a restart, the files whose uploads a kill interrupted
// (a journaled checkpoint: a partial on the server to resume) are started before any other,
// so repeated kills resume the same few partials instead of leaving a new one per file.
func TestResumablePartialsFirst(t *testing.T) {
	const n = 12
	st := newMemStore()
	resumable := map[string]bool{}
	root := t.TempDir()
	folder := filepath.Join(root, "Wednesday", "Subtitle fr-FR [SR-1]")
	for _, i := range []int{3, 7, 11} {
		p := filepath.Join(folder, fmt.Sprintf("f%02d.mxf", i))
		resumable[p] = true
		if err := st.SaveCheckpoint(context.Background(), p, Checkpoint{Partial: "x", Offset: 1 << 20,
			Size: 10, ModTime: time.Unix(1000, 0), Inode: 7}); err != nil {
			t.Fatal(err)
		}
	}
	up := newFakeUploader()
	var order []string
	var resumed []bool
	up.fail = func(_ int, j Job) error {
		up.mu.Lock()
		order = append(order, j.LocalPath)
		resumed = append(resumed, j.Resume != nil)
		up.mu.Unlock()
		return nil
	}
	h := newHarnessWith(t, root, st, up, func(o *Options) { o.Concurrency = 1 }, req("SR-1", n))
	for i := range n {
		h.drop("SR-1", fmt.Sprintf("f%02d.mxf", i), watcher.Ready, 10)
	}
	h.waitState("SR-1", Delivered)
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(order) != n {
		t.Fatalf("uploads = %d, want %d", len(order), n)
	}
	for i, p := range order[:len(resumable)] {
		if !resumable[p] || !resumed[i] {
			t.Errorf("upload %d = %s (resumed %v), want one of the files with a resumable partial first; order %v",
				i+1, filepath.Base(p), resumed[i], names(order))
		}
	}
}

func names(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
