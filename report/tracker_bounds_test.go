package report

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/watcher"
)

// hostileRequests are request objects a tracker must not get past the per-request bounds,
// each with what its one warning line must say. Shared with FuzzTrackerRequest's seeds.
func hostileRequests() []struct{ id, entry, warn string } {
	big := strings.Repeat("x", 1<<20)
	var many []string
	for i := range 20 {
		many = append(many, fmt.Sprintf(`"f%d": "%s"`, i, strings.Repeat("y", 4000)))
	}
	return []struct{ id, entry, warn string }{
		{"SR-2", `{"id": "SR-2", "title": "Notes", "notes": "` + big + `"}`,
			"request SR-2: field notes (1048576 bytes) is longer than the 4096 bytes hotdrop takes per field"},
		{"SR-xxxxx", `{"id": "SR-` + big + `", "title": "Huge id"}`,
			"its id is 1048579 bytes; hotdrop takes ids of at most 128 bytes"},
		{"SR-4", `{"id": "SR-4", "` + strings.Repeat("k", 5000) + `": "v"}`,
			"request SR-4: field a field name of 5000 bytes is longer than the 4096 bytes"},
		{"SR-5", `{"id": "SR-5", "title": "` + strings.Repeat("t", 5000) + `", "notes": "` + strings.Repeat("n", 4097) + `"}`,
			"request SR-5: fields notes (4097 bytes), title (5000 bytes) are longer than the 4096 bytes"},
		{"SR-6", `{"id": "SR-6", ` + strings.Join(many, ", ") + `}`,
			"hotdrop takes at most 65536 bytes per request"},
		{"SR-7", "{\"id\": \"SR-7\xff\xfe\", \"title\": \"Latin-1\"}", "the id is not UTF-8 text"},
		{"SR-8", `{"id": "SR-8\u0000", "title": "NUL"}`, "is not usable"},
		{"SR-9", `{"id": "SR-9\u00a0", "title": "NBSP"}`, "is not usable"},
		{"SR-10", `"SR-10"`, "not a request object"},
		{"SR-11", `{"id": "SR-11", "title": "Long status", "status": "` + big + `"}`, "field status (1048576 bytes) is longer"},
	}
}

// TestTrackerSkipsRequestsBreakingABound: a request with a huge field, a huge id, a huge field
// name, too many bytes in all, or an id that is not clean UTF-8 text is skipped with one
// warning naming it (its id cut) and the bound; the log never carries the values; the good
// requests of the same reply load.
func TestTrackerSkipsRequestsBreakingABound(t *testing.T) {
	ft, tr, log, got := loggedTracker(t)
	entries := []string{`{"id": "SR-1", "title": "Fine"}`}
	hostile := hostileRequests()
	for _, h := range hostile {
		entries = append(entries, h.entry)
	}
	entries = append(entries, `{"id": "SR-99", "title": "Also fine", "notes": "`+strings.Repeat("ok ", 1300)+`"}`)
	ft.set(200, `{"requests": [`+strings.Join(entries, ",\n")+`]}`)
	if _, err := tr.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range *got {
		ids = append(ids, r.ID)
	}
	if s := strings.Join(ids, ","); s != "SR-1,SR-99" {
		t.Errorf("applied requests %s, want SR-1,SR-99", s)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	for _, h := range hostile {
		n := 0
		for _, l := range lines {
			if strings.Contains(l, h.warn) && strings.Contains(l, h.id) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d log lines name %s and say %q, want exactly 1", n, h.id, h.warn)
		}
	}
	if n := strings.Count(log.String(), "skipping a request"); n != len(hostile) {
		t.Errorf("%d skip warnings for %d bad requests", n, len(hostile))
	}
	if log.Len() > 16<<10 {
		t.Errorf("the log holds %d bytes for %d skipped requests; the values got into it", log.Len(), len(hostile))
	}
	if strings.Contains(log.String(), strings.Repeat("x", 200)) {
		t.Error("the log shows a huge value beyond bounded.Shown")
	}
	if !strings.Contains(log.String(), "(1048579 bytes in all)") {
		t.Errorf("the huge id is not named cut, with its length:\n%.2000s", log.String())
	}
}

// TestTrackerRefusesTooManyRequests: a reply listing more than Max requests is refused whole,
// like any reply hotdrop cannot use: an error saying the count and the bound, nothing applied,
// the last good requests stay; the default Max is config.DefaultRequestsMax (20,000).
func TestTrackerRefusesTooManyRequests(t *testing.T) {
	ft := &fakeTracker{}
	srv := httptest.NewServer(ft)
	defer srv.Close()
	applied := 0
	tr := &Tracker{URL: srv.URL + "/api", Timeout: 10 * time.Second, Logger: quietLogger(), Max: 3,
		Apply: func(context.Context, []delivery.Request) error { applied++; return nil }}
	reply := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"requests": [`)
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":"SR-%d"}`, i)
		}
		b.WriteString("]}")
		return b.String()
	}
	ft.set(200, reply(2))
	if _, err := tr.PollOnce(context.Background()); err != nil || applied != 1 {
		t.Fatalf("PollOnce(2 requests) = %v, applied %d times", err, applied)
	}
	ft.set(200, reply(4))
	_, err := tr.PollOnce(context.Background())
	if err == nil || !strings.Contains(err.Error(), "the reply lists 4 requests, more than the 3 hotdrop takes from one reply (requests.max)") {
		t.Errorf("PollOnce(4 requests, Max 3) = %v, want refused by count", err)
	}
	if applied != 1 || len(tr.Known()) != 2 {
		t.Errorf("after the refused reply: Apply called %d times, %d known requests; want 1 and the 2 from before", applied, len(tr.Known()))
	}

	tr.Max = 0 // the default
	ft.set(200, reply(20_001))
	if _, err := tr.PollOnce(context.Background()); err == nil || !strings.Contains(err.Error(), "more than the 20000 hotdrop takes") {
		t.Errorf("PollOnce(20,001 requests, default Max) = %v, want refused by count", err)
	}
	ft.set(200, reply(20_000))
	if _, err := tr.PollOnce(context.Background()); err != nil || len(tr.Known()) != 20_000 {
		t.Errorf("PollOnce(20,000 requests) = %v with %d known; want all taken", err, len(tr.Known()))
	}
}

