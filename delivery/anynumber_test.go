package delivery

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hotdrop/hotdrop/watcher"
)

// refuseOnce fails name's first upload for good (the file could not be read), as a
// permission problem fixed by hand would.
func refuseOnce(name string) func(int, Job) error {
	var done atomic.Bool
	return func(_ int, j Job) error {
		if strings.HasSuffix(j.LocalPath, "/"+name) && done.CompareAndSwap(false, true) {
			return &TransferError{Code: "permission_denied", Msg: "cannot read local file " + j.LocalPath + ": permission denied"}
		}
		return nil
	}
}

// TestAnyNumberRequestWithAFailedFileIsFinishedOnRetry: a request of any number of files
// (files = 0) whose one file failed was "already delivered" by its other file, so after the
// fix `hotdrop retry` held the failed file already_delivered and the request never finished.
// It is already delivered only once it was delivered whole; a file that comes after is held.
func TestAnyNumberRequestWithAFailedFileIsFinishedOnRetry(t *testing.T) {
	up := newFakeUploader()
	up.fail = refuseOnce("b.wav")
	h := newHarness(t, newMemStore(), up, req("SR-11", 0))
	h.drop("SR-11", "a.wav", watcher.Ready, 10)
	h.drop("SR-11", "b.wav", watcher.Ready, 10)
	h.drop("SR-11", "_READY", watcher.Ready, 0)
	h.waitState("SR-11", Failed)

	if err := h.eng.Retry(context.Background(), "SR-11"); err != nil {
		t.Fatal(err)
	}
	v := h.waitState("SR-11", Delivered)
	if len(v.Files) != 2 || up.count() != 2 {
		t.Fatalf("after the retry: files %+v, %d uploads; want a.wav and b.wav delivered", v.Files, up.count())
	}

	h.drop("SR-11", "c.wav", watcher.Ready, 10) // after the request was delivered whole
	v = h.waitState("SR-11", Held)
	for _, f := range v.Files {
		if f.Name == "c.wav" && f.Reason != ReasonAlreadyDelivered {
			t.Errorf("c.wav held %s, want %s", f.Reason, ReasonAlreadyDelivered)
		}
	}
	if up.count() != 2 {
		t.Errorf("%d uploads, want 2: c.wav came after the delivery", up.count())
	}
}

// TestAnyNumberRequestAfterARestart: what the journal holds says whether a request of any
// number of files was delivered whole: a file of it that failed goes after a restart, a file
// held for coming after its delivery stays held.
func TestAnyNumberRequestAfterARestart(t *testing.T) {
	st := newMemStore()
	up := newFakeUploader()
	up.fail = refuseOnce("b.wav")
	root := t.TempDir()
	h := newHarnessAt(t, root, st, up, req("SR-12", 0), req("SR-13", 0))
	h.drop("SR-12", "a.wav", watcher.Ready, 10)
	h.drop("SR-12", "b.wav", watcher.Ready, 10)
	h.drop("SR-12", "_READY", watcher.Ready, 0)
	h.waitState("SR-12", Failed)
	h.drop("SR-13", "a.wav", watcher.Ready, 10)
	h.drop("SR-13", "_READY", watcher.Ready, 0)
	h.waitState("SR-13", Delivered)
	h.drop("SR-13", "extra.wav", watcher.Ready, 10)
	h.waitState("SR-13", Held)
	h.stop()

	h = newHarnessAt(t, root, st, up, req("SR-12", 0), req("SR-13", 0))
	for _, n := range []string{"a.wav", "b.wav", "_READY"} {
		h.drop("SR-12", n, watcher.Ready, 10)
	}
	for _, n := range []string{"a.wav", "extra.wav", "_READY"} {
		h.drop("SR-13", n, watcher.Ready, 10)
	}
	h.waitState("SR-12", Delivered)
	v := h.waitState("SR-13", Held)
	for _, f := range v.Files {
		if f.Name == "extra.wav" && f.Reason != ReasonAlreadyDelivered {
			t.Errorf("SR-13 extra.wav held %s after the restart, want %s", f.Reason, ReasonAlreadyDelivered)
		}
	}
	if up.count() != 3 {
		t.Errorf("%d uploads, want 3 (SR-12's a.wav and b.wav, SR-13's a.wav)", up.count())
	}
}

// TestAnyNumberDeliveredWholeIsJournaled: whether a request of any number of files was
// delivered whole is journaled with it. It was worked out from the first look after a start,
// which does not know it when a delivered file changed, or one came after and was held for
// itself: those were sent again after a restart, without a redelivery.
func TestAnyNumberDeliveredWholeIsJournaled(t *testing.T) {
	st := newMemStore()
	up := newFakeUploader()
	root := t.TempDir()
	h := newHarnessAt(t, root, st, up, req("SR-16", 0))
	h.drop("SR-16", "a.wav", watcher.Ready, 10)
	h.drop("SR-16", "b.wav", watcher.Ready, 10)
	h.drop("SR-16", "_READY", watcher.Ready, 0)
	h.waitState("SR-16", Delivered)
	// b.wav changed after the delivery: a real file, so that the start finds it changed (a
	// delivered file gone from the disk stays delivered).
	for _, v := range h.eng.Requests() {
		if v.ID == "SR-16" {
			writeReal(t, filepath.Join(v.Folder, "b.wav"), "changed after")
		}
	}
	h.drop("SR-16", "b.wav", watcher.Ready, 0)
	h.drop("SR-16", "c.wav", watcher.Unsafe, 0) // came after, held for itself
	h.waitState("SR-16", Held)
	h.stop()

	h = newHarnessAt(t, root, st, up, req("SR-16", 0))
	h.drop("SR-16", "a.wav", watcher.Ready, 10)
	h.drop("SR-16", "b.wav", watcher.Ready, 0)
	h.drop("SR-16", "c.wav", watcher.Ready, 12) // a regular file now
	h.drop("SR-16", "_READY", watcher.Ready, 0)
	v := h.waitState("SR-16", Held)
	held := 0
	for _, f := range v.Files {
		if f.Reason == ReasonAlreadyDelivered {
			held++
		}
	}
	if held != 2 || up.count() != 2 {
		t.Errorf("after a restart: %d files held %s, %d uploads; want b.wav and c.wav held and only the first two uploads", held, ReasonAlreadyDelivered, up.count())
	}
}
