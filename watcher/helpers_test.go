package watcher

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hotdrop/hotdrop/internal/clock"
)

// got is one received event and when it arrived.
type got struct {
	Event
	at time.Time
}

// collector reads a watcher's output the way delivery would, and counts the ticker steps the
// watcher has handled. Both come through one goroutine in the order the watcher made them, so
// once a step is counted, every event it emitted is recorded.
type collector struct {
	mu    sync.Mutex
	evs   []got
	ticks map[string]int // handled steps by ticker: "settle", "poll", "rescan"
	wake  chan struct{}
}

func (c *collector) add(ev Event) {
	c.mu.Lock()
	c.evs = append(c.evs, got{ev, time.Now()})
	c.mu.Unlock()
	c.signal()
}

func (c *collector) tick(what string) {
	c.mu.Lock()
	c.ticks[what]++
	c.mu.Unlock()
	c.signal()
}

func (c *collector) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// ticked returns how many steps of the what ticker were handled; "" counts every ticker's.
func (c *collector) ticked(what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if what != "" {
		return c.ticks[what]
	}
	n := 0
	for _, k := range c.ticks {
		n += k
	}
	return n
}

func (c *collector) all() []got {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]got(nil), c.evs...)
}

// count returns how many events of kind k concern rel.
func (c *collector) count(k Kind, rel string) int {
	n := 0
	for _, e := range c.all() {
		if e.Kind == k && e.Rel == rel {
			n++
		}
	}
	return n
}

// waitFor waits until cond holds for the events received so far.
func (c *collector) waitFor(t *testing.T, what string, timeout time.Duration, cond func([]got) bool) {
	t.Helper()
	if !poll(c.wake, timeout, func() bool { return cond(c.all()) }) {
		t.Fatalf("timed out after %s waiting for %s; events:\n%s", timeout, what, c.dump())
	}
}

// poll reports whether cond comes to hold within timeout, looking again on every wake and
// every 20 ms.
func poll(wake <-chan struct{}, timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-time.After(20 * time.Millisecond):
		case <-deadline.C:
			return cond()
		}
	}
	return true
}

func (c *collector) waitKind(t *testing.T, k Kind, rel string) {
	t.Helper()
	c.waitFor(t, k.String()+" "+rel, 10*time.Second, func([]got) bool { return c.count(k, rel) > 0 })
}

func (c *collector) dump() string {
	var b strings.Builder
	for _, e := range c.all() {
		fmt.Fprintf(&b, "  %s %s size=%d %s\n", e.Kind, e.Rel, e.Info.Size, e.Reason)
	}
	return b.String()
}

// harness runs one Watcher for a test and stops it at cleanup, failing the
// test if Run does not return promptly.
type harness struct {
	w    *Watcher
	c    *collector
	root string
	log  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, opts Options, tweak func(*Watcher)) *harness {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	h := &harness{root: opts.Root, c: &collector{ticks: map[string]int{}, wake: make(chan struct{}, 1)}, log: &lockedBuffer{}}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Steps reach the reader after the events they emitted, which it has taken by then.
	ticks := make(chan string)
	w.onTick = func(what string, _ time.Time) {
		select {
		case ticks <- what:
		case <-ctx.Done():
		}
	}
	if tweak != nil {
		tweak(w)
	}
	h.w = w
	out := make(chan Event)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case ev := <-out:
				h.c.add(ev)
			case what := <-ticks:
				h.c.tick(what)
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v, want nil on cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
		<-readerDone
		if t.Failed() {
			t.Logf("watcher log:\n%s", h.log.String())
		}
	})
	if fc, ok := opts.Clock.(*clock.Fake); ok {
		// The watcher makes its three tickers after the first scan; a ticker made after an
		// Advance would count from that later time.
		h.c.waitFor(t, "the watcher's three tickers", 10*time.Second, func([]got) bool { return fc.Tickers() >= 3 })
	}
	return h
}

// advance moves a fake clock forward in steps of one second, waiting after each until the
// watcher has handled every tick the step fired, and the reader has recorded what they
// emitted: after advance, nothing more is coming for that time. Every test using it has a
// settle ticker period of one second.
func (h *harness) advance(t *testing.T, fc *clock.Fake, d time.Duration) {
	t.Helper()
	for moved := time.Duration(0); moved < d; moved += time.Second {
		handled := h.c.ticked("")
		want := handled + fc.Advance(time.Second)
		h.c.waitFor(t, fmt.Sprintf("the ticks at %v handled", fc.Now()), 10*time.Second,
			func([]got) bool { return h.c.ticked("") >= want })
	}
}

// waitTicks waits, on a real clock, until the watcher has handled n more steps of its what
// ticker ("settle", "poll" or "rescan"), with the events they emitted recorded: a positive
// sign that it looked again, before a test checks that something was not reported.
func (h *harness) waitTicks(t *testing.T, what string, n int) {
	t.Helper()
	want := h.c.ticked(what) + n
	h.c.waitFor(t, fmt.Sprintf("%d more %s steps", n, what), 10*time.Second,
		func([]got) bool { return h.c.ticked(what) >= want })
}

func writeFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, root, rel, content string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(root, filepath.FromSlash(rel)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, content); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func rels(evs []got, k Kind) []string {
	var out []string
	for _, e := range evs {
		if e.Kind == k {
			out = append(out, e.Rel)
		}
	}
	sort.Strings(out)
	return out
}

// fakeNotifier stands in for fsnotify: it delivers only what a test sends,
// and its Add fails with ENOSPC while full is set.
type fakeNotifier struct {
	mu     sync.Mutex
	added  map[string]bool
	full   atomic.Bool
	events chan fsnotify.Event
	errs   chan error
}

func newFakeNotifier() *fakeNotifier {
	return &fakeNotifier{added: make(map[string]bool), events: make(chan fsnotify.Event), errs: make(chan error)}
}

func (f *fakeNotifier) Add(dir string) error {
	if f.full.Load() {
		return fmt.Errorf("add %s: %w", dir, syscall.ENOSPC)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added[dir] = true
	return nil
}

func (f *fakeNotifier) Remove(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.added, dir)
	return nil
}

func (f *fakeNotifier) WatchList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var l []string
	for d := range f.added {
		l = append(l, d)
	}
	return l
}

func (f *fakeNotifier) watching(dir string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.added[dir]
}

func (f *fakeNotifier) Events() <-chan fsnotify.Event { return f.events }
func (f *fakeNotifier) Errors() <-chan error          { return f.errs }
func (f *fakeNotifier) Close() error                  { return nil }
