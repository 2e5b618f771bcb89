package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogFormats(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		check         func(t *testing.T, out string)
	}{
		{"json", "debug", func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 4 {
				t.Fatalf("want 4 lines, got %q", out)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
				t.Fatalf("line %q is not JSON: %v", lines[1], err)
			}
			if rec["msg"] != "uploaded" || rec["level"] != "INFO" || rec["password"] != "***" {
				t.Errorf("record = %v", rec)
			}
		}},
		{"text", "warn", func(t *testing.T, out string) {
			if strings.Contains(out, "uploaded") || !strings.Contains(out, "level=WARN") || !strings.Contains(out, "level=ERROR") {
				t.Errorf("warn level logged %q", out)
			}
		}},
	} {
		t.Run(tc.format+"/"+tc.level, func(t *testing.T) {
			fs := flag.NewFlagSet("run", flag.ContinueOnError)
			o := addLogFlags(fs)
			if err := fs.Parse([]string{"--log-format", tc.format, "--log-level", tc.level}); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			log, err := o.logger(&b)
			if err != nil {
				t.Fatal(err)
			}
			logSample(log)
			tc.check(t, b.String())
		})
	}
}

func logSample(log *slog.Logger) {
	log.Debug("dialling", "addr", "127.0.0.1:22")
	log.Info("uploaded", "remote", "/in/a.ttml", "password", "hunter2")
	log.Warn("retrying", "attempt", 2)
	log.With("request", "SR-1").Error("failed", "reason", "auth_failed")
}

// TestLogJournaldPriorities: under systemd every line starts with its syslog priority, and
// journald's own timestamp replaces slog's.
func TestLogJournaldPriorities(t *testing.T) {
	var b strings.Builder
	logSample(buildLogger(&b, "text", slog.LevelDebug, true))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{"<7>", "<6>", "<4>", "<3>"}
	if len(lines) != len(want) {
		t.Fatalf("got %q", b.String())
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]+"level=") || strings.Contains(l, "time=") {
			t.Errorf("line %d = %q, want it to start with %slevel= and hold no time", i, l, want[i])
		}
	}
	if strings.Contains(b.String(), "hunter2") {
		t.Errorf("a password reached the log: %q", b.String())
	}
	if !strings.Contains(lines[3], "request=SR-1") {
		t.Errorf("attributes from With were lost: %q", lines[3])
	}
}

// TestLogJournaldStream: JOURNAL_STREAM is honoured only for the very stream it names.
func TestLogJournaldStream(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dev, ino, ok := fileID(f)
	if !ok {
		t.Skip("no device and inode numbers on this platform")
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", dev, ino))
	if !isJournald(f) {
		t.Error("isJournald = false for the stream JOURNAL_STREAM names")
	}
	if isJournald(io.Discard) {
		t.Error("isJournald = true for a writer that is not a file")
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", dev, ino+1))
	if isJournald(f) {
		t.Error("isJournald = true for another stream")
	}
}

func TestLogFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--log-format", "xml"},
		{"run", "--log-level", "loud"},
	} {
		var out, errb strings.Builder
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("hotdrop %s: exit %d, want %d (%s)", strings.Join(args, " "), code, exitUsage, errb.String())
		}
	}
}
