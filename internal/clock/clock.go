// Package clock is hotdrop's one time source: the daemon passes Real to every part that
// waits or reads the time (the watcher's settle period, delivery's retry backoff, the
// uploader's bandwidth schedule, the outbox and the tracker), and tests pass a Fake, or run
// against Real inside a testing/synctest bubble, so that no test waits for real time.
//
// It is a leaf: it imports nothing of hotdrop's.
package clock

import "time"

// Clock reads the time and makes the timers of whoever holds it. Implementations are safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed, like time.After.
	After(d time.Duration) <-chan time.Time
	// NewTicker returns a ticker that fires every d. Like time.Ticker it drops ticks for a
	// slow receiver. A d of zero or less gives a ticker that never fires (time.NewTicker
	// would panic).
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of time.Ticker a Clock's user needs, so a Fake can stand in for it.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time                         { return time.Now() }
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

func (Real) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		return never{}
	}
	return realTicker{time.NewTicker(d)}
}

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// never is the ticker of a period of zero or less: its channel is nil, so a receive from it
// blocks forever, as a select case that never fires.
type never struct{}

func (never) C() <-chan time.Time { return nil }
func (never) Stop()               {}

var _ Clock = Real{}
