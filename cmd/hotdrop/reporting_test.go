package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/report"
)

// studio is a fake tracker and webhook receiver in one.
type studio struct {
	t       *testing.T
	mu      sync.Mutex
	reply   string // GET /api/source-requests; "" = answer 500
	tracked []delivery.Event
	hooked  []delivery.Event
}

func (s *studio) set(reply string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reply = reply
}

func (s *studio) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method == "GET" && r.URL.Path == "/api/source-requests":
		if r.Header.Get("Authorization") != "Bearer tracker-token" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		if s.reply == "" {
			http.Error(w, "tracker down", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, s.reply)
	case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/api/source-requests/"):
		var ev delivery.Event
		json.Unmarshal(body, &ev)
		if want := "/api/source-requests/" + ev.Request.ID + "/events"; r.URL.Path != want {
			s.t.Errorf("tracker event posted to %s, want %s", r.URL.Path, want)
		}
		s.tracked = append(s.tracked, ev)
	case r.Method == "POST" && r.URL.Path == "/hook":
		ts, _ := strconv.ParseInt(r.Header.Get(report.TimestampHeader), 10, 64)
		if d := time.Since(time.Unix(ts, 0)); d < -time.Minute || d > time.Minute {
			s.t.Errorf("webhook %s = %q, want the time it was sent", report.TimestampHeader, r.Header.Get(report.TimestampHeader))
		}
		if got, want := r.Header.Get(report.SignatureHeader), report.Sign([]byte("hook-secret"), ts, body); got != want {
			s.t.Errorf("webhook signature %q, want %q", got, want)
		}
		var ev delivery.Event
		json.Unmarshal(body, &ev)
		s.hooked = append(s.hooked, ev)
	default:
		http.NotFound(w, r)
	}
}

func (s *studio) types(evs *[]delivery.Event) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, ev := range *evs {
		out = append(out, ev.Type)
	}
	return strings.Join(out, ",")
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestReportDaemonWithTrackerAndWebhook(t *testing.T) {
	st := &studio{t: t}
	srv := httptest.NewServer(st)
	defer srv.Close()
	dir := t.TempDir()
	for name, content := range map[string]string{"tracker.token": "tracker-token\n", "hook.secret": "hook-secret\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "root"), 0o755)
	os.MkdirAll(filepath.Join(dir, "out"), 0o755)
	addr := freeAddr(t)
	cfgText := fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
settle = "300ms"
poll = "100ms"
[requests]
source = "http"
url = "%s/api"
token_file = "tracker.token"
poll = "200ms"
[destination]
url = "file://%s"
[status]
listen = %q
webhook = "%s/hook"
webhook_secret_file = "hook.secret"
[checks]
probe = false # the files are arbitrary bytes, not media or timed text
`, srv.URL, filepath.Join(dir, "out"), addr, srv.URL)
	cfgPath := filepath.Join(dir, "hotdrop.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	start := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		started, done := make(chan struct{}), make(chan error, 1)
		go func() { done <- runDaemon(ctx, cfg, newLogger(testWriter{t}), daemonHooks{started: started}) }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("daemon did not start: %v", err)
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		}
	}
	api := func() map[string]report.RequestInfo {
		out := map[string]report.RequestInfo{}
		resp, err := http.Get("http://" + addr + "/api/requests")
		if err != nil {
			return out
		}
		defer resp.Body.Close()
		var list report.RequestList
		json.NewDecoder(resp.Body).Decode(&list)
		for _, r := range list.Requests {
			out[r.ID] = r
		}
		return out
	}
	sr1 := filepath.Join(dir, "root", "Wednesday", "Subtitle fr-FR [SR-1]")

	// A new request on the tracker gets its drop folder; a file there is delivered and both
	// the webhook and the tracker hear of it.
	st.set(`{"requests": [{"id": "SR-1", "title": "Wednesday", "package_id": "PKG-1", "source_type": "Subtitle", "language": "fr-FR", "status": "open"}]}`)
	stop := start()
	waitFor(t, 20*time.Second, "SR-1's drop folder", func() bool { _, err := os.Stat(sr1); return err == nil })
	writeFile(t, filepath.Join(sr1, "ep1_fr-FR.ttml"), 5000)
	waitFor(t, 20*time.Second, "SR-1 delivered", func() bool { return api()["SR-1"].State == "delivered" })
	waitFor(t, 20*time.Second, "the webhook and tracker to hear of it", func() bool {
		return strings.Contains(st.types(&st.hooked), "request.delivered") && strings.Contains(st.types(&st.tracked), "request.delivered")
	})
	stop()

	// The tracker is down at the next start: the requests saved in the journal stay in force.
	st.set("")
	stop = start()
	waitFor(t, 20*time.Second, "the API after restart", func() bool { return api()["SR-1"].Status == "open" })
	if got := api()["SR-1"]; got.State != "delivered" || got.Title != "Wednesday" {
		t.Errorf("after a restart with the tracker down, SR-1 = %+v; want it delivered and known", got)
	}

	// It comes back: SR-1 cancelled, SR-2 new.
	st.set(`{"requests": [{"id": "SR-1", "title": "Wednesday", "package_id": "PKG-1", "source_type": "Subtitle", "language": "fr-FR", "status": "cancelled"},
		{"id": "SR-2", "title": "Wednesday", "package_id": "PKG-1", "source_type": "Forced Sub", "language": "de-DE", "status": "open"}]}`)
	waitFor(t, 20*time.Second, "SR-1 cancelled and SR-2 known", func() bool {
		a := api()
		return a["SR-1"].Status == "cancelled" && a["SR-2"].Status == "open"
	})
	if _, err := os.Stat(filepath.Join(dir, "root", "Wednesday", "Forced Sub de-DE [SR-2]")); err != nil {
		t.Errorf("SR-2's drop folder: %v", err)
	}
	waitFor(t, 20*time.Second, "the status change to reach the webhook", func() bool {
		return strings.Contains(st.types(&st.hooked), "request.status_changed")
	})
	stop()
	seen := map[string]bool{}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, ev := range st.hooked {
		if seen[ev.ID] {
			t.Errorf("webhook got event %s twice", ev.ID)
		}
		seen[ev.ID] = true
	}
}
