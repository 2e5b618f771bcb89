package delivery

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) Emit(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
}

// types lists the journaled (non-progress) event types for request id, in order.
func (l *eventLog) types(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.events {
		if ev.Type == EventFileProgress {
			continue
		}
		if ev.Request != nil && ev.Request.ID == id || ev.Request == nil && id == "" {
			out = append(out, ev.Type)
		}
	}
	return out
}

func withEvents(t *testing.T, up *fakeUploader, mutate func(*Options), reqs ...Request) (*harness, *eventLog) {
	t.Helper()
	ev := &eventLog{}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) {
		o.Events = ev
		if mutate != nil {
			mutate(o)
		}
	}, reqs...)
	return h, ev
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEventsOfADelivery(t *testing.T) {
	h, ev := withEvents(t, newFakeUploader(), nil, req("SR-30", 1))
	h.drop("SR-30", "a.ttml", watcher.Settling, 4)
	h.drop("SR-30", "a.ttml", watcher.Ready, 4)
	h.waitState("SR-30", Delivered)
	want := []string{EventFileUploading, EventFileDelivered, EventRequestDelivered}
	got := ev.types("SR-30")
	// request.ready may come before the uploads start, in the same step.
	if !equal(got, want) && !equal(got, append([]string{EventRequestReady}, want...)) {
		t.Errorf("events = %v, want %v", got, want)
	}
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ids := map[string]bool{}
	for _, e := range ev.events {
		if e.ID == "" || ids[e.ID] || e.At.IsZero() {
			t.Errorf("event %+v: want a unique id and a time", e)
		}
		ids[e.ID] = true
		if e.Type == EventFileDelivered && (e.File == nil || e.File.SHA256 == "" || e.File.Metadata["language"] != "fr-FR") {
			t.Errorf("file.delivered = %+v, want checksum and metadata", e.File)
		}
	}
}

func TestHeldThenReleasedEvents(t *testing.T) {
	h, ev := withEvents(t, newFakeUploader(), nil, req("SR-31", 1))
	h.drop("SR-31", "a.ttml", watcher.Ready, 4)
	h.waitState("SR-31", Delivered)
	h.drop("SR-31", "a.ttml", watcher.Ready, 5) // changed after delivery
	h.waitState("SR-31", Held)
	got := ev.types("SR-31")
	if n := len(got); n < 2 || got[n-2] != EventFileHeld || got[n-1] != EventRequestHeld {
		t.Errorf("events = %v, want file.held then request.held at the end", got)
	}
}

func TestDeliverCommand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := withEvents(t, newFakeUploader(), func(o *Options) { o.AutoDeliver = false }, req("SR-32", 1), req("SR-33", 0))
		h.drop("SR-32", "a.ttml", watcher.Ready, 4)
		h.waitState("SR-32", Ready)
		synctest.Wait() // the engine has done all it would with the ready request
		if h.up.count() != 0 {
			t.Fatalf("auto_deliver = false, but an upload started")
		}
		if err := h.eng.Deliver(context.Background(), "SR-32"); err != nil {
			t.Fatal(err)
		}
		h.waitState("SR-32", Delivered)

		// files = 0: deliver stands in for the ready marker.
		h.drop("SR-33", "x.mxf", watcher.Ready, 4)
		if err := h.eng.Deliver(context.Background(), "SR-33"); err != nil {
			t.Fatal(err)
		}
		h.waitState("SR-33", Delivered)
		if err := h.eng.Deliver(context.Background(), "SR-nope"); err == nil {
			t.Errorf("Deliver(unknown) = nil, want an error")
		}
	})
}

