// Package backoff says how long to wait before trying again something that failed:
// exponential from a base, capped, with jitter so that many daemons behind one server do not
// retry in step. It only computes durations; callers wait on their own (injected) clock and
// decide themselves what counts as a failure and when the count starts again.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is one caller's backoff. The zero Rand uses math/rand/v2; tests give their own to
// know the exact waits.
type Policy struct {
	Base, Max time.Duration
	// Rand returns a number in [0, n). nil: rand.Int64N.
	Rand func(n int64) int64
}

// Step is the wait after failures failed tries in a row (1 for the first) before jitter: Base,
// doubled for each failure after the first, capped at Max. A Max below Base caps at Base.
func (p Policy) Step(failures int) time.Duration {
	d, limit := p.Base, max(p.Max, p.Base)
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// Delay is Step with "equal jitter": half the step is kept, the other half drawn at random.
// Unlike full jitter it never waits next to nothing, so a server that is down is not asked
// again at once by a daemon that drew a small number.
func (p Policy) Delay(failures int) time.Duration {
	d := p.Step(failures)
	if d <= 0 {
		return 0
	}
	n := rand.Int64N
	if p.Rand != nil {
		n = p.Rand
	}
	return d/2 + time.Duration(n(int64(d/2)+1))
}
