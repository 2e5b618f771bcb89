package main

import (
	"strings"
	"testing"
)

// TestStatusWide (issue 14, item 6): the table cuts reasons at a word and says how to see
// them whole; --wide prints them whole.
func TestStatusWide(t *testing.T) {
	cfgPath, _ := statusFixture(t, "")
	out, _, code := runCmd(t, "status", "--wide", "--config", cfgPath)
	whole := `invalid_name: me_20.wav: the remote path for "me_20.wav" cannot be made from destination.path: missing {language}`
	if code != 0 || !strings.Contains(out, whole) || strings.Contains(out, "reasons cut to fit") {
		t.Errorf("status --wide: exit %d, want the whole reason %q and no note:\n%s", code, whole, out)
	}
	out, _, _ = runCmd(t, "status", "--config", cfgPath)
	if strings.Contains(out, whole) || !strings.Contains(out, `the remote path for "me_20.wav" …`) {
		t.Errorf("status: the reason is not cut at a word:\n%s", out)
	}
}
