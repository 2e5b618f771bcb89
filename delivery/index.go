package delivery

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// The Engine's files are indexed by request, and a request's holds and state are re-derived
// (refreshNow) in batches rather than on every event: refreshNow is linear in the request's
// files, so running it per event made a request of n frames cost n² (issue 11).

// bigRequest is the size from which a request is re-derived at most once per reportEvery
// instead of after every batch of events: its refresh costs more than the batch it follows.
const bigRequest = 1024

// putFile adds fs to the Engine's files and to its request's index.
func (e *Engine) putFile(fs *fileState) {
	e.files[fs.rec.Path] = fs
	e.index(fs)
}

// dropFile forgets fs.
func (e *Engine) dropFile(fs *fileState) {
	e.uncount(fs)
	e.forget(fs)
	delete(e.files, fs.rec.Path)
	e.binSequence(fs, false)
	if set := e.byReq[fs.req()]; set != nil {
		delete(set, fs)
		if len(set) == 0 {
			delete(e.byReq, fs.req())
		}
	}
}

// assign ties fs to request id ("" for none: a File Bin file not matched yet).
func (e *Engine) assign(fs *fileState, id string) {
	if fs.req() == id {
		fs.rec.RequestID = id
		return
	}
	e.uncount(fs) // counted where it was
	if set := e.byReq[fs.req()]; set != nil {
		delete(set, fs)
		if len(set) == 0 {
			delete(e.byReq, fs.req())
		}
	}
	fs.rec.RequestID = id
	fs.nameOK = false // nameProblem's answer was for the request it left
	e.index(fs)
}

func (e *Engine) index(fs *fileState) {
	e.binSequence(fs, true)
	set := e.byReq[fs.req()]
	if set == nil {
		set = map[*fileState]struct{}{}
		e.byReq[fs.req()] = set
	}
	set[fs] = struct{}{}
}

// binSequence keeps fs counted among the frames of its File Bin sequence, by the request
// each frame was matched to (present false: no longer counted), and asks for the requests
// concerned to be looked at again: a sequence dropped in the File Bin goes to one request
// whole, never frame by frame into several (sequenceSplit). What was counted is kept in fs,
// so a name, a File Bin move or a match that changes later is counted once.
func (e *Engine) binSequence(fs *fileState, present bool) {
	key, req := "", ""
	if present && fs.inBin {
		if f, ok := fs.frameOf(); ok {
			key, req = f.Key, fs.req()
			if fs.rec.State == Settling {
				// Not judged yet, so matched to no request yet: counted apart, so that the
				// sequence is not held as split while it renders (sequenceSplit) and the
				// request its other frames went to waits for it (binFramesSettling).
				req = settlingFrames
			}
		}
	}
	was := fs.x()
	if key == was.binKey && req == was.binReq {
		return
	}
	if e.binSeqs == nil {
		e.binSeqs = map[string]map[string]int{}
	}
	touch := func(k string) {
		for id := range e.binSeqs[k] {
			if r := e.reqs[id]; r != nil {
				e.refresh(context.Background(), r)
			}
		}
	}
	if was.binKey != "" {
		touch(was.binKey)
		if by := e.binSeqs[was.binKey]; by != nil {
			if by[was.binReq]--; by[was.binReq] <= 0 {
				delete(by, was.binReq)
			}
			if len(by) == 0 {
				delete(e.binSeqs, was.binKey)
			}
		}
	}
	m := fs.setMore()
	m.binKey, m.binReq = key, req
	if key != "" {
		by := e.binSeqs[key]
		if by == nil {
			by = map[string]int{}
			e.binSeqs[key] = by
		}
		by[req]++
		touch(key)
	}
}

// settlingFrames is binSeqs' entry for the frames of a File Bin sequence still settling.
const settlingFrames = "\x00settling"

// binFramesSettling reports whether fs is a File Bin frame whose sequence still has frames
// settling: its request is not complete until they are judged (a sequence goes whole).
func (e *Engine) binFramesSettling(fs *fileState) bool {
	if !fs.inBin {
		return false
	}
	f, ok := fs.frameOf()
	return ok && e.binSeqs[f.Key][settlingFrames] > 0
}

// sequenceSplit says, for a File Bin frame, how its sequence's frames were matched when they
// went to more than one request (or some to none): "" when they all went to one.
func (e *Engine) sequenceSplit(fs *fileState) string {
	if !fs.inBin {
		return ""
	}
	f, ok := fs.frameOf()
	if !ok {
		return ""
	}
	by := e.binSeqs[f.Key]
	ids := make([]string, 0, len(by))
	for id := range by {
		if id != settlingFrames {
			ids = append(ids, id)
		}
	}
	if len(ids) < 2 {
		return ""
	}
	sort.Strings(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		name := id
		if id == "" {
			name = "no request"
		}
		parts[i] = fmt.Sprintf("%s (%d frames)", name, by[id])
	}
	return fmt.Sprintf("the frames of %s in the File Bin matched different requests: %s; a sequence goes to one request whole. "+
		"Rename the frames, or pin them with request = \"SR-…\" in a _metadata.toml beside them", f.Prefix+"#"+f.Suffix, strings.Join(parts, ", "))
}

// filesOf lists a request's files. The order is the map's: this runs on every refresh, and
// sorting thousands of files each time showed in profiles. Views sort.
func (e *Engine) filesOf(id string) []*fileState {
	set := e.byReq[id]
	out := make([]*fileState, 0, len(set))
	for fs := range set {
		out = append(out, fs)
	}
	return out
}

// refresh asks for r to be re-derived once the events at hand are handled.
func (e *Engine) refresh(_ context.Context, r *reqState) {
	if e.stale == nil {
		e.stale = map[string]bool{}
	}
	e.stale[r.ID] = true
}

// refreshStale re-derives the requests asked for since the last time. Unless all is set, a
// big request waits until reportEvery has passed since its last refresh.
func (e *Engine) refreshStale(ctx context.Context, all bool) {
	if len(e.stale) == 0 {
		return
	}
	now := time.Now()
	for id := range e.stale {
		r := e.reqs[id]
		if r == nil {
			delete(e.stale, id)
			continue
		}
		// A big request is re-derived at most every 200 ms, and no more often than its size
		// allows (5 µs a file: 500 ms at 100,000), so re-deriving it stays a small part of
		// the loop's time however big it is; but at once when its last settling file was
		// judged or its ready marker came, as then it may start (waiting for the next turn
		// held back the first upload of 20,000 frames by a quarter of a second).
		if n := len(e.byReq[id]); !all && !r.mayStart && n >= bigRequest && now.Sub(r.refreshedAt) < max(reportEvery, time.Duration(n)*5*time.Microsecond) {
			continue
		}
		delete(e.stale, id)
		r.refreshedAt = now
		e.refreshNow(ctx, r)
	}
}

// settle ends a batch: the requests it touched are re-derived, then what changed is journaled
// and announced.
func (e *Engine) settle(ctx context.Context, all bool) {
	// Uploads waiting at their rename go on first: re-deriving a request of 20,000 frames
	// must not hold them back.
	e.flushJournal()
	e.refreshStale(ctx, all)
	e.flushJournal()
}
