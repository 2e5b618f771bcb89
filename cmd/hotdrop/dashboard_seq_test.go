//go:build browser

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hotdrop/hotdrop/delivery"
)

// The dashboard shows a frame sequence as one row with its frame count and, when frames are
// missing, the hold naming them (issue 11) — not one row per frame.
func TestDashboardShowsSequenceAsOneRow(t *testing.T) {
	browser := findBrowser(t)
	out := t.TempDir()
	e := newE2E(t, "", "file://"+filepath.ToSlash(out), "", "", "auto")
	if err := os.WriteFile(filepath.Join(e.dir, "requests.d", "r.toml"), []byte(`
[[request]]
id = "SR-V"
title = "Shot"
source_type = "VFX"
files = 0
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e.cfg.Status.Listen = addr
	e.cfg.Watch.Folder = "{id}"
	e.cfg.Destination.Path = "{id}/{name}"
	e.start()

	drop := filepath.Join(e.dir, "root", "SR-V")
	for n := 1001; n <= 1040; n++ {
		if n == 1013 || n == 1020 || n == 1021 {
			continue // a render node died
		}
		writeFile(t, filepath.Join(drop, fmt.Sprintf("shot_010.%d.exr", n)), 2048)
	}
	if err := os.WriteFile(filepath.Join(drop, "_READY"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatalf("opening the dashboard: %v", err)
	}
	js := `(() => {
		const c = document.querySelector('article[data-id="SR-V"]');
		if (!c) return "no card";
		const rows = c.querySelectorAll("li.file");
		const seq = c.querySelector("li.sequence");
		if (!seq) return "no sequence row; " + rows.length + " rows";
		return [rows.length, c.className, seq.innerText.replace(/\s+/g, " ")].join(" | ");
	})()`
	want := "1 | card s-held | shot_010.[1001-1040].exr"
	deadline := time.Now().Add(45 * time.Second)
	var got string
	for time.Now().Before(deadline) {
		c, cc := context.WithTimeout(bctx, 5*time.Second)
		got, _ = chromedp.Run(c, chromedp.Evaluate[string](js))
		cc()
		if strings.HasPrefix(got, want) {
			break
		}
		time.Sleep(100 * time.Millisecond) // a poll with a deadline: each look runs script in the browser
	}
	for _, s := range []string{want, "37 frames", "missing 3 frame(s): 1013, 1020-1021"} {
		if !strings.Contains(got, s) {
			t.Fatalf("the sequence's card shows %q; want it to contain %q", got, s)
		}
	}

	// The missing frames are rendered: the sequence goes out whole, still one row.
	for _, n := range []int{1013, 1020, 1021} {
		writeFile(t, filepath.Join(drop, fmt.Sprintf("shot_010.%d.exr", n)), 2048)
	}
	want = "1 | card s-delivered | shot_010.[1001-1040].exr DELIVERED 40 frames · 80.0 KiB · 40 delivered"
	deadline = time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) && !strings.HasPrefix(got, want) {
		time.Sleep(100 * time.Millisecond)
		c, cc := context.WithTimeout(bctx, 5*time.Second)
		got, _ = chromedp.Run(c, chromedp.Evaluate[string](js))
		cc()
	}
	if !strings.HasPrefix(got, want) {
		t.Fatalf("the sequence's card shows %q; want %q", got, want)
	}
	if n := len(remoteFiles(t, filepath.Join(out, "SR-V"))); n < 40 {
		t.Errorf("%d files at the destination, want the 40 frames", n)
	}
	// The manifest lists every frame with its checksum, and the sequence they make.
	var m delivery.Manifest
	waitFor(t, 30*time.Second, "the manifest", func() bool {
		b, err := os.ReadFile(filepath.Join(out, "SR-V", "SR-V.hotdrop.json"))
		return err == nil && json.Unmarshal(b, &m) == nil
	})
	if len(m.Files) != 40 || m.Files[0].SHA256 == "" || len(m.Sequences) != 1 || m.Sequences[0].Name != "shot_010.[1001-1040].exr" || m.Sequences[0].Frames != 40 {
		t.Errorf("manifest: %d files (first %+v), sequences %+v", len(m.Files), m.Files[0], m.Sequences)
	}
}
