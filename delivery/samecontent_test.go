package delivery

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

// TestSameContentWrittenAgainStaysDelivered: a delivered file written again with the same
// bytes (a sync copying it over, a render done again) was held already_delivered, and its
// request turned from delivered to held. It is the file delivered: it stays delivered,
// nothing is sent, nothing is announced again and the manifest is not sent a second time.
// Other content of the same size is a changed file, held as before.
func TestSameContentWrittenAgainStaysDelivered(t *testing.T) {
	up := newFakeUploader()
	up.hashes = true
	h, ev := withEvents(t, up, func(o *Options) { o.Manifest = true }, req("SR-15", 1))
	p := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-15]", "a.ttml")
	write := func(content string, at time.Time) {
		t.Helper()
		if err := os.WriteFile(p+".tmp", []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p+".tmp", at, at); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p+".tmp", p); err != nil { // a new inode, as a sync writes
			t.Fatal(err)
		}
	}
	write("take one", time.Unix(1000, 0))
	h.drop("SR-15", "a.ttml", watcher.Ready, 0)
	h.waitState("SR-15", Delivered)
	waitUntil(t, func() bool { _, ok := up.sizeOf("SR-15/SR-15.hotdrop.json"); return ok })
	before := ev.types("SR-15")

	write("take one", time.Unix(2000, 0))
	h.drop("SR-15", "a.ttml", watcher.Settling, 0)
	h.drop("SR-15", "a.ttml", watcher.Ready, 0)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	var state State
	var sha string
	waitUntil(t, func() bool {
		_ = h.eng.do(context.Background(), func() {
			fs := h.eng.files[p]
			state, sha = fs.rec.State, fs.rec.SHA256
			if !fs.rec.ModTime.Equal(fi.ModTime()) || fs.more != nil && fs.more.same != nil {
				state = "" // the new version is not judged yet
			}
		})
		return state != ""
	})
	if state != Delivered || sha == "" {
		t.Errorf("the same content written again: %s (sha256 %q), want delivered with its sha256", state, sha)
	}
	if v := h.views.get("SR-15"); v.State != Delivered {
		t.Errorf("request %s, want delivered", v.State)
	}
	if n := up.count(); n != 2 {
		t.Errorf("%d uploads, want 2 (the file and its manifest, once)", n)
	}
	if after := ev.types("SR-15"); !equal(after, before) {
		t.Errorf("events after the same content written again: %v, want none more than %v", after, before)
	}

	write("take two", time.Unix(3000, 0)) // same size, other bytes
	h.drop("SR-15", "a.ttml", watcher.Settling, 0)
	h.drop("SR-15", "a.ttml", watcher.Ready, 0)
	v := h.waitState("SR-15", Held)
	if len(v.Files) != 1 || v.Files[0].Reason != ReasonAlreadyDelivered || up.count() != 2 {
		t.Errorf("other content: %+v, %d uploads; want held %s and nothing sent", v.Files, up.count(), ReasonAlreadyDelivered)
	}

	// Back to the delivered bytes: delivered again, and the manifest, which would say what
	// the one on the server says, is not sent a second time.
	write("take one", time.Unix(4000, 0))
	h.drop("SR-15", "a.ttml", watcher.Settling, 0)
	h.drop("SR-15", "a.ttml", watcher.Ready, 0)
	h.waitState("SR-15", Delivered)
	if err := h.eng.do(context.Background(), func() {}); err != nil {
		t.Fatal(err)
	}
	if n := up.count(); n != 2 {
		t.Errorf("%d uploads after the delivered bytes came back, want 2: the manifest is unchanged (%v)", n, up.uploads)
	}
}
