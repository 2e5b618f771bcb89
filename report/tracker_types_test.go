package report

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
)

// TestTrackerWarnsAboutDuplicatesAndTypes (issue 14, item 12): a reply that lists one id twice
// keeps the first and names the request; a field that is not text is ignored with a warning
// naming the request; files sent as text makes the request unusable, named.
func TestTrackerWarnsAboutDuplicatesAndTypes(t *testing.T) {
	ft, tr, log, got := loggedTracker(t)
	ft.set(200, `{"requests": [
		{"id": "SR-1", "title": "First", "episode": 3, "urgent": true},
		{"id": "sr-1", "title": "Second"},
		{"id": "SR-2", "title": "Files as text", "files": "2"},
		{"id": "SR-3", "title": "Fine"}]}`)
	if _, err := tr.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range *got {
		ids = append(ids, r.ID+"="+r.Fields["title"])
	}
	if s := strings.Join(ids, ","); s != "SR-1=First,SR-3=Fine" {
		t.Errorf("applied requests %s, want SR-1=First,SR-3=Fine", s)
	}
	for _, want := range []string{
		"request SR-1: fields that are not text are ignored: episode (the number 3), urgent (bool); send them as strings",
		"the reply lists request sr-1 twice; the second is ignored",
		`request SR-2: files = \"2\" is text; expected a number like 2`,
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("tracker log lacks %q:\n%s", want, log.String())
		}
	}
}

// loggedTracker is a Tracker polling a fake tracker, its log kept in log and what it applies
// in *got.
func loggedTracker(t *testing.T) (ft *fakeTracker, tr *Tracker, log *bytes.Buffer, got *[]delivery.Request) {
	t.Helper()
	ft = &fakeTracker{}
	srv := httptest.NewServer(ft)
	t.Cleanup(srv.Close)
	log, got = &bytes.Buffer{}, &[]delivery.Request{}
	tr = &Tracker{URL: srv.URL + "/api", Timeout: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(log, nil)),
		Apply: func(_ context.Context, reqs []delivery.Request) error { *got = reqs; return nil }}
	return ft, tr, log, got
}
