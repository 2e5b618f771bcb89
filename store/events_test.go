package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestEventsAndOutbox(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, id := range []string{"ev_a", "ev_b", "ev_a"} { // ev_a twice: journaled once
		seq, err := s.AppendEvent(ctx, Event{ID: id, Type: "file.delivered", RequestID: "SR-1", At: at, Body: []byte(`{"id":"` + id + `"}`)},
			[]string{"webhook", "tracker"})
		if err != nil {
			t.Fatalf("AppendEvent(%s) = %v", id, err)
		}
		if want := int64(i%2 + 1); seq != want {
			t.Errorf("AppendEvent(%s) seq = %d, want %d", id, seq, want)
		}
	}
	evs, err := s.Events(ctx, 0, "SR-1", 10)
	if err != nil || len(evs) != 2 || evs[0].ID != "ev_a" || string(evs[1].Body) != `{"id":"ev_b"}` || !evs[0].At.Equal(at) {
		t.Fatalf("Events = %+v, %v", evs, err)
	}
	items, err := s.Outbox(ctx, "webhook", 10)
	if err != nil || len(items) != 2 || items[0].Event.ID != "ev_a" {
		t.Fatalf("Outbox = %+v, %v", items, err)
	}
	next := at.Add(time.Minute)
	if err := s.OutboxFailed(ctx, items[0].Seq, 3, next, "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	if err := s.OutboxDone(ctx, items[1].Seq); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopened: the owed delivery and its retry state are still there.
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	items, _ = s.Outbox(ctx, "webhook", 10)
	if len(items) != 1 || items[0].Attempts != 3 || !items[0].NextTry.Equal(next) || items[0].LastError != "HTTP 500" {
		t.Fatalf("Outbox after reopen = %+v", items)
	}
	if tr, _ := s.Outbox(ctx, "tracker", 10); len(tr) != 2 {
		t.Errorf("tracker outbox = %d items, want 2", len(tr))
	}
	// Pruning keeps events still owed to a target.
	if n, err := s.PruneEvents(ctx, at.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("PruneEvents = %d, %v; want 0 (both are owed to the tracker)", n, err)
	}
	for _, it := range append(items, mustOutbox(t, s, "tracker")...) {
		s.OutboxDone(ctx, it.Seq)
	}
	if n, err := s.PruneEvents(ctx, at.Add(time.Hour)); err != nil || n != 2 {
		t.Errorf("PruneEvents = %d, %v; want 2", n, err)
	}
}

func mustOutbox(t *testing.T, s *Store, target string) []OutboxItem {
	t.Helper()
	items, err := s.Outbox(context.Background(), target, 100)
	if err != nil {
		t.Fatal(err)
	}
	return items
}
