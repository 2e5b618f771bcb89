package report

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/store"
	"github.com/hotdrop/hotdrop/watcher"
)

// memStore is a delivery.Store in memory: the tracker tests need an Engine, not a journal.
type memStore struct {
	mu    sync.Mutex
	files map[string]delivery.FileRecord
	next  int64
}

func (m *memStore) SaveRequests(context.Context, []delivery.RequestRecord) error { return nil }
func (m *memStore) SaveFiles(ctx context.Context, fs []delivery.FileRecord) ([]int64, error) {
	ids := make([]int64, len(fs))
	for i, f := range fs {
		ids[i], _ = m.SaveFile(ctx, f)
	}
	return ids, nil
}

func (m *memStore) SaveFile(_ context.Context, f delivery.FileRecord) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.files == nil {
		m.files = map[string]delivery.FileRecord{}
	}
	if old, ok := m.files[f.Path]; ok {
		f.ID = old.ID
	} else {
		m.next++
		f.ID = m.next
	}
	m.files[f.Path] = f
	return f.ID, nil
}
func (m *memStore) DeleteFile(context.Context, string) error             { return nil }
func (m *memStore) Files(context.Context) ([]delivery.FileRecord, error) { return nil, nil }
func (m *memStore) WriteTx(_ context.Context, _ bool, fn func(delivery.JournalTx) error) error {
	return fn(m)
}
func (m *memStore) MarkRenameIntents(_ context.Context, in []delivery.RenameIntent) []error {
	return make([]error, len(in))
}
func (m *memStore) Checkpoint(context.Context, string) (delivery.Checkpoint, bool, error) {
	return delivery.Checkpoint{}, false, nil
}
func (m *memStore) SaveCheckpoint(context.Context, string, delivery.Checkpoint) error { return nil }
func (m *memStore) DeleteCheckpoint(context.Context, string) error                    { return nil }
func (m *memStore) ManifestAt(context.Context, string) (time.Time, error)             { return time.Time{}, nil }
func (m *memStore) MarkManifest(context.Context, string, time.Time) error             { return nil }

type nopUploader struct{}

func (nopUploader) Upload(context.Context, delivery.Job) (delivery.Result, error) {
	return delivery.Result{}, errors.New("not in this test")
}
func (nopUploader) Stat(context.Context, string) (int64, bool, error) { return 0, false, nil }

// fakeTracker serves GET /source-requests from a reply the test sets, with an ETag.
type fakeTracker struct {
	mu      sync.Mutex
	reply   string
	status  int
	version int
	auth    string
	length  int // when set, the Content-Length said up front
}

func (f *fakeTracker) set(status int, reply string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.reply = status, reply
	f.version++
}

func (f *fakeTracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = r.Header.Get("Authorization")
	if r.URL.Path != "/api/source-requests" {
		http.NotFound(w, r)
		return
	}
	etag := fmt.Sprintf(`"v%d"`, f.version)
	if r.Header.Get("If-None-Match") == etag && f.status == http.StatusOK {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	if f.length > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(f.length))
	}
	w.WriteHeader(f.status)
	fmt.Fprint(w, f.reply)
}

func statusOf(reqs []delivery.RequestView) map[string]string {
	out := map[string]string{}
	for _, r := range reqs {
		out[r.ID] = r.Status
	}
	return out
}

