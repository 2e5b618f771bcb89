package watcher

import (
	"sort"
	"time"
)

// settler is the settle bookkeeping, kept apart from any filesystem access
// so it can be tested with made-up times. Keys are file paths relative to the
// root. It is not safe for concurrent use; the Run goroutine owns it.
//
// A file is ready when the same FileInfo has been observed for the whole
// settle period, measured on the watcher's own clock (never against the
// file's mtime, which a render node with a skewed clock writes).
type settler struct {
	period  time.Duration
	entries map[string]*settleEntry
	waiting map[string]struct{} // keys not yet ready
}

type settleEntry struct {
	info  FileInfo
	since time.Time // when the clock last (re)started
	ready bool      // Ready was reported for info
}

func newSettler(period time.Duration) *settler {
	return &settler{
		period:  period,
		entries: make(map[string]*settleEntry),
		waiting: make(map[string]struct{}),
	}
}

// observe records what a stat saw. It reports true when the file starts
// settling: first seen, or changed after it was ready (the caller then sends
// Settling). A change while already settling restarts the clock silently, as
// does restart (a create or write event: events restart the clock even when
// a coarse mtime hides the change). A ready file that looks the same stays
// ready whatever the event.
func (s *settler) observe(key string, info FileInfo, now time.Time, restart bool) bool {
	e, ok := s.entries[key]
	if !ok {
		s.entries[key] = &settleEntry{info: info, since: now}
		s.waiting[key] = struct{}{}
		return true
	}
	changed := !e.info.equal(info)
	if e.ready {
		if !changed {
			return false
		}
		e.info, e.since, e.ready = info, now, false
		s.waiting[key] = struct{}{}
		return true
	}
	if changed || restart {
		e.info, e.since = info, now
	}
	return false
}

// known reports whether key is tracked.
func (s *settler) known(key string) bool {
	_, ok := s.entries[key]
	return ok
}

// settled tracks key as ready in identity info without a settle period: a file delivered
// before in this very identity (Options.Settled).
func (s *settler) settled(key string, info FileInfo, now time.Time) {
	s.entries[key] = &settleEntry{info: info, since: now, ready: true}
}

// due lists, sorted, the settling files whose clock has run a full period;
// the caller stats each again and passes the result to confirm.
func (s *settler) due(now time.Time) []string {
	var keys []string
	for k := range s.waiting {
		if now.Sub(s.entries[k].since) >= s.period {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// confirm takes a fresh stat of a due file and reports true exactly once per
// settled identity: the moment the file becomes ready. A difference restarts
// the clock instead.
func (s *settler) confirm(key string, info FileInfo, now time.Time) bool {
	e, ok := s.entries[key]
	if !ok || e.ready {
		return false
	}
	if !e.info.equal(info) {
		e.info, e.since = info, now
		return false
	}
	if now.Sub(e.since) < s.period {
		return false
	}
	e.ready = true
	delete(s.waiting, key)
	return true
}

// restart starts key's clock again as if it had changed, and reports its last known identity
// and whether it had been reported ready (the caller then sends Settling). Unknown keys are
// ignored.
func (s *settler) restart(key string, now time.Time) (FileInfo, bool) {
	e, ok := s.entries[key]
	if !ok {
		return FileInfo{}, false
	}
	wasReady := e.ready
	e.since, e.ready = now, false
	s.waiting[key] = struct{}{}
	return e.info, wasReady
}

// isReady reports whether key was reported ready and has not changed since.
func (s *settler) isReady(key string) bool {
	e, ok := s.entries[key]
	return ok && e.ready
}

// forget drops key and returns what was last known of it, so the caller can
// report Removed.
func (s *settler) forget(key string) (FileInfo, bool) {
	e, ok := s.entries[key]
	if !ok {
		return FileInfo{}, false
	}
	delete(s.entries, key)
	delete(s.waiting, key)
	return e.info, true
}
