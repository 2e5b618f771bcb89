//go:build browser

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

const dashWhyRequests = `
[[request]]
id = "SR-10"
title = "Zero"
package_id = "PKG-10"
source_type = "Subtitle"
language = "fr-FR"
files = 0

[[request]]
id = "SR-11"
title = "Pair"
package_id = "PKG-11"
source_type = "Subtitle"
language = "fr-FR"
files = 2

[[request]]
id = "SR-12"
title = "Inspect"
package_id = "PKG-12"
source_type = "Subtitle"
language = "fr-FR"
status = "pending_inspection"
`

// TestDashboardSaysWhy (issue 14, items 3 and 9): every waiting card says what it waits
// for, Deliver is offered only where it does something and says what it did, what needs a
// person comes first, search reaches file names and reasons, the counts follow the search,
// delivered files say when and where, and a single-file card has one Retry.
func TestDashboardSaysWhy(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	if err := os.WriteFile(filepath.Join(e.dir, "requests.d", "why.toml"), []byte(dashWhyRequests), 0o644); err != nil {
		t.Fatal(err)
	}
	up := &dashUploader{failOnce: map[string]bool{"denied_file.ttml": true}, calls: map[string]int{}}
	d := openDashboard(t, e, up)
	folder := func(id string) string {
		names := map[string]string{"SR-10": "Zero/Subtitle fr-FR [SR-10]", "SR-11": "Pair/Subtitle fr-FR [SR-11]"}
		if n, ok := names[id]; ok {
			return filepath.Join(e.cfg.Watch.Root, filepath.FromSlash(n))
		}
		return e.folder(id)
	}
	cardHas := func(id, what string, wants ...string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const c = document.querySelector('article[data-id=%q]'); if (!c) return "no card";
			const t = c.innerText; for (const w of %s) if (!t.includes(w)) return t; return "ok" })()`, id, jsList(wants))
		d.waitJS(what, js)
	}
	buttons := func(id string) string {
		s, _ := d.eval(fmt.Sprintf(`[...document.querySelectorAll('article[data-id=%q] button')].map(b => b.className).join(",")`, id))
		return s
	}

	writeFile(t, filepath.Join(folder("SR-10"), "a_long_name.ttml"), 100)
	writeFile(t, filepath.Join(folder("SR-10"), "b.ttml"), 100)
	cardHas("SR-10", "SR-10 to say it waits for _READY", "2 file(s) here; waiting for _READY or hotdrop deliver SR-10")
	if b := buttons("SR-10"); b != "deliver" {
		t.Errorf("SR-10 (files = 0, no marker) buttons %q, want deliver", b)
	}
	writeFile(t, filepath.Join(folder("SR-11"), "one.ttml"), 100)
	cardHas("SR-11", "SR-11 to say 1 of 2 files", "1 of 2 files ready: waiting for 1 more")
	if b := buttons("SR-11"); b != "" {
		t.Errorf("SR-11 (1 of 2 files, auto_deliver) buttons %q, want none: deliver would do nothing", b)
	}
	cardHas("SR-12", "SR-12 to say it is not open", "not open: pending_inspection")

	if _, err := d.eval(`(() => { document.querySelector('article[data-id="SR-10"] button.deliver').click(); return "ok" })()`); err != nil {
		t.Fatal(err)
	}
	d.waitJS("the deliver to say what it did", `(() => { const s = document.getElementById("said"); return !s.hidden && s.innerText.includes("SR-10 released") ? "ok" : s.innerText })()`)
	cardHas("SR-10", "SR-10 delivered with when and where", "delivered ", "/PKG-10/Subtitle/a_long_name.ttml", "/PKG-10/Subtitle/b.ttml", "→ ")
	if n, _ := d.eval(`String(document.querySelectorAll('article[data-id="SR-10"] .file-name wbr').length)`); n == "0" || n == "" {
		t.Error("long file names have no wrap points after their separators")
	}
	d.waitJS("the header's last delivery and destination", `(() => { const l = document.getElementById("last").innerText, dst = document.getElementById("dest").innerText;
		return l.startsWith("last delivery ") && dst === "destination reachable" ? "ok" : l + " / " + dst })()`)

	// A single-file request that failed: one Retry (the file's), not two.
	writeFile(t, filepath.Join(folder("SR-1"), "denied_file.ttml"), 100)
	cardHas("SR-1", "SR-1 to fail", "The server refused permission")
	// The file's Retry comes with its journal id, a batch after the failure shows (137a736):
	// waited for, and then it is the only button.
	d.waitJS("SR-1's one Retry, the file's", `(() => { const b = [...document.querySelectorAll('article[data-id="SR-1"] button')].map(b => b.className).join(",");
		return b === "retry-file" ? "ok" : "buttons: " + b })()`)
	if b := buttons("SR-1"); b != "retry-file" {
		t.Errorf("single-file failed card buttons %q, want one retry-file", b)
	}

	// Grouped by state, what needs a person comes first.
	got, err := d.eval(`(() => { const g = document.getElementById("group"); g.value = "state"; g.dispatchEvent(new Event("change"));
		return [...document.querySelectorAll("section.group h2")].map(h => h.textContent).join("|") })()`)
	if want := "failed (1)|waiting (3)|delivered (1)"; err != nil || got != want {
		t.Errorf("grouped by state: %q, %v; want %q", got, err, want)
	}

	// Search reaches file names and reasons; the counts follow it.
	for _, tc := range []struct{ q, cards, counts string }{
		{"b.ttml", "SR-10", "1 delivered (search)"},
		{"refused permission", "SR-1", "1 failed (search)"},
		{"pending_inspection", "SR-12", "1 waiting (search)"},
		{"", "SR-1,SR-10,SR-11,SR-12,SR-2", "1 failed · 3 waiting · 1 delivered"},
	} {
		got, err := d.eval(fmt.Sprintf(`(() => { const s = document.getElementById("search"); s.value = %q; s.dispatchEvent(new Event("input"));
			return [...document.querySelectorAll("article.card")].map(c => c.dataset.id).filter(Boolean).sort().join(",") + "|" + document.getElementById("counts").innerText })()`, tc.q))
		if want := tc.cards + "|" + tc.counts; err != nil || got != want {
			t.Errorf("search %q: %q, %v; want %q", tc.q, got, err, want)
		}
	}

	// Item 5: a broken requests file is a banner, and a PROBLEM in hotdrop status, until fixed.
	reqFile := filepath.Join(e.dir, "requests.d", "why.toml")
	if err := os.WriteFile(reqFile, []byte(dashWhyRequests+"\n[[request]]\nid = \"SR-13\"\nfiles = \"two\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantPos := reqFile + ":28:9: request.files: expected an integer"
	d.waitJS("the problems banner", fmt.Sprintf(`(() => { const b = document.getElementById("problems");
		return !b.hidden && b.innerText.includes(%q) ? "ok" : b.innerText })()`, wantPos))
	out, errOut, code := runCmd(t, "status", "--config", e.cfg.File)
	if code != 0 || !strings.HasPrefix(out, "PROBLEM: the daemon refused a reload") || !strings.Contains(out, wantPos) {
		t.Errorf("hotdrop status with a broken requests file: exit %d:\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(reqFile, []byte(dashWhyRequests), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitJS("the problems banner to go", `document.getElementById("problems").hidden ? "ok" : "shown"`)
	if out, _, _ := runCmd(t, "status", "--config", e.cfg.File); strings.Contains(out, "PROBLEM") {
		t.Errorf("hotdrop status still shows a problem after the fix:\n%s", out)
	}
}

func jsList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ",") + "]"
}
