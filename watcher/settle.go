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
	// most is the most keys waiting has held since it was made: a map keeps its size when
	// emptied, and a tree of 100,000 files settles once, then waits on none.
	most int
	base time.Time // what settleEntry.since counts from: the first time observed
}

// settleEntry is one file's settle state, kept for every file under the root for as long as
// it is there: 48 bytes, not the 80 of a FileInfo and a time.Time (issue 11).
type settleEntry struct {
	size      int64
	mtimeSec  int64
	mtimeNsec int32
	ready     bool // Ready was reported for its identity
	inode     uint64
	dev       uint64
	since     time.Duration // when the clock last (re)started, after base
}

func (e *settleEntry) info() FileInfo {
	return FileInfo{Size: e.size, ModTime: time.Unix(e.mtimeSec, int64(e.mtimeNsec)), Inode: e.inode, Dev: e.dev}
}

func (e *settleEntry) setInfo(fi FileInfo) {
	e.size, e.mtimeSec, e.mtimeNsec = fi.Size, fi.ModTime.Unix(), int32(fi.ModTime.Nanosecond())
	e.inode, e.dev = fi.Inode, fi.Dev
}

// same is FileInfo.equal against what e holds.
func (e *settleEntry) same(fi FileInfo) bool {
	return e.size == fi.Size && e.mtimeSec == fi.ModTime.Unix() && e.mtimeNsec == int32(fi.ModTime.Nanosecond()) && e.inode == fi.Inode
}

// at is now as settleEntry.since counts.
func (s *settler) at(now time.Time) time.Duration {
	if s.base.IsZero() {
		s.base = now
	}
	return now.Sub(s.base)
}

// wait marks key as not yet ready.
func (s *settler) wait(key string) {
	s.waiting[key] = struct{}{}
	s.most = max(s.most, len(s.waiting))
}

// done marks key as ready or gone, and lets go of a big waiting map once it is empty.
func (s *settler) done(key string) {
	delete(s.waiting, key)
	if len(s.waiting) == 0 && s.most > 1024 {
		s.waiting, s.most = make(map[string]struct{}), 0
	}
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
		e = &settleEntry{since: s.at(now)}
		e.setInfo(info)
		s.entries[key] = e
		s.wait(key)
		return true
	}
	changed := !e.same(info)
	if e.ready {
		if !changed {
			return false
		}
		e.setInfo(info)
		e.since, e.ready = s.at(now), false
		s.wait(key)
		return true
	}
	if changed || restart {
		e.setInfo(info)
		e.since = s.at(now)
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
	e := &settleEntry{since: s.at(now), ready: true}
	e.setInfo(info)
	s.entries[key] = e
}

// due lists, sorted, the settling files whose clock has run a full period;
// the caller stats each again and passes the result to confirm.
func (s *settler) due(now time.Time) []string {
	keys, _ := s.dueNext(now)
	return keys
}

// dueNext is due, and when the first of the files not due yet comes due (zero when none
// waits).
func (s *settler) dueNext(now time.Time) (keys []string, next time.Time) {
	t := s.at(now)
	first, waits := time.Duration(0), false
	for k := range s.waiting {
		since := s.entries[k].since
		if t-since >= s.period {
			keys = append(keys, k)
		} else if !waits || since < first {
			first, waits = since, true
		}
	}
	sort.Strings(keys)
	if waits {
		next = s.base.Add(first + s.period)
	}
	return keys, next
}

// confirm takes a fresh stat of a due file and reports true exactly once per
// settled identity: the moment the file becomes ready. A difference restarts
// the clock instead.
func (s *settler) confirm(key string, info FileInfo, now time.Time) bool {
	e, ok := s.entries[key]
	if !ok || e.ready {
		return false
	}
	if !e.same(info) {
		e.setInfo(info)
		e.since = s.at(now)
		return false
	}
	if s.at(now)-e.since < s.period {
		return false
	}
	e.ready = true
	s.done(key)
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
	e.since, e.ready = s.at(now), false
	s.wait(key)
	return e.info(), wasReady
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
	s.done(key)
	return e.info(), true
}
