package clock

import (
	"sync"
	"time"
)

// Fake is a Clock for tests. A Fake made by NewFake moves only when Advance is called, so a
// 30 s settle period is stepped through in microseconds; one made by NewSkipping moves
// whenever someone waits (After(d) moves it forward by d and fires at once), so hours of
// backoff or bandwidth schedule pass with exact arithmetic and no test code driving it. It is
// safe for concurrent use.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	skip    bool
	timers  []*fakeTimer
	tickers map[*fakeTicker]struct{}
}

// NewFake returns a Fake reading start, moved only by Advance.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, tickers: map[*fakeTicker]struct{}{}}
}

// NewSkipping returns a Fake reading start that moves forward by whatever is waited for.
func NewSkipping(start time.Time) *Fake {
	c := NewFake(start)
	c.skip = true
	return c
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

// After returns a channel that receives the fake time once it has moved d past now: at
// once for a skipping Fake (which moves by d) or a d of zero or less, otherwise when Advance
// gets there.
func (c *Fake) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if c.skip && d > 0 {
		c.now = c.now.Add(d)
	}
	if c.skip || d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, &fakeTimer{at: c.now.Add(d), c: ch})
	return ch
}

// NewTicker returns a ticker that fires when Advance moves the fake time past each multiple
// of d after now.
func (c *Fake) NewTicker(d time.Duration) Ticker {
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

// Tickers reports how many tickers are live (made and not stopped). A test waits for the
// code under test to have made its tickers before it calls Advance, since a ticker made later
// starts counting from that later time.
func (c *Fake) Tickers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.tickers)
}

// Advance moves the fake time forward by d, fires every timer and ticker that came due, and
// returns how many ticks and timers it delivered, so a test can wait until the code under
// test has handled each of them. Like time.Ticker, a ticker whose receiver has not taken the
// previous tick drops the new one (not counted), so Advance never blocks; a ticker due
// several times within one Advance fires once. Advance in steps no larger than the ticker
// period when each tick matters.
func (c *Fake) Advance(d time.Duration) (fired int) {
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
			fired++
		default:
		}
	}
	waiting := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			waiting = append(waiting, t)
			continue
		}
		t.c <- t.at // buffered, and sent to once
		fired++
	}
	clear(c.timers[len(waiting):])
	c.timers = waiting
	return fired
}

type fakeTicker struct {
	c      chan time.Time
	clock  *Fake
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

var _ Clock = (*Fake)(nil)
