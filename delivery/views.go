// Views: what status files, the dashboard, the API and the CLI see of the Engine.

package delivery

import (
	"context"
	"path/filepath"
	"sort"
	"time"
)

// views is what readers outside the loop see: the loop owns the Engine's state and publishes
// a snapshot of it, so no lock is held across the loop's work (journal writes, renames) and
// a reader never waits for it.
type views struct {
	ids  []string               // every request, sorted
	byID map[string]RequestView // the newest view of each; never modified once published
}

// RequestIDs lists the ids of the requests the Engine knows, sorted, for callers outside the
// loop that need no view (building every view of 10,000 requests every 10 s showed in idle
// profiles).
func (e *Engine) RequestIDs() []string {
	if v := e.published.Load(); v != nil {
		return v.ids
	}
	return nil
}

func (e *Engine) sortedIDs() []string {
	ids := make([]string, 0, len(e.reqs))
	for id := range e.reqs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Requests returns a view of every request, for commands and reports outside the loop: the
// views the loop last published, at most reportEvery old (bigReportEvery for a big request),
// and current once a control call (Deliver, Retry, Reload) has returned.
func (e *Engine) Requests() []RequestView {
	v := e.published.Load()
	if v == nil {
		return nil
	}
	out := make([]RequestView, 0, len(v.ids))
	for _, id := range v.ids {
		if rv, ok := v.byID[id]; ok {
			out = append(out, rv)
		}
	}
	return out
}

// publish makes changed (views the loop just built) what readers see, with the request list
// as it stands. Copy on write: the map is copied only when a view changed or a request came
// or went, which an idle daemon does not do.
func (e *Engine) publish(changed []RequestView) {
	old := e.published.Load()
	if old != nil && len(changed) == 0 && len(old.ids) == len(e.reqs) && !e.reqsChanged {
		return
	}
	next := &views{byID: make(map[string]RequestView, len(e.reqs))}
	if e.reqsChanged || old == nil {
		next.ids = e.sortedIDs()
	} else {
		next.ids = old.ids
	}
	e.reqsChanged = false
	for _, rv := range changed {
		if _, ok := e.reqs[rv.ID]; ok {
			next.byID[rv.ID] = rv
		}
	}
	for _, id := range next.ids {
		if _, ok := next.byID[id]; ok {
			continue
		}
		if rv, ok := old.lookup(id); ok {
			next.byID[id] = rv
		} else {
			next.byID[id] = e.view(e.reqs[id]) // new: its first view, not left out until the next flush
		}
	}
	e.published.Store(next)
}

func (v *views) lookup(id string) (RequestView, bool) {
	if v == nil {
		return RequestView{}, false
	}
	rv, ok := v.byID[id]
	return rv, ok
}

func (e *Engine) view(r *reqState) RequestView {
	now := e.opt.Clock.Now()
	v := RequestView{ID: r.ID, Fields: r.Fields, Status: r.Status, State: r.state, Folder: r.Folder,
		FilesExpected: r.Files, UpdatedAt: now}
	files := e.filesOf(r.ID)
	_, framesGiven := r.Fields["frames"]
	v.Counts, v.Files, v.Sequences, v.FilesOmitted = e.summarizeFiles(files, framesGiven, now)
	v.Why, v.CanDeliver = whyRequest(r, files, e.opt, now), canDeliver(r, e.opt)
	return v
}

// summarizeFiles counts files by state and summarizes them as Summarize does, building a
// FileView only for the files listed on their own.
func (e *Engine) summarizeFiles(files []*fileState, framesGiven bool, now time.Time) (map[State]int, []FileView, []SequenceView, int) {
	counts := countStates(files).asMap()
	idx, seqs, omitted := summarize(files, framesGiven)
	singles := make([]FileView, len(idx))
	for i, j := range idx {
		singles[i] = fileView(files[j], now)
	}
	return counts, singles, seqs, omitted
}

func fileView(fs *fileState, now time.Time) FileView {
	return FileView{ID: fs.rec.ID, Request: fs.req(), Metadata: fs.meta, Name: fs.name, Path: fs.rec.Path, State: fs.rec.State,
		Reason: fs.rec.Reason, Message: fs.rec.Message, Size: fs.rec.Size, SHA256: fs.rec.SHA256,
		RemotePath: fs.rec.RemotePath, Verified: fs.verified, ChangedAt: fs.rec.UpdatedAt, Retrying: fs.retrying,
		Attempt: fs.x().attempt, NextTry: fs.x().nextTry, Done: fs.done, Media: mediaOf(fs), Why: whyFile(fs, now), RetryReason: fs.x().retryWhy}
}

// report marks a request's view as changed. Views are sent at most every reportEvery (and
// when the loop stops): a request of thousands of files changes thousands of times, and
// rebuilding its status file on each change made the work grow with the square of its size.
func (e *Engine) report(r *reqState) {
	if e.dirty == nil {
		e.dirty = map[string]bool{}
	}
	e.dirty[r.ID] = true
}

// reportEvery bounds how stale a status file, the dashboard and the API may be.
const reportEvery = 200 * time.Millisecond

// bigReportEvery is how often the view of a big request (bigRequest files or more) is sent:
// building it and its status file is linear in its files.
const bigReportEvery = time.Second

// flushReports sends the views of the requests that changed since the last flush; all sends
// big requests' too, however recently they were sent.
func (e *Engine) flushReports(all bool) {
	now := time.Now() // paces work in real time, whatever clock the views are stamped with
	var changed []RequestView
	for id := range e.dirty {
		r := e.reqs[id]
		if r == nil {
			delete(e.dirty, id)
			continue
		}
		if !all && len(e.byReq[id]) >= bigRequest && now.Sub(r.reportedAt) < bigReportEvery {
			continue
		}
		delete(e.dirty, id)
		r.reportedAt = now
		v := e.view(r)
		changed = append(changed, v)
		if e.rep != nil {
			e.rep.RequestChanged(v)
		}
	}
	e.publish(changed)
	if e.binDirty && (all || len(e.files) < bigRequest || now.Sub(e.binReportedAt) >= bigReportEvery) {
		e.binDirty, e.binReportedAt = false, now
		e.sendBin()
	}
}

// reportBin reports the File Bin: every file dropped there, with the request the naming rules
// tied it to or the reason it is held.
func (e *Engine) reportBin() {
	if e.opt.Bin == "" {
		return
	}
	if e.opt.Matcher == nil {
		// Without naming rules, ready bin files are held at once (not at the next flush).
		// Bin files no request took are the index's "" entry (not every file hotdrop knows).
		for fs := range e.byReq[""] {
			if fs.inBin && fs.rec.State == Ready {
				e.hold(fs, ReasonNoMatchingRequest, "no naming rules are configured: the File Bin cannot match files to requests; move the file into its request's drop folder")
				e.save(context.Background(), fs)
			}
		}
	}
	e.binDirty = true
}

func (e *Engine) sendBin() {
	now := e.opt.Clock.Now()
	v := RequestView{Bin: true, Folder: filepath.Join(e.opt.Root, filepath.FromSlash(e.opt.Bin)), UpdatedAt: now, State: Waiting}
	var files []*fileState
	for _, fs := range e.files {
		if fs.inBin {
			files = append(files, fs)
		}
	}
	// Summarized as a request's view is: a sequence dropped in the bin is one row, and past
	// 500 other files only those needing attention are listed.
	v.Counts, v.Files, v.Sequences, v.FilesOmitted = e.summarizeFiles(files, false, now)
	if e.rep != nil {
		e.rep.RequestChanged(v)
	}
}