func TestRetryAfterFailure(t *testing.T) {
	up := newFakeUploader()
	var broken atomic.Bool
	broken.Store(true)
	up.fail = func(int, Job) error {
		if broken.Load() {
			return &TransferError{Code: "permission_denied", Msg: "denied"}
		}
		return nil
	}
	callerDone := make(chan struct{})
	up.during = func(ctx context.Context, _ Job) error {
		<-callerDone // the retry's caller has returned and its context ended
		return ctx.Err()
	}
	h, _ := withEvents(t, up, nil, req("SR-34", 1))
	p := h.drop("SR-34", "a.ttml", watcher.Ready, 4)
	h.waitState("SR-34", Failed)
	broken.Store(false)
	// The caller's context ends as soon as the call returns (an HTTP handler's does): the
	// upload it started must live on.
	cctx, cancel := context.WithCancel(context.Background())
	if err := h.eng.RetryFile(cctx, p); err != nil {
		t.Fatal(err)
	}
	cancel()
	close(callerDone)
	h.waitState("SR-34", Delivered)
}

func TestUnreachableAfterAlertAfter(t *testing.T) {
	up := newFakeUploader()
	var down atomic.Bool
	down.Store(true)
	up.fail = func(n int, _ Job) error {
		if down.Load() {
			return &TransferError{Code: "transient", Msg: "connection refused", Transient: true}
		}
		return nil
	}
	// The harness's clock moves by each retry's backoff (a second or more): the second failure
	// comes well after AlertAfter, in no real time.
	h, ev := withEvents(t, up, func(o *Options) { o.AlertAfter = 500 * time.Millisecond }, req("SR-35", 1))
	h.drop("SR-35", "a.ttml", watcher.Ready, 4)
	if !eventually(h.eng.Unreachable) {
		t.Fatal("never unreachable")
	}
	down.Store(false)
	h.waitState("SR-35", Delivered)
	if h.eng.Unreachable() {
		t.Errorf("still unreachable after a delivery")
	}
	got := ev.types("")
	if len(got) != 2 || got[0] != EventDestinationDown || got[1] != EventDestinationBack {
		t.Errorf("destination events = %v, want unreachable then back, once each", got)
	}
}

// A redelivery under a new name, after the first delivery's source was moved away, is not
// held too_many_files; a request dropped by a reload and added back does not announce its
// delivery (or write its manifest) twice.
func TestRedeliveryNewNameAndReAddedRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := newFakeUploader()
		h, ev := withEvents(t, up, func(o *Options) { o.Manifest = true }, req("SR-70", 1))
		p := h.drop("SR-70", "a_v1.ttml", watcher.Ready, 4)
		h.waitState("SR-70", Delivered)
		rel, _ := filepath.Rel(h.root, p)
		h.events <- watcher.Event{Kind: watcher.Removed, Path: p, Rel: filepath.ToSlash(rel)}

		opt := h.eng.opt
		if err := h.eng.Reload(context.Background(), opt, nil, []Request{req("SR-70", 1, "status", StatusRedeliveryRequested)}); err != nil {
			t.Fatal(err)
		}
		h.drop("SR-70", "a_v2.ttml", watcher.Ready, 5)
		waitUntil(t, func() bool { _, ok := up.sizeOf("SR-70/a_v2.ttml"); return ok })
		h.waitState("SR-70", Delivered)

		// Dropped from the requests, then back.
		if err := h.eng.Reload(context.Background(), opt, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.Reload(context.Background(), opt, nil, []Request{req("SR-70", 1, "status", StatusRedeliveryRequested)}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // whatever the re-added request would announce is announced
		n := 0
		for _, typ := range ev.types("SR-70") {
			if typ == EventRequestDelivered {
				n++
			}
		}
		if n != 2 {
			t.Errorf("request.delivered %d times, want 2 (the delivery and the redelivery): %v", n, ev.types("SR-70"))
		}
	})
}

// Event ids made later sort later (the journal's index on them then grows at its end), and
// ids made in the same millisecond still differ.
func TestEventIDsSortByTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seen := map[string]bool{}
		prev := ""
		for range 50 {
			same := newEventID()
			if !strings.HasPrefix(same, "ev_") || len(same) != 27 {
				t.Fatalf("event id %q, want ev_ and 24 hex digits", same)
			}
			for range 100 {
				id := newEventID()
				if seen[id] {
					t.Fatalf("event id %s made twice", id)
				}
				seen[id] = true
			}
			if same <= prev {
				t.Fatalf("event id %s made after %s sorts before it", same, prev)
			}
			prev = same
			time.Sleep(time.Millisecond)
		}
	})
}
