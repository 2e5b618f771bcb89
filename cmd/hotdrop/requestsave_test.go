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
	"github.com/hotdrop/hotdrop/watcher"
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
	reqs := func(title1, title2 string) []delivery.Request {
		return []delivery.Request{
			{ID: "SR-1", Status: "open", Files: 1, Fields: map[string]string{"id": "SR-1", "title": title1}},
			{ID: "SR-2", Status: "open", Files: 1, Fields: map[string]string{"id": "SR-2", "title": title2}},
		}
	}
	opt := delivery.Options{Root: root, FolderTemplate: "{id}", Clock: clk}
	start := func(rs []delivery.Request) *delivery.Engine {
		t.Helper()
		eng := delivery.New(opt, nil, storeAdapter{st}, nil)
		if err := eng.SetRequests(context.Background(), rs); err != nil {
			t.Fatal(err)
		}
		return eng
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
	start(reqs("One", "Two"))
	first := saved()
	if len(first) != 2 {
		t.Fatalf("journal holds %d requests after the first start, want 2", len(first))
	}
	clk.Advance(time.Hour)
	eng := start(reqs("One", "Two, retitled"))
	again := saved()
	if !again["SR-1"].UpdatedAt.Equal(first["SR-1"].UpdatedAt) {
		t.Errorf("unchanged SR-1 was saved again: updated_at %v, then %v", first["SR-1"].UpdatedAt, again["SR-1"].UpdatedAt)
	}
	if again["SR-2"].Fields == first["SR-2"].Fields || !again["SR-2"].UpdatedAt.After(first["SR-2"].UpdatedAt) {
		t.Errorf("changed SR-2 was not saved: fields %s (was %s), updated_at %v (was %v)",
			again["SR-2"].Fields, first["SR-2"].Fields, again["SR-2"].UpdatedAt, first["SR-2"].UpdatedAt)
	}
	// A reload while running: the same, with the other request changed.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx, make(chan watcher.Event)) }()
	defer func() { cancel(); <-done }()
	clk.Advance(time.Hour)
	if err := eng.Reload(ctx, opt, nil, reqs("One, retitled", "Two, retitled")); err != nil {
		t.Fatal(err)
	}
	reloaded := saved()
	if !reloaded["SR-2"].UpdatedAt.Equal(again["SR-2"].UpdatedAt) {
		t.Errorf("reload: unchanged SR-2 was saved again: updated_at %v, then %v", again["SR-2"].UpdatedAt, reloaded["SR-2"].UpdatedAt)
	}
	if !reloaded["SR-1"].UpdatedAt.After(again["SR-1"].UpdatedAt) {
		t.Errorf("reload: retitled SR-1 was not saved: fields %s, updated_at %v", reloaded["SR-1"].Fields, reloaded["SR-1"].UpdatedAt)
	}
}
