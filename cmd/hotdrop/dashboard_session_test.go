//go:build browser

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// With status.token_file set, the dashboard signs in with the token in a real browser, shows
// "Sign out" while its session lasts, and signing out goes back to the login form with the
// session gone: the next POST from the page needs the token again.
func TestDashboardSignsInAndOut(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	const token = "dashboard-test-token-0123456789"
	tok := filepath.Join(e.dir, "status.token")
	if err := os.WriteFile(tok, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.Status.TokenFile = tok
	d := openDashboard(t, e, &dashUploader{calls: map[string]int{}})

	// Loopback: the board is open to read, without a session and without "Sign out".
	d.waitJS("the board without a session", `(() => { const b = document.getElementById("board"), s = document.getElementById("signout");
		return b && !b.innerText.includes("Loading") && s && s.hidden ? "ok" : "" })()`)
	retryStatus := `fetch("/api/requests/SR-1/retry", {method: "POST", credentials: "same-origin"}).then(r => String(r.status))`
	if got, err := d.evalAsync(retryStatus); err != nil || got != "401" {
		t.Fatalf("POST from the page before signing in: %q (%v), want 401", got, err)
	}

	if _, err := d.eval(`(() => { location.href = "/login"; return "ok" })()`); err != nil {
		t.Fatal(err)
	}
	d.waitJS("the login form", `document.querySelector('form[action="/login"] input[name="token"]') ? "ok" : ""`)
	if _, err := d.eval(`(() => { const f = document.querySelector('form[action="/login"]'); f.token.value = "` + token + `"; f.submit(); return "ok" })()`); err != nil {
		t.Fatal(err)
	}
	d.waitJS("the board with \"Sign out\"", `location.pathname === "/" && !document.getElementById("signout").hidden ? "ok" : location.pathname`)
	// SR-1 has nothing to retry: the engine's 409 says the POST got past the token.
	if got, err := d.evalAsync(retryStatus); err != nil || got != "409" {
		t.Fatalf("POST from the signed-in page: %q (%v), want the engine's 409 (nothing to retry)", got, err)
	}

	if _, err := d.eval(`(() => { document.querySelector("#signout button").click(); return "ok" })()`); err != nil {
		t.Fatal(err)
	}
	d.waitJS("the login form after signing out", `location.pathname === "/login" && document.querySelector('form[action="/login"]') ? "ok" : location.pathname`)
	if got, err := d.evalAsync(retryStatus); err != nil || got != "401" {
		t.Errorf("POST from the page after signing out: %q (%v), want 401", got, err)
	}
}
