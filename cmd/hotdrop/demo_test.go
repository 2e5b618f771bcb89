package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDemo runs `hotdrop demo` as a new user would: the README's first command must work.
func TestDemo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := runDemo(ctx, t.TempDir(), false, &out, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"request delivered", "identical to the source", "SR-1043.hotdrop.json  manifest",
		// The File Bin holds a file whose name fits no request, and says which field differs.
		"held (no_matching_request: no open request fits the name; nearest: SR-1042 (episode \"S01E04\" ≠ \"S01E03\")"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "DIFFERENT") || strings.Contains(out.String(), "not written yet") {
		t.Errorf("demo output reports a problem:\n%s", out.String())
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoKeepServesDashboard (issue 14, item 10): demo --keep keeps the dashboard up and
// prints its URL.
func TestDemoKeepServesDashboard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, t.TempDir(), true, &out, &out) }()
	url := regexp.MustCompile(`Dashboard: +(http://127\.0\.0\.1:\d+/)`)
	var m []string
	for m == nil {
		select {
		case err := <-done:
			t.Fatalf("demo --keep ended: %v\n%s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		m = url.FindStringSubmatch(out.String())
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatalf("GET %s: %v", m[1], err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<title>hotdrop</title>") {
		t.Errorf("GET %s: %d\n%s", m[1], resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("demo --keep after Ctrl-C: %v", err)
	}
}
