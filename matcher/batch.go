package matcher

import (
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// EvaluateAll judges many files as Evaluate judges each, side by side on up to workers
// goroutines, as one look: each folder sidecar (_metadata.toml or .json) is read once for
// all of them, and each goroutine probes beneath one root for all its files. The frames of a
// render settle together, and judging 20,000 of them read their folder's sidecars 20,000
// times over, and opened watch.root as often (issue 11). A sidecar that changes during the
// look is an event of its own, which judges its files again. out[i] is ins[i]'s verdict.
func (m *Matcher) EvaluateAll(ins []Input, workers int) []Verdict {
	out := make([]Verdict, len(ins))
	lk := &look{folders: map[string]sidecarRead{}}
	var next atomic.Int64
	work := func() {
		unders := map[string]*safefs.Under{} // by base: one root for this goroutine's files
		defer func() {
			for _, u := range unders {
				u.Close()
			}
		}()
		for {
			i := int(next.Add(1)) - 1
			if i >= len(ins) {
				return
			}
			base := m.base(filepath.Clean(ins[i].Root))
			u := unders[base]
			if u == nil {
				u = safefs.NewUnder(base)
				unders[base] = u
			}
			out[i] = m.evaluate(ins[i], u, lk)
			if u.Failed() {
				// Its base could not be opened (too many open files, say): that is this
				// moment's failure, not the next file's.
				u.Close()
				delete(unders, base)
			}
		}
	}
	var wg sync.WaitGroup
	for range min(workers, len(ins)) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	return out
}

// look is what the verdicts of one EvaluateAll share: the folder sidecars read, by the
// folder read beneath and path.
type look struct {
	mu      sync.Mutex
	folders map[string]sidecarRead
}

// sidecarRead is what readSidecarUnder gave for one sidecar.
type sidecarRead struct {
	values map[string]string // read only once shared: merge copies what it takes
	lines  map[string]int
	found  bool
	err    error
}

// folderSidecar is readSidecarUnder(u, p), read once per look: the first read is the one
// every file of the look sees. What is safe to read depends on the folder read beneath, so
// that is part of the key.
func (lk *look) folderSidecar(u *safefs.Under, p string) (map[string]string, map[string]int, bool, error) {
	key := u.Base() + "\x00" + p
	lk.mu.Lock()
	r, ok := lk.folders[key]
	lk.mu.Unlock()
	if !ok {
		var got sidecarRead
		got.values, got.lines, got.found, got.err = readSidecarUnder(u, p)
		if se, ok := got.err.(*SidecarError); ok && se.unread {
			return got.values, got.lines, got.found, got.err // a failure of this read only
		}
		lk.mu.Lock()
		if r, ok = lk.folders[key]; !ok {
			r = got
			lk.folders[key] = r
		}
		lk.mu.Unlock()
	}
	return r.values, r.lines, r.found, r.err
}
