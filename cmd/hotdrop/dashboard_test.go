//go:build browser

// The dashboard's browser tests drive a real Chromium through chromedp. They build only with
// -tags browser, as `make test` and CI run them, so that a plain build or `go test` compiles
// no chromedp.

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// findBrowser is Debian's chromium or another Chrome; the test skips without one, except
// under CI=true, where .ci/run installs it and a skip would hide a broken dashboard.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium or Chrome found: install Debian's chromium (apt-get install chromium) to run the dashboard browser test"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// dashUploader wraps the real uploader: it slows uploads down through the progress callback
// (the uploader reads the next chunk only when the callback returns), so a progress bar has
// time to move, and fails the first upload of the files named in failOnce with a permanent
// error, so the retry button has something to re-queue.
type dashUploader struct {
	delivery.Uploader
	bps      int64
	failOnce map[string]bool
	mu       sync.Mutex
	calls    map[string]int
}

func (u *dashUploader) Upload(ctx context.Context, j delivery.Job) (delivery.Result, error) {
	name := filepath.Base(j.LocalPath)
	u.mu.Lock()
	u.calls[name]++
	fail := u.failOnce[name] && u.calls[name] == 1
	u.mu.Unlock()
	if fail {
		return delivery.Result{}, &delivery.TransferError{Code: "permission_denied", Msg: "the server refused to let hotdrop write there (test)"}
	}
	if inner := j.Progress; inner != nil && u.bps > 0 && !strings.HasSuffix(j.RemoteRel, ".hotdrop.json") {
		start := time.Now()
		j.Progress = func(done int64) {
			due := time.Duration(float64(done) / float64(u.bps) * float64(time.Second))
			if d := due - time.Since(start); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
			inner(done)
		}
	}
	return u.Uploader.Upload(ctx, j)
}

func (u *dashUploader) count(name string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[name]
}

const dashExtraRequests = `
[[request]]
id = "SR-3"
title = "Nightfall"
package_id = "PKG-9"
source_type = "Audio Description"
language = "de-DE"
`

// dashboard is a daemon with its dashboard open in a headless browser.
type dashboard struct {
	t    *testing.T
	addr string
	eval func(js string) (string, error)
	// evalAsync is eval for an expression that gives a promise: its value once settled.
	evalAsync func(js string) (string, error)
}

// openDashboard starts e's daemon (uploads through up) with a status listener and opens the
// dashboard in a headless Chromium; everything stops when the test ends.
func openDashboard(t *testing.T, e *e2e, up *dashUploader) *dashboard {
	browser := findBrowser(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e.cfg.Status.Listen = addr

	ctx, cancel := context.WithCancel(context.Background())
	started, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, e.cfg, newLogger(testWriter{t}), daemonHooks{started: started,
			wrapUploader: func(u delivery.Uploader) delivery.Uploader { up.Uploader = u; return up }})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("daemon did not start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true), chromedp.WindowSize(1400, 1000))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("HOTDROP_SCREENSHOT") == "" {
			return // HOTDROP_SCREENSHOT=1 keeps one of a passing run too
		}
		sctx, scancel := context.WithTimeout(bctx, 10*time.Second)
		defer scancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		// Kept outside t.TempDir, which is removed when the test ends.
		p := filepath.Join(os.TempDir(), fmt.Sprintf("hotdrop-%s-%d.png", t.Name(), time.Now().Unix()))
		if err := os.WriteFile(p, png, 0o644); err == nil {
			t.Logf("screenshot of the dashboard: %s", p)
		}
	})
	eval := func(js string, opts ...chromedp.EvaluateOption) (string, error) {
		c, cc := context.WithTimeout(bctx, 5*time.Second)
		defer cc()
		return chromedp.Run(c, chromedp.Evaluate[string](js, opts...))
	}
	return &dashboard{t: t, addr: addr,
		eval: func(js string) (string, error) { return eval(js) },
		evalAsync: func(js string) (string, error) {
			return eval(js, chromedp.EvalAwaitPromise)
		}}
}

