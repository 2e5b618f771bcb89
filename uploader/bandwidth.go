package uploader

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"golang.org/x/time/rate"
)

// Window is a bandwidth limit for a time of day, in local time. From and To
// are offsets from local midnight; a window with To <= From crosses midnight
// (22:00–06:00). Bandwidth is bytes per second; 0 means unlimited.
type Window struct {
	From, To  time.Duration
	Bandwidth int64
}

// contains reports whether the time of day tod falls in the window.
func (w Window) contains(tod time.Duration) bool {
	if w.From < w.To {
		return tod >= w.From && tod < w.To
	}
	return tod >= w.From || tod < w.To
}

// ParseTimeOfDay reads "HH:MM" (or "HH:MM:SS") as an offset from midnight,
// for Window.From and Window.To.
func ParseTimeOfDay(s string) (time.Duration, error) {
	for _, layout := range []string{"15:04", "15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute +
				time.Duration(t.Second())*time.Second, nil
		}
	}
	if s == "24:00" {
		return 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("time of day %q: want HH:MM, 00:00 to 24:00", s)
}

// limiter shares one byte rate between every transfer of an Uploader. The
// rate in force is re-read from the schedule before every reservation, so a
// window that opens or closes applies to uploads in flight within one chunk.
type limiter struct {
	clock clock.Clock

	mu      sync.Mutex
	base    int64
	windows []Window
	cur     int64 // bytes/s in force; 0: unlimited
	rl      *rate.Limiter
}

func newLimiter(c clock.Clock, base int64, windows []Window) *limiter {
	l := &limiter{clock: c, rl: rate.NewLimiter(rate.Inf, 0)}
	l.set(base, windows)
	return l
}

// set replaces the limits; it takes effect at the next chunk of every upload.
func (l *limiter) set(base int64, windows []Window) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.base, l.windows = base, append([]Window(nil), windows...)
	l.cur = -1 // force the next rate() to apply
}

// rateAt is the limit in force at t: the first window holding t's local time
// of day, else the base.
func (l *limiter) rateAt(t time.Time) int64 {
	lt := t.Local()
	y, m, d := lt.Date()
	tod := lt.Sub(time.Date(y, m, d, 0, 0, 0, 0, time.Local))
	for _, w := range l.windows {
		if w.contains(tod) {
			return w.Bandwidth
		}
	}
	return l.base
}

// burst is 50 ms worth of bytes, at least 32 KiB: small enough that a
// changed window bites at once, large enough not to wake for every packet.
func burstFor(bps int64) int {
	return int(max(bps/20, 32<<10))
}

// update applies the rate in force at now and returns it with the burst.
func (l *limiter) update(now time.Time) (int64, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bps := l.rateAt(now)
	if bps != l.cur {
		l.cur = bps
		if bps <= 0 {
			l.rl.SetLimitAt(now, rate.Inf)
		} else {
			l.rl.SetLimitAt(now, rate.Limit(bps))
			l.rl.SetBurstAt(now, burstFor(bps))
		}
	}
	return bps, burstFor(bps)
}

// wait blocks until n more bytes may be sent, or ctx ends. Acknowledgements
// that arrive on done meanwhile are given to handle at once (both may be nil):
// at a low rate the wait is long, and an acknowledgement left waiting with it
// is a checkpoint not written, so a crash then re-sent a whole wait's worth of
// every upload.
func (l *limiter) wait(ctx context.Context, n int, done <-chan writeDone, handle func(writeDone)) error {
	for n > 0 {
		now := l.clock.Now()
		bps, burst := l.update(now)
		if bps <= 0 {
			return nil
		}
		take := min(n, burst)
		r := l.rl.ReserveN(now, take)
		if !r.OK() {
			// The burst shrank between update and ReserveN; look again.
			continue
		}
		n -= take
		d := r.DelayFrom(now)
		if d <= 0 {
			continue
		}
		timer := l.clock.After(d)
	waiting:
		for {
			select {
			case <-ctx.Done():
				r.CancelAt(l.clock.Now())
				return ctx.Err()
			case <-timer:
				break waiting
			case dn := <-done:
				handle(dn)
			}
		}
	}
	return nil
}

// current is the limit in force now, bytes per second; 0: unlimited.
func (l *limiter) current() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rateAt(l.clock.Now())
}