// TestTrackerRequestWithNameTooLongSaysWhy: a request within the bounds whose drop folder name
// is still too long for the file system (a 300-byte title) is not silently waiting: its view
// says there is no drop folder, and why; the other request gets its folder.
func TestTrackerRequestWithNameTooLongSaysWhy(t *testing.T) {
	eng := delivery.New(delivery.Options{Root: t.TempDir(), FolderTemplate: "{title}/{id}", FolderMode: 0o755, Logger: quietLogger()},
		nopUploader{}, &memStore{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := eng.SetRequests(ctx, nil); err != nil {
		t.Fatal(err)
	}
	go eng.Run(ctx, make(chan watcher.Event))
	ft := &fakeTracker{}
	srv := httptest.NewServer(ft)
	defer srv.Close()
	tr := &Tracker{URL: srv.URL + "/api", Timeout: 10 * time.Second, Logger: quietLogger(), Apply: eng.UpdateRequests}
	ft.set(200, `{"requests": [{"id": "SR-1", "title": "Fine"}, {"id": "SR-2", "title": "`+strings.Repeat("T", 300)+`"}]}`)
	_, err := tr.PollOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), "file name too long") {
		t.Errorf("PollOnce = %v, want the folder's failure said", err)
	}
	views := map[string]delivery.RequestView{}
	for _, v := range eng.Requests() {
		views[v.ID] = v
	}
	if v := views["SR-2"]; !strings.HasPrefix(v.Why, "no drop folder: ") || !strings.Contains(v.Why, "file name too long") || v.CanDeliver {
		t.Errorf("SR-2 view: why %q, can deliver %v; want no drop folder, file name too long", v.Why, v.CanDeliver)
	}
	if v := views["SR-1"]; strings.HasPrefix(v.Why, "no drop folder") {
		t.Errorf("SR-1 view: why %q; its folder should have been made", v.Why)
	}
}

// FuzzTrackerRequest: no request object, hostile or not, makes requestFromTracker panic, and
// whatever it accepts is within the bounds. go test -fuzz FuzzTrackerRequest ./report/
func FuzzTrackerRequest(f *testing.F) {
	f.Add([]byte(`{"id": "SR-1", "title": "Fine", "files": 2, "language": "fr-fr"}`))
	for _, h := range hostileRequests() {
		f.Add([]byte(h.entry))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		r, err := requestFromTracker(data, func(string) {})
		if err != nil {
			return
		}
		if len(r.ID) > MaxTrackerID || !usableID(r.ID) {
			t.Errorf("accepted id %q", r.ID)
		}
		for k, v := range r.Fields {
			if len(k) > maxTrackerField || len(v) > maxTrackerField {
				t.Errorf("accepted field %.40q of %d bytes", k, len(v))
			}
		}
	})
}
