package delivery

import (
	"context"
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
	e.forget(fs)
	delete(e.files, fs.rec.Path)
	if set := e.byReq[fs.req]; set != nil {
		delete(set, fs)
		if len(set) == 0 {
			delete(e.byReq, fs.req)
		}
	}
}

// assign ties fs to request id ("" for none: a File Bin file not matched yet).
func (e *Engine) assign(fs *fileState, id string) {
	if fs.req == id {
		fs.rec.RequestID = id
		return
	}
	if set := e.byReq[fs.req]; set != nil {
		delete(set, fs)
		if len(set) == 0 {
			delete(e.byReq, fs.req)
		}
	}
	fs.req, fs.rec.RequestID = id, id
	e.index(fs)
}

func (e *Engine) index(fs *fileState) {
	set := e.byReq[fs.req]
	if set == nil {
		set = map[*fileState]struct{}{}
		e.byReq[fs.req] = set
	}
	set[fs] = struct{}{}
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
		if !all && len(e.byReq[id]) >= bigRequest && now.Sub(r.refreshedAt) < reportEvery {
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
	e.refreshStale(ctx, all)
	e.flushJournal(ctx)
	e.flushIntents(ctx)
}