// waitJS waits until js evaluates to "ok" in the page.
func (d *dashboard) waitJS(what, js string) {
	d.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var last string
	var err error
	for time.Now().Before(deadline) {
		if last, err = d.eval(js); err == nil && last == "ok" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	text, _ := d.eval("document.body.innerText")
	if resp, err := http.Get("http://" + d.addr + "/api/requests"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		d.t.Logf("API: %s", b)
	}
	d.t.Fatalf("timed out waiting for %s (last %q, %v); the page shows:\n%s", what, last, err, text)
}

func TestDashboardInBrowser(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	if err := os.WriteFile(filepath.Join(e.dir, "requests.d", "extra.toml"), []byte(dashExtraRequests), 0o644); err != nil {
		t.Fatal(err)
	}
	up := &dashUploader{bps: 6 << 20, failOnce: map[string]bool{"ep1_en-US.scc": true}, calls: map[string]int{}}
	d := openDashboard(t, e, up)
	eval, waitJS := d.eval, d.waitJS
	cardState := func(id string) string {
		s, _ := eval(fmt.Sprintf(`(() => { const c = document.querySelector('article[data-id=%q]'); return c ? c.className : "none" })()`, id))
		return s
	}

	// The cards are listed.
	waitJS("the three request cards", `(() => { const ids = [...document.querySelectorAll("article.card")].map(c => c.dataset.id).join(",");
		return ids.includes("SR-1") && ids.includes("SR-2") && ids.includes("SR-3") ? "ok" : ids })()`)

	// A progress bar advances during a real upload to sshd.
	writeFile(t, filepath.Join(e.folder("SR-1"), "ep1_fr-FR.ttml"), 24<<20)
	widths := map[string]bool{}
	sawRate := false
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(cardState("SR-1"), "s-delivered") {
		if time.Now().After(deadline) {
			t.Fatalf("SR-1 not delivered; card %q", cardState("SR-1"))
		}
		w, _ := eval(`(() => { const d = document.querySelector('article[data-id="SR-1"] li.file .bar > div'); return d ? d.style.width : "" })()`)
		if w != "" && w != "0.0%" && w != "100.0%" {
			widths[w] = true
		}
		if r, _ := eval(`(() => { const d = document.querySelector('article[data-id="SR-1"] li.file .rate'); return d ? d.textContent : "" })()`); strings.Contains(r, "/s") && strings.Contains(r, "ETA") {
			sawRate = true
		}
		time.Sleep(50 * time.Millisecond) // samples the bar while the upload runs
	}
	if len(widths) < 2 {
		t.Errorf("the progress bar showed %v during the upload; want it to advance through at least two values", keys(widths))
	}
	if !sawRate {
		t.Error("the progress line never showed a rate and an ETA")
	}

	// A held file shows its reason in plain words.
	writeFile(t, filepath.Join(e.cfg.Watch.Root, "_bin", "stray.ttml"), 1000)
	waitJS("the File Bin's held file with its reason", `(() => { const c = [...document.querySelectorAll("article.card")].find(c => c.innerText.includes("File Bin"));
		return c && c.querySelector(".reason") && c.innerText.includes("No request matches this file") && c.innerText.includes("drop folder") ? "ok" : (c ? c.innerText : "no bin card") })()`)

	// The retry button re-queues a failed file.
	writeFile(t, filepath.Join(e.folder("SR-2"), "ep1_en-US.scc"), 2000)
	waitJS("SR-2 to fail with a retry button", `(() => { const c = document.querySelector('article[data-id="SR-2"]');
		return c && c.classList.contains("s-failed") && c.querySelector("button.retry-file") && c.innerText.includes("The server refused permission") ? "ok" : (c ? c.className : "") })()`)
	if _, err := eval(`(() => { document.querySelector('article[data-id="SR-2"] button.retry-file').click(); return "ok" })()`); err != nil {
		t.Fatal(err)
	}
	waitJS("SR-2 to be delivered after the retry", `document.querySelector('article[data-id="SR-2"]').classList.contains("s-delivered") ? "ok" : ""`)
	if n := up.count("ep1_en-US.scc"); n != 2 {
		t.Errorf("ep1_en-US.scc was uploaded %d times, want 2 (failed once, then re-queued by the button)", n)
	}

	// Grouping.
	groups := func(by string) string {
		s, err := eval(fmt.Sprintf(`(() => { const g = document.getElementById("group"); g.value = %q; g.dispatchEvent(new Event("change"));
			return [...document.querySelectorAll("section.group h2")].map(h => h.textContent).join("|") })()`, by))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct{ by, want string }{
		{"state", "waiting (1)|delivered (2)|File Bin (1)"},
		{"source_type", "Audio Description (1)|SDH/CC (1)|Subtitle (1)|File Bin (1)"},
		{"title", "Nightfall (1)|Wednesday (2)|File Bin (1)"},
	} {
		if got := groups(tc.by); got != tc.want {
			t.Errorf("grouped by %s: %q, want %q", tc.by, got, tc.want)
		}
	}

	// Search over title, package id and request id.
	for _, tc := range []struct{ q, want string }{
		{"PKG-9", "SR-3"},
		{"sr-2", "SR-2"},
		{"wednesday", "SR-1,SR-2"},
		{"nothing-like-this", ""},
		{"", ",SR-1,SR-2,SR-3"},
	} {
		got, err := eval(fmt.Sprintf(`(() => { const s = document.getElementById("search"); s.value = %q; s.dispatchEvent(new Event("input"));
			return [...document.querySelectorAll("article.card")].map(c => c.dataset.id).sort().join(",") })()`, tc.q))
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("search %q shows %q, want %q", tc.q, got, tc.want)
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
