package delivery

import (
	"path/filepath"
	"testing"

	"github.com/hotdrop/hotdrop/watcher"
)

func TestTransientRetriedPermanentFails(t *testing.T) {
	up := newFakeUploader()
	up.fail = func(n int, j Job) error {
		if filepath.Base(j.LocalPath) == "bad.ttml" {
			return &TransferError{Code: "permission_denied", Msg: "permission denied"}
		}
		if n < 3 {
			return &TransferError{Code: "transient", Msg: "connection lost", Transient: true}
		}
		return nil
	}
	h := newHarness(t, newMemStore(), up, req("SR-7", 1), req("SR-8", 1, "title", "B"))
	h.drop("SR-7", "ok.ttml", watcher.Ready, 1)
	h.waitState("SR-7", Delivered)
	if got := up.attempt[filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-7]", "ok.ttml")]; got != 3 {
		t.Errorf("attempts = %d, want 3", got)
	}
	h.drop("SR-8", "bad.ttml", watcher.Ready, 1)
	v := h.waitState("SR-8", Failed)
	if v.Files[0].Reason != "permission_denied" || v.Files[0].Message == "" {
		t.Errorf("failed file = %+v", v.Files[0])
	}
}
