package uploader

import (
	"context"
	"strings"
	"testing"
)

// Discard removes the partial a cancelled upload kept for a resume (its source was deleted:
// nothing will resume it), and a second Discard, with nothing left, is not an error.
func TestDiscardRemovesKeptPartial(t *testing.T) {
	root := t.TempDir()
	u := newUploader(t, Options{URL: "file://" + root})
	j, _ := localFile(t, 4<<20, "PKG/AV/movie.mxf")
	ctx, cancel := context.WithCancel(t.Context())
	j.Checkpoint = func(Checkpoint) {} // a resumable upload: a transient stop keeps its partial
	j.Progress = func(done int64) {
		if done > 0 {
			cancel()
		}
	}
	if _, err := u.Upload(ctx, j); err == nil {
		t.Fatal("the cancelled upload succeeded")
	}
	kept := false
	for _, f := range files(t, root) {
		kept = kept || strings.HasSuffix(f, ".partial")
	}
	if !kept {
		t.Fatal("the cancelled resumable upload kept no partial; nothing for Discard to remove")
	}
	must(t, u.Discard(t.Context(), j.RemoteRel))
	assertNoPartial(t, root)
	must(t, u.Discard(t.Context(), j.RemoteRel))
}
