package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/store"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// receiver is a webhook that fails, then times out, then comes back, and records what it
// accepted.
type receiver struct {
	t      *testing.T
	secret []byte
	mu     sync.Mutex
	calls  int
	fails  int // the first fails calls answer 500
	hangs  int // the next hangs calls never answer (the client times out)
	got    []delivery.Event
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts, err := strconv.ParseInt(r.Header.Get(TimestampHeader), 10, 64)
	if err != nil {
		rc.t.Errorf("%s = %q, want Unix seconds", TimestampHeader, r.Header.Get(TimestampHeader))
	}
	if want := Sign(rc.secret, ts, body); r.Header.Get(SignatureHeader) != want {
		rc.t.Errorf("signature %q, want %q", r.Header.Get(SignatureHeader), want)
	}
	rc.mu.Lock()
	rc.calls++
	n := rc.calls
	rc.mu.Unlock()
	switch {
	case n <= rc.fails:
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return
	case n <= rc.fails+rc.hangs:
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	}
	var ev delivery.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		rc.t.Errorf("body is not an event: %v", err)
	}
	if r.Header.Get("X-Hotdrop-Delivery") != ev.ID {
		rc.t.Errorf("X-Hotdrop-Delivery %q, want %q", r.Header.Get("X-Hotdrop-Delivery"), ev.ID)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, ev)
	rc.mu.Unlock()
}

func (rc *receiver) accepted() []delivery.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery.Event{}, rc.got...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func emitN(h *Hub, from, n int) []delivery.Event {
	var out []delivery.Event
	for i := from; i < from+n; i++ {
		ev := delivery.Event{ID: fmt.Sprintf("ev_%03d", i), Type: delivery.EventFileUploading, At: time.Unix(1700000000+int64(i), 0).UTC(),
			Request: &delivery.EventRequest{ID: fmt.Sprintf("SR-%d", i%3), State: "uploading"},
			File:    &delivery.EventFile{ID: int64(i), Name: fmt.Sprintf("f%d.wav", i), Size: 10}}
		h.Emit(ev)
		out = append(out, ev)
	}
	return out
}

func TestReportOutboxSurvivesFailuresTimeoutsAndRestart(t *testing.T) {
	secret := []byte("s3cret")
	rc := &receiver{t: t, secret: secret, fails: 4, hangs: 2}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	dbPath := filepath.Join(t.TempDir(), "state.db")
	clk := clock.NewSkipping(time.Unix(1700000000, 0)) // backoff of minutes takes no real time

	start := func(st *store.Store) (*Hub, context.CancelFunc, chan error) {
		h := NewHub(HubOptions{Store: st, Webhook: true, Logger: quietLogger()})
		s := &Sender{Store: st, Target: TargetWebhook, URL: func(store.Event) string { return srv.URL + "/hook" },
			// The two hanging calls cost a timeout each. It is generous because an answer
			// that comes later than the timeout is (rightly: at-least-once) sent again,
			// which the test below would count as a duplicate on a loaded machine.
			Secret: secret, Timeout: 2 * time.Second, Clock: clk, Logger: quietLogger()}
		h.OnJournal(s.Wake)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		s.Wake()
		go func() { done <- s.Run(ctx) }()
		return h, cancel, done
	}

	st := openStore(t, dbPath)
	h, cancel, done := start(st)
	sent := emitN(h, 0, 20)
	waitFor(t, "some events to arrive", func() bool { return len(rc.accepted()) >= 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	st.Close()

	// A restart: a new store handle, hub and sender; what was owed is still owed.
	st = openStore(t, dbPath)
	defer st.Close()
	h, cancel, done = start(st)
	defer func() { cancel(); <-done }()
	sent = append(sent, emitN(h, 20, 10)...)
	waitFor(t, "every event to arrive", func() bool { return len(rc.accepted()) >= len(sent) })

	got := rc.accepted()
	seen := map[string]bool{}
	for _, ev := range got {
		if seen[ev.ID] {
			t.Errorf("event %s arrived twice", ev.ID)
		}
		seen[ev.ID] = true
	}
	for _, ev := range sent {
		if !seen[ev.ID] {
			t.Errorf("event %s never arrived", ev.ID)
		}
	}
	// In order per request: each request's events arrive in the order they were emitted.
	last := map[string]string{}
	for _, ev := range got {
		if prev := last[ev.Request.ID]; prev != "" && ev.ID < prev {
			t.Errorf("request %s: event %s arrived after %s", ev.Request.ID, ev.ID, prev)
		}
		last[ev.Request.ID] = ev.ID
	}
	if rc.calls < len(sent)+rc.fails+rc.hangs {
		t.Errorf("receiver saw %d calls, want at least %d (failures and timeouts retried)", rc.calls, len(sent)+rc.fails+rc.hangs)
	}
	// The receiver records an event before it answers, and the sender marks it sent only
	// after the answer: wait for the last of those marks.
	var items []store.OutboxItem
	var err error
	waitFor(t, "the outbox to empty", func() bool {
		items, err = st.Outbox(context.Background(), TargetWebhook, 100)
		return err != nil || len(items) == 0
	})
	if err != nil {
		t.Errorf("outbox after delivery: %v", err)
	}
}

func TestReportOutboxFourHundredHoldsOnlyItsRequest(t *testing.T) {
	var mu sync.Mutex
	var order []string
	refused := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev delivery.Event
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		defer mu.Unlock()
		if ev.Request.ID == "SR-0" && refused < 3 {
			refused++
			order = append(order, "refused "+ev.ID)
			http.Error(w, "unknown request", http.StatusNotFound)
			return
		}
		order = append(order, ev.ID)
	}))
	defer srv.Close()
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	defer st.Close()
	h := NewHub(HubOptions{Store: st, Tracker: true, Logger: quietLogger()})
	emitN(h, 0, 6) // SR-0: ev_000, ev_003; SR-1: ev_001, ev_004; SR-2: ev_002, ev_005
	h.Emit(delivery.Event{ID: "ev_dest", Type: delivery.EventDestinationDown, At: time.Now()})
	s := &Sender{Store: st, Target: TargetTracker, URL: func(ev store.Event) string { return srv.URL + "/" + ev.RequestID },
		Clock: clock.NewSkipping(time.Unix(1700000000, 0)), Logger: quietLogger()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	s.Wake()
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "every event", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) >= 9
	})
	mu.Lock()
	defer mu.Unlock()
	// SR-1 and SR-2 were not held up by SR-0's refusals; SR-0's second event waited for its first.
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	if pos["ev_001"] > pos["ev_000"] || pos["ev_002"] > pos["ev_000"] {
		t.Errorf("order %v: other requests waited for SR-0's retries", order)
	}
	if pos["ev_003"] < pos["ev_000"] {
		t.Errorf("order %v: SR-0's second event overtook its first", order)
	}
	if _, ok := pos["ev_dest"]; ok {
		t.Errorf("order %v: a destination event went to the tracker", order)
	}
}
