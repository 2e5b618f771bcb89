package delivery

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

// TestSourceReadErrorIsNotDestinationTrouble (issue 16, item 4): a read error of the source
// (an NFS mount answering EIO for a moment) keeps the file uploading and retrying, with a
// status that says the source failed, and never raises destination.unreachable, however long
// it lasts; the same failure on the destination's side does raise it.
func TestSourceReadErrorIsNotDestinationTrouble(t *testing.T) {
	for _, tt := range []struct {
		name       string
		source     bool
		wantReason string // in the retrying file's RetryReason
		wantDown   bool
	}{
		{"source", true, "the source failed, not the destination", false},
		{"destination", false, "connection refused", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const failures = 5
			up := newFakeUploader()
			release := make(chan struct{})
			up.fail = func(n int, j Job) error {
				if n <= failures {
					if tt.source {
						return sourceError(j.LocalPath, fmt.Errorf("read %s: %w", j.LocalPath, syscall.EIO))
					}
					return &TransferError{Code: "transient", Msg: "upload: connection refused, will retry", Transient: true}
				}
				<-release // held until the retrying status has been seen
				return nil
			}
			// AlertAfter of 1ns: two destination failures in a row are an outage.
			h, ev := withEvents(t, up, func(o *Options) { o.AlertAfter = time.Nanosecond }, req("SR-16", 1))
			h.drop("SR-16", "a.ttml", watcher.Ready, 4)
			v := h.waitRetrying("SR-16", failures)
			if !strings.Contains(v.Files[0].RetryReason, tt.wantReason) {
				t.Fatalf("retrying file = %+v, want a reason saying %q", v.Files[0], tt.wantReason)
			}
			if tt.source && !strings.Contains(v.Files[0].RetryReason, "input/output error") {
				t.Errorf("retry reason %q does not carry the system's words", v.Files[0].RetryReason)
			}
			if !strings.HasPrefix(v.Why, "retrying: ") {
				t.Errorf("request says why %q, want it retrying", v.Why)
			}
			if got := h.eng.Unreachable(); got != tt.wantDown {
				t.Errorf("after %d %s failures Unreachable() = %v, want %v", failures, tt.name, got, tt.wantDown)
			}
			close(release)
			h.waitState("SR-16", Delivered)
			var down int
			for _, typ := range ev.types("") {
				if typ == EventDestinationDown {
					down++
				}
			}
			if (down > 0) != tt.wantDown {
				t.Errorf("destination events = %v; want unreachable %v", ev.types(""), tt.wantDown)
			}
		})
	}
}

// waitRetrying waits until request id's one file shows it is retrying after attempt n (the
// view is sent after the engine has noted that attempt's failure).
func (h *harness) waitRetrying(id string, n int) RequestView {
	h.t.Helper()
	var v RequestView
	if !eventually(func() bool {
		v = h.views.get(id)
		return len(v.Files) == 1 && v.Files[0].Retrying && v.Files[0].Attempt >= n
	}) {
		h.t.Fatalf("request %s never showed its file retrying after attempt %d: %+v", id, n, v.Files)
	}
	return v
}
