package delivery

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/watcher"
)

// waitWhy waits until request id's view says want (a substring) in its Why.
func (h *harness) waitWhy(id, want string) RequestView {
	h.t.Helper()
	var v RequestView
	if !eventually(func() bool { v = h.views.get(id); return strings.Contains(v.Why, want) }) {
		h.t.Fatalf("request %s (%s) says why %q, want %q", id, v.State, v.Why, want)
	}
	return v
}

// TestWaitingSaysWhy (issue 14, item 3): a request that waits says for what, and deliver is
// offered (and acts) only where it changes something.
func TestWaitingSaysWhy(t *testing.T) {
	h := newHarness(t, newMemStore(), newFakeUploader(),
		req("SR-0", 0), req("SR-2", 2), req("SR-P", 1, "status", "pending_inspection"))
	ctx := context.Background()

	h.drop("SR-0", "a.wav", watcher.Ready, 10)
	h.drop("SR-0", "b.wav", watcher.Ready, 10)
	v := h.waitWhy("SR-0", "2 file(s) here; waiting for _READY or hotdrop deliver SR-0")
	if !v.CanDeliver || v.State != Waiting {
		t.Errorf("SR-0 with two files and no marker: state %s, can deliver %v; want waiting, true", v.State, v.CanDeliver)
	}

	h.drop("SR-2", "a.wav", watcher.Ready, 10)
	v = h.waitWhy("SR-2", "1 of 2 files")
	if v.CanDeliver {
		t.Error("SR-2 (files = 2, auto_deliver) offers deliver, which would do nothing")
	}
	if _, err := h.eng.DeliverSay(ctx, "SR-2"); !errors.Is(err, ErrNothingToDo) || !strings.Contains(err.Error(), "1 of 2 files") {
		t.Errorf("deliver SR-2 with 1 of 2 files: %v, want ErrNothingToDo saying 1 of 2 files", err)
	}
	if err := h.eng.Retry(ctx, "SR-2"); !errors.Is(err, ErrNothingToDo) {
		t.Errorf("retry SR-2 with nothing failed or held: %v, want ErrNothingToDo", err)
	}

	v = h.waitWhy("SR-P", "not open: pending_inspection")
	if v.CanDeliver {
		t.Error("a pending_inspection request offers deliver")
	}

	said, err := h.eng.DeliverSay(ctx, "SR-0")
	if err != nil || !strings.Contains(said, "SR-0 released") {
		t.Errorf("deliver SR-0 = %q, %v; want it released", said, err)
	}
	v = h.waitState("SR-0", Delivered)
	if v.Why != "" || v.CanDeliver {
		t.Errorf("delivered SR-0 still says why %q, can deliver %v", v.Why, v.CanDeliver)
	}
	if _, err := h.eng.DeliverSay(ctx, "SR-0"); !errors.Is(err, ErrNothingToDo) || !strings.Contains(err.Error(), "delivered") {
		t.Errorf("deliver of a delivered request: %v, want ErrNothingToDo saying it is delivered", err)
	}
	if err := h.eng.Retry(ctx, "SR-0"); !errors.Is(err, ErrNothingToDo) {
		t.Errorf("retry of a delivered request: %v, want ErrNothingToDo", err)
	}

	// A file that comes after the delivery is held; the request says it was delivered, not
	// that nothing of it is sent.
	h.drop("SR-0", "late.wav", watcher.Ready, 10)
	h.waitWhy("SR-0", "delivered; 1 file(s) came or changed after and are held: they go only if the studio asks for a redelivery")
}

// gateClock lets a retry wait until the test opens the gate; Now is fixed.
type gateClock struct {
	*clock.Fake
	gate chan time.Time
}

func (c gateClock) After(time.Duration) <-chan time.Time { return c.gate }

// TestRetryingSaysCause (issue 14, item 3): a retrying upload says what failed and when the
// next try is, and stops saying so once it logs in again.
func TestRetryingSaysCause(t *testing.T) {
	up := newFakeUploader()
	var mu sync.Mutex
	down := true
	hold := make(chan struct{}) // the upload after the link is back, until the test has looked
	up.fail = func(_ int, j Job) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return &TransferError{Code: "transient", Msg: "cannot reach ingest.example.com:22: connection refused", Transient: true}
		}
		if j.Connected != nil {
			j.Connected()
		}
		<-hold
		return nil
	}
	clk := gateClock{Fake: clock.NewFake(time.Unix(1_000_000, 0)), gate: make(chan time.Time)}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) {
		o.Clock, o.RetryBase, o.RetryMax = clk, 10*time.Second, 20*time.Second
	}, req("SR-1", 1))
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(hold) }) }) // before the harness stops: a failure must not hang
	h.drop("SR-1", "a.ttml", watcher.Ready, 10)
	v := h.waitWhy("SR-1", "retrying: cannot reach ingest.example.com:22: connection refused — next try in ")
	if len(v.Files) != 1 || v.Files[0].RetryReason == "" || !strings.HasPrefix(v.Files[0].Why, "retrying: cannot reach") {
		t.Errorf("retrying file view = %+v", v.Files)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	clk.gate <- clk.Now()
	v = h.waitWhy("SR-1", "uploading 1 file(s)") // logged in again, still sending
	if v.Files[0].Retrying {
		t.Error("the file still shows retrying after the upload logged in again")
	}
	release.Do(func() { close(hold) })
	v = h.waitState("SR-1", Delivered)
	if v.Files[0].Retrying || v.Why != "" {
		t.Errorf("after the link is back: retrying %v, why %q", v.Files[0].Retrying, v.Why)
	}
}
