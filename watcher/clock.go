package watcher

import (
	"sync"
	"time"
)

// Clock lets tests drive settle periods without sleeping. The watcher reads
// the time and makes its tickers only through it.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker that fires every d. Like time.Ticker it
	// drops ticks for a slow receiver. A d of zero or less gives a ticker
	// that never fires (time.NewTicker would panic).
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of time.Ticker the watcher needs, so a fake clock can
// stand in for it.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// RealClock returns the wall clock, for production use.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		return &fakeTicker{c: make(chan time.Time)}
	}
	return realTicker{time.NewTicker(d)}
}

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// FakeClock is a Clock whose time moves only when Advance is called. It
// exists so tests in this and other packages can run a 30 s settle period in
// microseconds. It is safe for concurrent use.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers map[*fakeTicker]struct{}
}

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, tickers: make(map[*fakeTicker]struct{})}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker returns a ticker that fires when Advance moves the fake time past
// each multiple of d after now.
func (c *FakeClock) NewTicker(d time.Duration) Ticker {
	t := &fakeTicker{c: make(chan time.Time, 1), clock: c, period: d}
	if d <= 0 {
		return t
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.next = c.now.Add(d)
	c.tickers[t] = struct{}{}
	return t
}

// Tickers reports how many tickers are live (made and not stopped). A test
// waits for the code under test to have made its tickers before it calls
// Advance, since a ticker made later starts counting from that later time.
func (c *FakeClock) Tickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers)
}

// Advance moves the fake time forward by d and fires every ticker that came
// due. Like time.Ticker, a ticker whose receiver has not taken the previous
// tick drops the new one, so Advance never blocks; a ticker due several
// times within one Advance fires once. Advance the clock in steps no larger
// than the ticker period when each tick matters.
func (c *FakeClock) Advance(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.tickers {
		if t.next.After(c.now) {
			continue
		}
		// The tick carries the last due time, as a real ticker would.
		missed := c.now.Sub(t.next) / t.period
		due := t.next.Add(missed * t.period)
		t.next = due.Add(t.period)
		select {
		case t.c <- due:
		default:
		}
	}
}

type fakeTicker struct {
	c      chan time.Time
	clock  *FakeClock
	period time.Duration
	next   time.Time
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Stop() {
	if t.clock == nil {
		return
	}
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	delete(t.clock.tickers, t)
}
