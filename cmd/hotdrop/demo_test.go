package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
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

// TestDemoKeepServesDashboard (issue 14, item 10): demo --keep keeps the dashboard up and
// prints its URL.
func TestDemoKeepServesDashboard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := runDemo(ctx, t.TempDir(), true, pw, pw)
		pw.Close()
		done <- err
	}()
	url := regexp.MustCompile(`Dashboard: +(http://127\.0\.0\.1:\d+/)`)
	found := make(chan []string, 1)
	go func() { // reads every line, so the demo never blocks on its output
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := url.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m:
				default:
				}
			}
		}
	}()
	var m []string
	select {
	case m = <-found:
	case err := <-done:
		t.Fatalf("demo --keep ended before printing the dashboard's address: %v", err)
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

// TestDemoRefusesAFolderNotEmpty: `demo --dir` wrote its hotdrop.toml, key and known_hosts
// over whatever was there (an operator's /etc/hotdrop); and in an earlier demo's folder it
// never ended, its samples held already_delivered. A folder holding anything is refused,
// untouched, with what to do.
func TestDemoRefusesAFolderNotEmpty(t *testing.T) {
	for _, c := range []struct{ name, content, want string }{
		{"hotdrop.toml", "# my precious config\n", "would replace what is there"},
		{"notes.txt", "mine\n", "would replace what is there"},
		{"hotdrop.toml", fmt.Sprintf(demoConfig, "127.0.0.1:1", "studio", "", ""), "holds an earlier demo"},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := run([]string{"demo", "--dir", dir}, &out, &errb)
		got, _ := os.ReadFile(p)
		if code == 0 || !strings.Contains(errb.String(), c.want) || string(got) != c.content {
			t.Errorf("demo --dir over %s: exit %d, stderr %q, file now %q; want refused saying %q, file untouched", c.name, code, errb.String(), got, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "known_hosts")); err == nil {
			t.Errorf("the refused demo (%s there) wrote known_hosts", c.name)
		}
	}
}
