package watcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/clock"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"ok with defaults", Options{Root: "/srv/x"}, ""},
		{"no root", Options{}, "no root"},
		{"negative settle", Options{Root: "/x", Settle: -1}, "settle"},
		{"negative poll", Options{Root: "/x", Poll: -time.Second}, "poll"},
		{"bad mode", Options{Root: "/x", Mode: "inotify"}, `"inotify"`},
		{"bad pattern", Options{Root: "/x", Ignore: []string{"[a-"}}, `"[a-"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.opts)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%+v) = %v, want no error", tt.opts, err)
				}
				if w.settle != config.DefaultSettle || w.rescan != config.DefaultRescan || w.poll != config.DefaultPoll || w.mode != ModeAuto {
					t.Fatalf("defaults = %v %v %v %q", w.settle, w.rescan, w.poll, w.mode)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New(%+v) = %v, want error mentioning %s", tt.opts, err, tt.wantErr)
			}
		})
	}
}

func TestRunNeedsRootFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, filepath.Dir(file), "f", "x")
	for _, root := range []string{filepath.Join(t.TempDir(), "missing"), file} {
		w, err := New(Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		err = w.Run(context.Background(), make(chan Event))
		if err == nil || !strings.Contains(err.Error(), root) {
			t.Errorf("Run on %s = %v, want an error naming it", root, err)
		}
	}
}

// A 30 s settle period driven by the fake clock: nothing is ready at 29 s,
// an unchanged file is ready at 30 s, and a change at 20 s restarts the
// clock.
func TestSettleWithFakeClock(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.txt", "aaa")
	writeFile(t, root, "b.txt", "bbb")
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	h := start(t, Options{Root: root, Settle: 30 * time.Second, Poll: time.Second, Mode: ModePoll, Clock: fc}, nil)
	h.c.waitFor(t, "both files settling", 5*time.Second, func(evs []got) bool {
		return reflect.DeepEqual(rels(evs, Settling), []string{"a.txt", "b.txt"})
	})

	h.advance(t, fc, 20*time.Second)
	appendFile(t, root, "a.txt", "more")
	h.advance(t, fc, 9*time.Second) // t = 29 s, every tick up to it handled
	if r := rels(h.c.all(), Ready); len(r) != 0 {
		t.Fatalf("ready at 29 s: %v", r)
	}
	h.advance(t, fc, 2*time.Second) // t = 31 s
	h.c.waitKind(t, Ready, "b.txt")
	if n := h.c.count(Ready, "a.txt"); n != 0 {
		t.Fatalf("a.txt changed at 20 s but was ready at 31 s")
	}
	h.advance(t, fc, 18*time.Second) // t = 49 s: the change was seen at 20 or 21 s
	if n := h.c.count(Ready, "a.txt"); n != 0 {
		t.Fatalf("a.txt ready at 49 s, less than 30 s after its change")
	}
	h.advance(t, fc, 3*time.Second) // t = 52 s
	h.c.waitKind(t, Ready, "a.txt")
	for _, e := range h.c.all() {
		if e.Kind == Ready && e.Rel == "a.txt" && e.Info.Size != 7 {
			t.Fatalf("a.txt ready with size %d, want 7", e.Info.Size)
		}
	}
	if n := h.c.count(Settling, "a.txt"); n != 1 {
		t.Fatalf("a.txt Settling sent %d times, want 1 (it never was ready in between)", n)
	}
}

// A file is Ready when its settle period has passed, not at the settle ticker's next turn
// after that (up to a quarter of watch.settle later, a second with the default settle).
func TestReadyWhenDueNotAtTheNextTurn(t *testing.T) {
	root := t.TempDir()
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	// The settle ticker turns every second; polls every 1.5 s find the file between turns.
	h := start(t, Options{Root: root, Settle: 4 * time.Second, Poll: 1500 * time.Millisecond, Mode: ModePoll, Clock: fc}, nil)
	step := func(to time.Duration) {
		for fc.Now().Sub(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) < to {
			want := h.c.ticked("") + fc.Advance(500*time.Millisecond)
			h.c.waitFor(t, fmt.Sprintf("the ticks at %v handled", fc.Now()), 10*time.Second,
				func([]got) bool { return h.c.ticked("") >= want })
		}
	}
	writeFile(t, root, "f.exr", "frame")
	step(1500 * time.Millisecond) // the poll at 1.5 s finds it
	h.c.waitKind(t, Settling, "f.exr")
	step(5 * time.Second)
	if n := h.c.count(Ready, "f.exr"); n != 0 {
		t.Fatalf("ready at 5 s, before its settle period passed")
	}
	step(5500 * time.Millisecond)
	if n := h.c.count(Ready, "f.exr"); n != 1 {
		t.Fatalf("not ready at 5.5 s, when its settle period (4 s from 1.5 s) passed:\n%s", h.c.dump())
	}
}

// A writer appending every 50 ms is reported Ready once, after it stops,
// with its final size.
func TestWriterReadyOnceAfterItStops(t *testing.T) {
	for _, mode := range []string{ModeEvents, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			const settle = 400 * time.Millisecond
			h := start(t, Options{Settle: settle, Poll: 50 * time.Millisecond, Rescan: time.Hour, Mode: mode}, nil)
			p := filepath.Join(h.root, "render.exr")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			chunk := make([]byte, 1024)
			var maxGap time.Duration
			last := time.Now()
			for range 20 {
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
				maxGap = max(maxGap, time.Since(last))
				last = time.Now()
				time.Sleep(50 * time.Millisecond) // a real writer, slower than the settle checks: kept on purpose
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			// A loaded machine (CI runs packages in parallel under -race) can pause the writer
			// past the settle period; then an early Ready is right, and the premise failed.
			fail := func(format string, args ...any) {
				t.Helper()
				if maxGap > settle/2 {
					t.Skipf("machine too loaded: the writer paused %s between writes (settle %s)", maxGap, settle)
				}
				t.Fatalf(format+" (longest pause between writes %s):\n%s", append(args, maxGap, h.c.dump())...)
			}
			h.c.waitFor(t, "Ready with the final size", 10*time.Second, func(evs []got) bool {
				for _, e := range evs {
					if e.Kind == Ready && e.Info.Size == 20*1024 {
						return true
					}
				}
				return false
			})
			// Two more settle periods of settle checks (four a period) and polls: a second
			// Ready would have come by now.
			h.waitTicks(t, "settle", 8)
			h.waitTicks(t, "poll", 2)
			var readies []got
			for _, e := range h.c.all() {
				if e.Kind == Ready {
					readies = append(readies, e)
				}
			}
			if len(readies) != 1 {
				fail("got %d Ready events, want 1", len(readies))
			}
			if r := readies[0]; r.Info.Size != 20*1024 || r.at.Before(stopped) {
				fail("Ready with size %d at %v, want size %d after the writer stopped at %v",
					r.Info.Size, r.at, 20*1024, stopped)
			}
			if n := h.c.count(Settling, "render.exr"); n != 1 {
				fail("Settling sent %d times, want 1", n)
			}
		})
	}
}

// New folders are watched and scanned, including files written before their
// watch existed.
func TestNewSubfolderIsWatchedAndScanned(t *testing.T) {
	t.Parallel()
	h := start(t, Options{Settle: 100 * time.Millisecond, Rescan: time.Hour, Mode: ModeEvents}, nil)
	// Written right after mkdir: usually before the watcher added the watch.
	writeFile(t, h.root, "sub/deeper/early.txt", "early")
	writeFile(t, h.root, "sub/a.txt", "a")
	h.c.waitKind(t, Ready, "sub/deeper/early.txt")
	h.c.waitKind(t, Ready, "sub/a.txt")
	// Only the watch on sub/deeper can report this one: no poll, no rescan.
	writeFile(t, h.root, "sub/deeper/late.txt", "late")
	h.c.waitKind(t, Ready, "sub/deeper/late.txt")
}

func TestIgnoredNeverReported(t *testing.T) {
	for _, mode := range []string{ModeEvents, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			noise := []string{
				".hotdrop-status.json", "sub/.hotdrop-status.json", ".hotdrop-journal",
				"x.part", "sub/y.part", "tmp.partial/inner.txt", "_delivered/old.mov",
			}
			for _, rel := range noise {
				writeFile(t, root, rel, "noise")
			}
			writeFile(t, root, "keep.txt", "k")
			h := start(t, Options{
				Root: root, Settle: 100 * time.Millisecond, Poll: 50 * time.Millisecond, Rescan: time.Hour, Mode: mode,
				Ignore: []string{"*.part", "*.partial"},
				Skip:   func(rel string) bool { return rel == "_delivered" },
			}, nil)
			h.c.waitKind(t, Ready, "keep.txt")
			// The same names again while running, reached by events or polls.
			for _, rel := range noise {
				writeFile(t, root, rel, "noise again")
			}
			writeFile(t, root, "sub/keep2.txt", "k")
			h.c.waitKind(t, Ready, "sub/keep2.txt")
			// The noise was written before keep2: by its Ready, and after two more polls and
			// settle checks, any of it reported would be recorded.
			h.waitTicks(t, "poll", 2)
			h.waitTicks(t, "settle", 2)
			for _, e := range h.c.all() {
				if e.Rel != "keep.txt" && e.Rel != "sub/keep2.txt" {
					t.Errorf("reported %s %s, which is ignored", e.Kind, e.Rel)
				}
			}
		})
	}
}

func TestRemoved(t *testing.T) {
	for _, mode := range []string{ModeEvents, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			writeFile(t, root, "a.txt", "a")
			writeFile(t, root, "d/b.txt", "b")
			writeFile(t, root, "d/e/c.txt", "c")
			h := start(t, Options{Root: root, Settle: 100 * time.Millisecond, Poll: 50 * time.Millisecond, Rescan: time.Hour, Mode: mode}, nil)
			for _, rel := range []string{"a.txt", "d/b.txt", "d/e/c.txt"} {
				h.c.waitKind(t, Ready, rel)
			}
			if err := os.Remove(filepath.Join(root, "a.txt")); err != nil {
				t.Fatal(err)
			}
			h.c.waitKind(t, Removed, "a.txt")
			if err := os.RemoveAll(filepath.Join(root, "d")); err != nil {
				t.Fatal(err)
			}
			h.c.waitKind(t, Removed, "d/b.txt")
			h.c.waitKind(t, Removed, "d/e/c.txt")
			for _, e := range h.c.all() {
				if e.Kind == Removed && e.Rel == "a.txt" && e.Info.Size != 1 {
					t.Errorf("Removed a.txt carries size %d, want the last seen 1", e.Info.Size)
				}
			}
		})
	}
}

// Lost events are made up for by a rescan: after a queue overflow, and when
// Rescan is called.
func TestOverflowAndRescanFindMissedFiles(t *testing.T) {
	fake := newFakeNotifier() // delivers no events: every change is "missed"
	h := start(t, Options{Settle: 50 * time.Millisecond, Poll: 20 * time.Millisecond, Rescan: time.Hour, Mode: ModeEvents},
		func(w *Watcher) { w.newNotifier = func() (notifier, error) { return fake, nil } })
	h.c.waitFor(t, "root watched", 5*time.Second, func([]got) bool { return fake.watching(h.root) })

	writeFile(t, h.root, "missed.txt", "m")
	// The watcher goes on checking and polling (a watched folder is not polled) and finds
	// nothing: only an event or a rescan could tell it.
	h.waitTicks(t, "poll", 3)
	h.waitTicks(t, "settle", 3)
	if n := len(h.c.all()); n != 0 {
		t.Fatalf("got %d events without any file event or rescan:\n%s", n, h.c.dump())
	}
	fake.errs <- errors.Join(errors.New("read inotify"), fsnotify.ErrEventOverflow)
	h.c.waitKind(t, Ready, "missed.txt")
	if !strings.Contains(h.log.String(), "overflowed") {
		t.Errorf("the overflow was not logged:\n%s", h.log.String())
	}

	writeFile(t, h.root, "sub/also-missed.txt", "m")
	h.w.Rescan()
	h.c.waitKind(t, Ready, "sub/also-missed.txt")
	if !fake.watching(filepath.Join(h.root, "sub")) {
		t.Errorf("folder found by the rescan was not watched")
	}
}

// Running out of inotify watches: one plain warning, polling meanwhile, and
// events again once watches can be added (after a backoff on the clock).
func TestWatchLimitFallsBackToPolling(t *testing.T) {
	fake := newFakeNotifier()
	fake.full.Store(true)
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	h := start(t, Options{Settle: 2 * time.Second, Poll: time.Second, Rescan: time.Hour, Mode: ModeEvents, Clock: fc},
		func(w *Watcher) { w.newNotifier = func() (notifier, error) { return fake, nil } })

	writeFile(t, h.root, "a.txt", "a")
	writeFile(t, h.root, "sub/b.txt", "b")
	h.advance(t, fc, 4*time.Second)
	h.c.waitKind(t, Ready, "a.txt")
	h.c.waitKind(t, Ready, "sub/b.txt")
	log := h.log.String()
	if n := strings.Count(log, "max_user_watches"); n == 0 || !strings.Contains(log, "sysctl -w fs.inotify.max_user_watches=") {
		t.Fatalf("no warning naming fs.inotify.max_user_watches and the sysctl to raise it:\n%s", log)
	}
	if n := strings.Count(log, "ran out of inotify watches"); n != 1 {
		t.Fatalf("watch limit warned %d times, want once:\n%s", n, log)
	}

	fake.full.Store(false)
	h.advance(t, fc, 11*time.Second) // past the first re-arm backoff
	for _, dir := range []string{h.root, filepath.Join(h.root, "sub")} {
		if !fake.watching(dir) {
			t.Errorf("%s not watched after the limit was lifted", dir)
		}
	}
	if n := strings.Count(h.log.String(), "ran out of inotify watches"); n != 1 {
		t.Errorf("watch limit warned %d times, want once", n)
	}
}

// Network mounts are polled in auto mode and read through fresh stats.
func TestAutoPollsNetworkMounts(t *testing.T) {
	t.Parallel()
	fake := newFakeNotifier()
	h := start(t, Options{Settle: 100 * time.Millisecond, Poll: 50 * time.Millisecond, Rescan: time.Hour, Mode: ModeAuto},
		func(w *Watcher) {
			w.newNotifier = func() (notifier, error) { return fake, nil }
			w.fsType = func(string) (string, bool) { return "nfs", true }
		})
	writeFile(t, h.root, "farm/frame.exr", "pixels")
	h.c.waitKind(t, Ready, "farm/frame.exr")
	if l := fake.WatchList(); len(l) != 0 {
		t.Errorf("watched %v on a network mount", l)
	}
	if !strings.Contains(h.log.String(), "fs=nfs") {
		t.Errorf("polling the nfs mount was not explained in the log:\n%s", h.log.String())
	}
}

// Cancelling returns promptly even while nobody reads the output, and
// leaves no goroutine behind.
func TestCancelReturnsPromptlyWithoutLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, mode := range []string{ModeEvents, ModePoll} {
		root := t.TempDir()
		for _, rel := range []string{"a", "b", "c/d"} {
			writeFile(t, root, rel, "x")
		}
		w, err := New(Options{Root: root, Mode: mode, Settle: 10 * time.Millisecond, Poll: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		out := make(chan Event)
		go func() { done <- w.Run(ctx, out) }()
		// One event read, then no more: Run is reporting the first scan's files and the next
		// send waits for a reader that never comes.
		select {
		case <-out:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no event within 5s of Run", mode)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%s: Run = %v, want nil", mode, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: Run did not return within 2s of cancel", mode)
		}
	}
	if !poll(nil, 3*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}

func TestRunTwiceAtOnceFails(t *testing.T) {
	h := start(t, Options{Mode: ModePoll}, nil)
	h.c.waitFor(t, "running", 5*time.Second, func([]got) bool { return h.w.running.Load() })
	if err := h.w.Run(context.Background(), make(chan Event)); err == nil {
		t.Fatal("a second concurrent Run succeeded")
	}
}

// A renamed folder is forgotten under its old name and watched under its new
// one, sub-folders included (inotify hands the same watch back for the same
// folder, so the old watches must go first).
func TestRenamedFolderWatchedUnderNewName(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeFile(t, root, "d/x.txt", "x")
	writeFile(t, root, "d/sub/y.txt", "y")
	h := start(t, Options{Root: root, Settle: 100 * time.Millisecond, Rescan: time.Hour, Mode: ModeEvents}, nil)
	h.c.waitKind(t, Ready, "d/sub/y.txt")
	h.c.waitKind(t, Ready, "d/x.txt")
	renamed := time.Now()
	if err := os.Rename(filepath.Join(root, "d"), filepath.Join(root, "e")); err != nil {
		t.Fatal(err)
	}
	h.c.waitKind(t, Removed, "d/x.txt")
	h.c.waitKind(t, Removed, "d/sub/y.txt")
	h.c.waitKind(t, FolderRemoved, "d/sub") // the folders too, once their files were said
	h.c.waitKind(t, FolderRemoved, "d")
	h.c.waitKind(t, Ready, "e/sub/y.txt")
	writeFile(t, root, "e/sub/z.txt", "z")
	h.c.waitKind(t, Ready, "e/sub/z.txt")
	for _, e := range h.c.all() {
		if strings.HasPrefix(e.Rel, "d/") && e.Kind != Removed && e.Kind != FolderRemoved && e.at.After(renamed) {
			t.Errorf("event under the old name after the rename: %s %s", e.Kind, e.Rel)
		}
	}
}

// Touch (a sidecar changed) restarts a ready file's settle clock: Settling at once, Ready
// again only after a full period.
func TestTouchRestartsSettle(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "a.txt", "aaa")
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	h := start(t, Options{Root: root, Settle: 30 * time.Second, Poll: time.Second, Mode: ModePoll, Clock: fc}, nil)
	h.advance(t, fc, 31*time.Second)
	h.c.waitKind(t, Ready, "a.txt")
	h.w.Touch(filepath.Join(root, "a.txt"))
	h.c.waitFor(t, "Settling after Touch", 5*time.Second, func(evs []got) bool {
		return len(rels(evs, Settling)) == 2
	})
	h.advance(t, fc, 20*time.Second)
	if n := h.c.count(Ready, "a.txt"); n != 1 {
		t.Fatalf("Ready %d times 20 s after Touch, want still 1", n)
	}
	h.advance(t, fc, 12*time.Second)
	h.c.waitFor(t, "Ready again", 5*time.Second, func(evs []got) bool {
		return len(rels(evs, Ready)) == 2
	})
	h.w.Touch("nope.txt") // unknown: ignored
}

// A file the journal says was delivered in this very identity is ready at once and reported
// to no one (Options.Settled): a restart with 100,000 delivered files sends no events. A
// file delivered in another identity, or never, settles as usual; so does a delivered file
// that changes later.
func TestSettledFilesAreNotReported(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, "done.exr", "delivered")
	writeFile(t, root, "changed.exr", "changed since")
	writeFile(t, root, "new.exr", "never sent")
	ident := func(rel string) FileInfo {
		fi, err := os.Lstat(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return fileInfoOf(fi)
	}
	journal := map[string]FileInfo{"done.exr": ident("done.exr"), "changed.exr": {Size: 1, Inode: ident("changed.exr").Inode}}
	fc := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	h := start(t, Options{Root: root, Settle: 30 * time.Second, Poll: time.Second, Mode: ModePoll, Clock: fc,
		Settled: func(rel string, info FileInfo) bool { want, ok := journal[rel]; return ok && want.equal(info) }}, nil)
	h.advance(t, fc, 31*time.Second)
	h.c.waitKind(t, Ready, "new.exr")
	h.c.waitKind(t, Ready, "changed.exr")
	// The first scan saw all three before either of those was ready.
	if n := len(h.c.all()) - h.c.count(Settling, "new.exr") - h.c.count(Ready, "new.exr") - h.c.count(Settling, "changed.exr") - h.c.count(Ready, "changed.exr"); n != 0 {
		t.Fatalf("done.exr was reported although the journal knows it in this identity:\n%s", h.c.dump())
	}
	for _, e := range h.c.all() {
		if want := ident(e.Rel); e.Info.Inode != want.Inode || e.Info.Dev != want.Dev {
			t.Fatalf("%s reported with inode %d device %d, want %d %d: an identity without them cannot tell a replaced file",
				e.Rel, e.Info.Inode, e.Info.Dev, want.Inode, want.Dev)
		}
	}
	appendFile(t, root, "done.exr", " and changed")
	h.advance(t, fc, 2*time.Second)
	h.c.waitKind(t, Settling, "done.exr")
	h.advance(t, fc, 31*time.Second)
	h.c.waitKind(t, Ready, "done.exr")
}

// TestFolderRemovedIsSaid: a folder removed is reported once its files were (the engine makes
// a removed drop folder again).
func TestFolderRemovedIsSaid(t *testing.T) {
	for _, mode := range []string{ModeEvents, ModePoll} {
		t.Run(mode, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, root, "a/b/x.txt", "x")
			writeFile(t, root, "c/y.txt", "y")
			h := start(t, Options{Root: root, Settle: 50 * time.Millisecond, Poll: 50 * time.Millisecond, Rescan: time.Hour, Mode: mode}, nil)
			h.c.waitKind(t, Ready, "a/b/x.txt")
			h.c.waitKind(t, Ready, "c/y.txt")
			if err := os.RemoveAll(filepath.Join(root, "a")); err != nil {
				t.Fatal(err)
			}
			h.c.waitKind(t, FolderRemoved, "a")
			var order []string
			for _, e := range h.c.all() {
				if e.Kind == Removed || e.Kind == FolderRemoved {
					order = append(order, e.Kind.String()+" "+e.Rel)
				}
			}
			if want := []string{"removed a/b/x.txt", "folder removed a/b", "folder removed a"}; !slices.Equal(order, want) {
				t.Errorf("events = %q, want %q", order, want)
			}
		})
	}
}
