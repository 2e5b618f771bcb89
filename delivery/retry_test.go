package delivery

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
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

// recordClock fires every timer at once and records how long each wait would have been.
type recordClock struct {
	*clock.Fake
	mu    sync.Mutex
	waits []time.Duration
}

func (c *recordClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	return c.Fake.After(d)
}

func (c *recordClock) list() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// TestBackoffResetsAfterProgress: seven cuts that each come after a login and acknowledged
// bytes retry at the base backoff every time, while failures that never reach the server keep
// growing it. Before, the attempt counter lived for the whole job: the seventh reconnect
// after 100 MB of progress each waited 32 to 64 times the base.
func TestBackoffResetsAfterProgress(t *testing.T) {
	const base = time.Second
	for _, tt := range []struct {
		name     string
		progress bool
	}{{"cut after progress", true}, {"server away", false}} {
		t.Run(tt.name, func(t *testing.T) {
			clk := &recordClock{Fake: clock.NewSkipping(time.Unix(0, 0))}
			up := newFakeUploader()
			up.fail = func(n int, j Job) error {
				if n > 7 {
					return nil
				}
				if tt.progress {
					if j.Connected != nil {
						j.Connected()
					}
					j.Checkpoint(Checkpoint{Partial: "p", Offset: int64(n) * 100 << 20, Size: 1 << 30})
				}
				return &TransferError{Code: "transient", Msg: "connection lost", Transient: true}
			}
			h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) {
				o.Clock, o.RetryBase, o.RetryMax = clk, base, time.Hour
			}, req("SR-1", 1))
			h.drop("SR-1", "movie.mxf", watcher.Ready, 1<<30)
			h.waitState("SR-1", Delivered)
			waits := clk.list()
			if len(waits) != 7 {
				t.Fatalf("waits = %v, want 7", waits)
			}
			for i, w := range waits {
				if tt.progress && w > base {
					t.Errorf("wait %d after a cut that made progress = %v, want at most the base %v (all: %v)", i+1, w, base, waits)
				}
			}
			if !tt.progress && waits[6] < 16*base {
				t.Errorf("seventh wait while the server stays away = %v, want the backoff grown past %v (all: %v)", waits[6], 16*base, waits)
			}
		})
	}
}

// TestRenameAnswerLostIsDelivered: the link drops right after the server renamed the file
// into place, before its answer came back. The rename intent was journaled, so the next
// attempt asks the server which side of the rename it was on, finds the file there, and
// records it delivered: not held remote_exists for a file hotdrop itself put there, and not
// sent again.
func TestRenameAnswerLostIsDelivered(t *testing.T) {
	up := newFakeUploader()
	up.refuseExisting = true
	up.lostReply = func(attempt int, j Job) bool { return attempt == 1 }
	h := newHarness(t, newMemStore(), up, req("SR-49", 1))
	h.drop("SR-49", "a.wav", watcher.Ready, 4)
	var v RequestView
	waitUntil(t, func() bool {
		v = h.views.get("SR-49")
		return v.State == Delivered || v.State == Held || v.State == Failed
	})
	if v.State != Delivered {
		t.Fatalf("request %s after a lost rename answer, want delivered; files: %+v", v.State, v.Files)
	}
	if n := up.count(); n != 1 {
		t.Errorf("uploads = %d, want 1 (the file is not sent again)", n)
	}
}

// TestOwnSideFailureBacksOff: an attempt that logged in and then failed on hotdrop's own side
// (its journal's disk full, so the rename could not be recorded) was tried again every
// second, for as long as the disk stayed full: logging in reset the backoff, as it rightly
// does for a link cut mid-file. A failure of hotdrop's own side backs off all the same.
func TestOwnSideFailureBacksOff(t *testing.T) {
	up := newFakeUploader()
	var attempts atomic.Int32
	up.during = func(_ context.Context, j Job) error {
		if j.Connected != nil {
			j.Connected() // logged in
		}
		if attempts.Add(1) <= 6 {
			return &TransferError{Code: "transient", Transient: true, Source: true,
				Msg: "recording the rename of a.wav in the journal failed (database or disk is full)"}
		}
		return nil
	}
	h := newHarness(t, newMemStore(), up, req("SR-14", 1))
	clk := h.eng.opt.Clock
	start := clk.Now()
	h.drop("SR-14", "a.wav", watcher.Ready, 10)
	h.waitState("SR-14", Delivered)
	// Six failures: waits of about 1, 2, 4, 8, 16 and 32 s (with jitter) against six of 1 s.
	if waited := clk.Now().Sub(start); waited < 30*time.Second {
		t.Errorf("six failures of hotdrop's own side waited %s in all; want the backoff to grow (about a minute)", waited)
	}
}

// TestOwnSideBlipAfterAnOutageRetriesSoon: the failures of an outage are the link's; a
// failure on hotdrop's own side once the link is back is not charged with them (it waited
// over four minutes), nor the other way round.
func TestOwnSideBlipAfterAnOutageRetriesSoon(t *testing.T) {
	up := newFakeUploader()
	var attempts atomic.Int32
	var mu sync.Mutex
	var at []time.Time
	h := newHarness(t, newMemStore(), up, req("SR-17", 1))
	clk := h.eng.opt.Clock
	up.during = func(_ context.Context, j Job) error {
		mu.Lock()
		at = append(at, clk.Now())
		mu.Unlock()
		switch n := attempts.Add(1); {
		case n <= 10:
			return &TransferError{Code: "transient", Transient: true, Msg: "dial tcp: connection refused"}
		case n == 11:
			j.Connected() // the destination is back
			return &TransferError{Code: "transient", Transient: true, Source: true, Msg: "cannot read local file a.wav (input/output error)"}
		}
		return nil
	}
	h.drop("SR-17", "a.wav", watcher.Ready, 10)
	h.waitState("SR-17", Delivered)
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 12 {
		t.Fatalf("%d attempts, want 12", len(at))
	}
	if gap := at[11].Sub(at[10]); gap > time.Second {
		t.Errorf("after one failure of its own side, with the link back, the next try waited %s; want at most a second", gap)
	}
}
