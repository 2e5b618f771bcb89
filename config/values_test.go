package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"512KiB", 512 << 10, true},
		{"40MiB", 40 << 20, true},
		{"40MB", 40e6, true},
		{"1GiB", 1 << 30, true},
		{"1.5 GiB", 3 << 29, true},
		{"2kB", 2000, true},
		{"40MB/s", 0, false},
		{"20M", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"MiB", 0, false},
		{"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestTemplateProblem(t *testing.T) {
	tests := []struct {
		in     string
		fields []string
		off    int
	}{
		{"{title}/{source_type} {language} [{id}]", []string{"title", "source_type", "language", "id"}, -1},
		{"plain", nil, -1},
		{"{title", nil, 0},
		{"{a}{b", []string{"a"}, 3},
		{"a}b", nil, 1},
		{"{a{b}}", nil, 0},
		{"{}", nil, 0},
		{"{Title}", nil, 0},
		{"{9a}", nil, 0},
	}
	for _, tt := range tests {
		fields, off, problem := templateProblem(tt.in)
		if off != tt.off || len(fields) != len(tt.fields) || (off < 0) != (problem == "") {
			t.Errorf("templateProblem(%q) = %v, %d, %q; want %v, %d", tt.in, fields, off, problem, tt.fields, tt.off)
		}
	}
}

func TestDestinationProblem(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"sftp://partner@ingest.example.com:22/incoming", true},
		{"sftp://partner@ingest.example.com/incoming", true},
		{"sftp://partner@[::1]:2222/in", true},
		{"file:///mnt/outbox", true},
		{"sftp://ingest.example.com/incoming", false},
		{"sftp://u:secret@host/in", false},
		{"sftp://u@host:99999/in", false},
		{"sftp://u@host", false},
		{"sftp://u@/in", false},
		{"file://outbox", false},
		{"file:outbox", false},
		{"ftp://u@host/in", false},
		{"/mnt/outbox", false},
		{"sftp://u@host/in?x=1", false},
	}
	for _, tt := range tests {
		if p := destinationProblem(tt.in); (p == "") != tt.ok {
			t.Errorf("destinationProblem(%q) = %q, want ok %v", tt.in, p, tt.ok)
		}
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		in   string
		end  bool
		want time.Duration
		ok   bool
	}{
		{"00:00", false, 0, true},
		{"08:30", false, 8*time.Hour + 30*time.Minute, true},
		{"23:59", false, 23*time.Hour + 59*time.Minute, true},
		{"24:00", true, 24 * time.Hour, true},
		{"24:00", false, 0, false},
		{"8:00", false, 0, false},
		{"12:60", false, 0, false},
		{"noon", false, 0, false},
	}
	for _, tt := range tests {
		got, ok := parseClock(tt.in, tt.end)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseClock(%q, %v) = %v, %v; want %v, %v", tt.in, tt.end, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseFolderMode(t *testing.T) {
	tests := []struct {
		in   string
		want os.FileMode
		ok   bool
	}{
		{"2775", os.ModeSetgid | 0o775, true},
		{"0755", 0o755, true},
		{"755", 0o755, true},
		{"7777", os.ModeSetuid | os.ModeSetgid | os.ModeSticky | 0o777, true},
		{"2779", 0, false},
		{"17777", 0, false},
		{"", 0, false},
		{"0o755", 0, false},
	}
	for _, tt := range tests {
		got, err := parseFolderMode(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseFolderMode(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestListenProblem(t *testing.T) {
	tests := []struct {
		in       string
		loopback bool
		ok       bool
	}{
		{"127.0.0.1:8470", true, true},
		{"localhost:8470", true, true},
		{"[::1]:8470", true, true},
		{"0.0.0.0:8470", false, true},
		{":8470", false, true},
		{"8470", false, false},
		{"host:http", false, false},
	}
	for _, tt := range tests {
		lb, p := listenProblem(tt.in)
		if lb != tt.loopback || (p == "") != tt.ok {
			t.Errorf("listenProblem(%q) = %v, %q; want loopback %v, ok %v", tt.in, lb, p, tt.loopback, tt.ok)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"settle", "rescan", "root", "mode", "poll"}
	for in, want := range map[string]string{"setle": "settle", "Settle": "settle", "rot": "root", "moed": "", "xyz": "", "pol": "poll"} {
		if got := suggest(in, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestURLErrorsNeverShowAPassword: config errors reach the log (a refused SIGHUP reload
// logs them), so a password written into a URL is never repeated in one.
func TestURLErrorsNeverShowAPassword(t *testing.T) {
	for _, tc := range []struct{ key, table, url string }{
		{"url", "destination", "sftp://partner:hunter2@ingest.example.com/incoming"},
		{"url", "destination", "sftp://partner:hunter2@ingest.example.com:99999/in"},
		{"url", "destination", "ftp://partner:hunter2@ingest.example.com/in"},
		{"webhook", "status", "ftp://hook:hunter2@hooks.example/x"},
		{"url", "requests", "gopher://u:hunter2@tracker.example/api"},
		// URLs that do not parse: the parser's words quoted a piece of the password, and the
		// fallback missed one holding a / or a ?.
		{"url", "destination", "sftp://partner:hunter2/x@ingest.example.com/in"},
		{"url", "destination", "sftp://partner:hunter2?x@ingest.example.com/in"},
		{"webhook", "status", "https://bot:hunter2/word@hooks.example/x"},
		{"webhook", "status", "https://bot:hunter2?word@hooks.example/x"},
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "hotdrop.toml")
		body := fmt.Sprintf("[watch]\nroot = %q\n[destination]\nurl = \"file:///tmp/out\"\n[%s]\n%s = %q\n", dir, tc.table, tc.key, tc.url)
		if tc.table == "destination" {
			body = fmt.Sprintf("[watch]\nroot = %q\n[destination]\n%s = %q\n", dir, tc.key, tc.url)
		}
		if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(cfg)
		if err == nil {
			t.Errorf("%s.%s = %q loaded, want an error", tc.table, tc.key, tc.url)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s.%s error shows the password: %v", tc.table, tc.key, err)
		}
	}
}