func TestReportTrackerReconciles(t *testing.T) {
	root := t.TempDir()
	eng := delivery.New(delivery.Options{Root: root, FolderTemplate: "{title}/{id}", FolderMode: 0o755, Logger: quietLogger()},
		nopUploader{}, &memStore{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seeded := []delivery.Request{{ID: "SR-1", Status: "open", Files: 1, Fields: map[string]string{"id": "SR-1", "title": "Wednesday", "status": "open"}}}
	if err := eng.SetRequests(ctx, seeded); err != nil {
		t.Fatal(err)
	}
	events := make(chan watcher.Event)
	go eng.Run(ctx, events)

	ft := &fakeTracker{}
	srv := httptest.NewServer(ft)
	defer srv.Close()
	applied := 0
	tr := &Tracker{URL: srv.URL + "/api", Token: "tok", Timeout: 2 * time.Second, Logger: quietLogger(),
		Apply: func(ctx context.Context, reqs []delivery.Request) error {
			applied++
			return eng.UpdateRequests(ctx, reqs)
		}}
	tr.Seed(seeded)

	steps := []struct {
		name        string
		status      int
		reply       string
		wantChanged bool
		wantErr     bool
		want        map[string]string
		wantFolders []string
	}{
		{"new request", 200, `{"requests": [{"id": "SR-1", "title": "Wednesday", "status": "open"},
			{"id": "SR-2", "title": "Wednesday", "source_type": "Subtitle", "language": "fr-fr", "status": "open", "files": 2}]}`,
			true, false, map[string]string{"SR-1": "open", "SR-2": "open"}, []string{"Wednesday/SR-1", "Wednesday/SR-2"}},
		{"unchanged (ETag)", 200, "", false, false, map[string]string{"SR-1": "open", "SR-2": "open"}, nil},
		{"missing request changes nothing", 200, `{"requests": [{"id": "SR-2", "title": "Wednesday", "status": "redelivery_requested", "files": 2, "language": "fr-FR", "source_type": "Subtitle"}]}`,
			true, false, map[string]string{"SR-1": "open", "SR-2": "redelivery_requested"}, nil},
		{"cancelled", 200, `{"requests": [{"id": "SR-1", "title": "Wednesday", "status": "cancelled"}]}`,
			true, false, map[string]string{"SR-1": "cancelled", "SR-2": "redelivery_requested"}, nil},
		{"tracker error changes nothing", 500, `oops`, false, true, map[string]string{"SR-1": "cancelled", "SR-2": "redelivery_requested"}, nil},
		{"garbage changes nothing", 200, `{"requests": 12}`, false, true, map[string]string{"SR-1": "cancelled", "SR-2": "redelivery_requested"}, nil},
		{"empty reply changes nothing", 200, `{"requests": []}`, false, false, map[string]string{"SR-1": "cancelled", "SR-2": "redelivery_requested"}, nil},
		{"deeply nested reply refused", 200, `{"requests": [{"id": "SR-1", "status": "open", "x": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}]}`,
			false, true, map[string]string{"SR-1": "cancelled", "SR-2": "redelivery_requested"}, nil},
	}
	for _, st := range steps {
		if st.reply != "" || st.status != 200 {
			ft.set(st.status, st.reply)
		}
		changed, err := tr.PollOnce(ctx)
		if changed != st.wantChanged || (err != nil) != st.wantErr {
			t.Errorf("%s: PollOnce = %v, %v; want changed %v, error %v", st.name, changed, err, st.wantChanged, st.wantErr)
		}
		got := statusOf(eng.Requests())
		for id, want := range st.want {
			if got[id] != want {
				t.Errorf("%s: request %s has status %q, want %q (all: %v)", st.name, id, got[id], want, got)
			}
		}
		for _, f := range st.wantFolders {
			if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(f))); err != nil || !fi.IsDir() {
				t.Errorf("%s: drop folder %s not created: %v", st.name, f, err)
			}
		}
	}
	if ft.auth != "Bearer tok" {
		t.Errorf("tracker saw Authorization %q, want the bearer token", ft.auth)
	}
	if applied != 3 {
		t.Errorf("Apply called %d times, want 3 (only when the list changed)", applied)
	}
	for _, r := range eng.Requests() {
		if r.ID == "SR-2" && r.Fields["language"] != "fr-FR" {
			t.Errorf("SR-2 language = %q, want the canonical fr-FR", r.Fields["language"])
		}
	}
}

func TestReportTrackerEventURL(t *testing.T) {
	tr := &Tracker{URL: "https://tracker.example/api/"}
	got := tr.EventURL(storeEvent("SR 1/x"))
	if want := "https://tracker.example/api/source-requests/SR%201%2Fx/events"; got != want {
		t.Errorf("EventURL = %q, want %q", got, want)
	}
}

func storeEvent(requestID string) store.Event { return store.Event{RequestID: requestID} }

// TestReportTrackerBoundsReply: a reply nested past the limit, or larger than the cap, is an
// error naming the tracker and where, decoded not at all; the list stays as it was.
func TestReportTrackerBoundsReply(t *testing.T) {
	ft := &fakeTracker{}
	srv := httptest.NewServer(ft)
	defer srv.Close()
	// The timeout is not what is tested: reading 64 MiB under the race detector on a busy
	// 2-core CI machine took more than 5 s once ("context deadline exceeded").
	tr := &Tracker{URL: srv.URL + "/api", Timeout: 2 * time.Minute, Logger: quietLogger(),
		Apply: func(context.Context, []delivery.Request) error { t.Error("Apply called"); return nil }}
	ft.set(200, `{"requests": [`+strings.Repeat(`{"a": `, 100)+`1`+strings.Repeat(`}`, 100)+`]}`)
	_, err := tr.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), " reply:1:195: nests objects or arrays more than 32 levels deep") {
		t.Errorf("PollOnce(deep reply) = %v, want refused at reply:1:195", err)
	}
	big := `{"requests": [], "pad": "` + strings.Repeat("x", 64<<20) + `"}`
	ft.set(200, big) // sent chunked: no length said up front, so read up to the cap
	_, err = tr.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "more than the 67108864 allowed") {
		t.Errorf("PollOnce(65 MiB reply) = %v, want refused by size", err)
	}
	ft.mu.Lock()
	ft.length = len(big)
	ft.mu.Unlock()
	_, err = tr.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("the reply is %d bytes, more than the 67108864 allowed", len(big))) {
		t.Errorf("PollOnce(65 MiB reply with its Content-Length) = %v, want refused unread", err)
	}
}
