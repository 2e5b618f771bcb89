package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes runs this binary as hotdrop in its own process and checks the status the
// service manager sees: 64 for a wrong command line and 78 for a config error (sysexits),
// never 2, which the Go runtime uses for a crash and which must be restarted.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("state_dir = \"state\"\n[watch]\nroot = \"root\"\nrooot = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
		says string
	}{
		{nil, 64, "Usage:"},
		{[]string{"frobnicate"}, 64, `unknown command "frobnicate"`},
		{[]string{"run", "--no-such-flag"}, 64, "no-such-flag"},
		{[]string{"status", "SR-1", "SR-2", "--config", bad}, 64, "at most one request ID"},
		{[]string{"run", "--config", filepath.Join(dir, "missing.toml")}, 78, "missing.toml"},
		{[]string{"run", "--config", bad}, 78, "bad.toml:4:1"},
		{[]string{"check", "--config", bad}, 78, "bad.toml:4:1"},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), "HOTDROP_TEST_AS_DAEMON=1")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.want || !strings.Contains(string(out), tc.says) {
			t.Errorf("hotdrop %s: exit %d, output %q; want exit %d saying %q", strings.Join(tc.args, " "), code, out, tc.want, tc.says)
		}
		if strings.Contains(string(out), "goroutine ") {
			t.Errorf("hotdrop %s printed a stack trace:\n%s", strings.Join(tc.args, " "), out)
		}
	}
}
