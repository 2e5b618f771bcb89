package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestHelpEveryCommand (issue 14, item 8): `hotdrop help CMD` is CMD's own help, on stdout:
// a usage line, every flag spelt --flag as the synopsis spells it, and an example.
func TestHelpEveryCommand(t *testing.T) {
	singleDash := regexp.MustCompile(`(?m)^\s+-[a-z]`)
	for _, cmd := range []string{"run", "demo", "init", "check", "trust", "explain", "status", "retry", "deliver", "send", "service", "version"} {
		out, errOut, code := runCmd(t, "help", cmd)
		if code != exitOK || errOut != "" {
			t.Errorf("hotdrop help %s: exit %d, stderr %q", cmd, code, errOut)
		}
		if !strings.HasPrefix(out, "Usage: hotdrop "+cmd) || !strings.Contains(out, "\nExamples:\n  hotdrop "+cmd) {
			t.Errorf("hotdrop help %s lacks its usage line or an example:\n%s", cmd, out)
		}
		if singleDash.MatchString(out) {
			t.Errorf("hotdrop help %s lists a flag as -flag:\n%s", cmd, out)
		}
		if _, _, code := runCmd(t, cmd, "--help"); code != exitOK {
			t.Errorf("hotdrop %s --help: exit %d", cmd, code)
		}
	}
	out, _, _ := runCmd(t, "help", "service")
	for _, want := range []string{"  --config string\n", "  --user\n      a per-user service"} {
		if !strings.Contains(out, want) {
			t.Errorf("hotdrop help service lacks %q:\n%s", want, out)
		}
	}
	if out, _, _ := runCmd(t, "help"); !strings.Contains(out, "Commands:") {
		t.Errorf("hotdrop help without a command is not the general usage:\n%s", out)
	}
}
