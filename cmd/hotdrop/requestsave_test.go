package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/store"
)

// A restart saves only the request records that changed, in the real journal: the others
// keep the updated_at of their last change.
func TestRestartSavesOnlyChangedRequests(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	root := filepath.Join(dir, "watch")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	reqs := func(title2 string) []delivery.Request {
		return []delivery.Request{
			{ID: "SR-1", Status: "open", Files: 1, Fields: map[string]string{"id": "SR-1", "title": "One"}},
			{ID: "SR-2", Status: "open", Files: 1, Fields: map[string]string{"id": "SR-2", "title": title2}},
		}
	}
	start := func(rs []delivery.Request) {
		t.Helper()
		eng := delivery.New(delivery.Options{Root: root, FolderTemplate: "{id}", Clock: clk}, nil, storeAdapter{st}, nil)
		if err := eng.SetRequests(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
	}
	saved := func() map[string]store.Request {
		t.Helper()
		rs, err := st.Requests(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.Request{}
		for _, r := range rs {
			out[r.ID] = r
		}
		return out
	}
	start(reqs("Two"))
	first := saved()
	if len(first) != 2 {
		t.Fatalf("journal holds %d requests after the first start, want 2", len(first))
	}
	clk.Advance(time.Hour)
	start(reqs("Two, retitled"))
	again := saved()
	if !again["SR-1"].UpdatedAt.Equal(first["SR-1"].UpdatedAt) {
		t.Errorf("unchanged SR-1 was saved again: updated_at %v, then %v", first["SR-1"].UpdatedAt, again["SR-1"].UpdatedAt)
	}
	if again["SR-2"].Fields == first["SR-2"].Fields || !again["SR-2"].UpdatedAt.After(first["SR-2"].UpdatedAt) {
		t.Errorf("changed SR-2 was not saved: fields %s (was %s), updated_at %v (was %v)",
			again["SR-2"].Fields, first["SR-2"].Fields, again["SR-2"].UpdatedAt, first["SR-2"].UpdatedAt)
	}
}
