// Views: what status files, the dashboard, the API and the CLI see of the Engine.

package delivery

import (
	"context"
	"path/filepath"
	"sort"
	"time"
)

// RequestIDs lists the ids of the requests the Engine knows, sorted, for callers outside the
// loop that need no view (building every view of 10,000 requests every 10 s showed in idle
// profiles).
func (e *Engine) RequestIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sortedIDs()
}

func (e *Engine) sortedIDs() []string {
	ids := make([]string, 0, len(e.reqs))
	for id := range e.reqs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Requests returns a view of every request, for commands and reports outside the loop.
func (e *Engine) Requests() []RequestView {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := e.sortedIDs()
	out := make([]RequestView, 0, len(ids))
	for _, id := range ids {
		out = append(out, e.view(e.reqs[id]))
	}
	return out
}

func (e *Engine) view(r *reqState) RequestView {
	v := RequestView{ID: r.ID, Fields: r.Fields, Status: r.Status, State: r.state, Folder: r.Folder,
		FilesExpected: r.Files, UpdatedAt: time.Now()}
	files := e.filesOf(r.ID)
	now := e.opt.Clock.Now()
	all := make([]FileView, len(files))
	v.Counts = map[State]int{}
	for i, fs := range files {
		all[i] = fileView(fs, now)
		v.Counts[all[i].State]++
	}
	_, framesGiven := r.Fields["frames"]
	v.Files, v.Sequences, v.FilesOmitted = Summarize(all, framesGiven)
	v.Why, v.CanDeliver = whyRequest(r, files, e.opt, now), canDeliver(r, e.opt)
	return v
}

func fileView(fs *fileState, now time.Time) FileView {
	return FileView{ID: fs.rec.ID, Request: fs.req, Metadata: fs.meta, Name: fs.name, Path: fs.rec.Path, State: State(fs.rec.State),
		Reason: fs.rec.Reason, Message: fs.rec.Message, Size: fs.rec.Size, SHA256: fs.rec.SHA256,
		RemotePath: fs.rec.RemotePath, Verified: fs.verified, ChangedAt: fs.rec.UpdatedAt, Retrying: fs.retrying,
		Attempt: fs.attempt, NextTry: fs.nextTry, Done: fs.done, Media: mediaOf(fs), Why: whyFile(fs, now), RetryReason: fs.retryWhy}
}

// report marks a request's view as changed. Views are sent at most every reportEvery (and
// when the loop stops): a request of thousands of files changes thousands of times, and
// rebuilding its status file on each change made the work grow with the square of its size.
func (e *Engine) report(r *reqState) {
	if e.rep == nil {
		return
	}
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
	if e.rep == nil {
		return
	}
	now := time.Now()
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
		e.rep.RequestChanged(e.view(r))
	}
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
	if e.opt.Classifier == nil {
		// Without naming rules, ready bin files are held at once (not at the next flush).
		// Bin files no request took are the index's "" entry (not every file hotdrop knows).
		for fs := range e.byReq[""] {
			if fs.inBin && fs.rec.State == string(Ready) {
				e.hold(fs, ReasonNoMatchingRequest, "no naming rules are configured: the File Bin cannot match files to requests; move the file into its request's drop folder")
				e.save(context.Background(), fs)
			}
		}
	}
	e.binDirty = true
}

func (e *Engine) sendBin() {
	v := RequestView{Bin: true, Folder: filepath.Join(e.opt.Root, filepath.FromSlash(e.opt.Bin)), UpdatedAt: time.Now(), State: Waiting,
		Counts: map[State]int{}}
	now := e.opt.Clock.Now()
	var all []FileView
	for _, fs := range e.files {
		if fs.inBin {
			all = append(all, fileView(fs, now))
			v.Counts[State(fs.rec.State)]++
		}
	}
	// Summarized as a request's view is: a sequence dropped in the bin is one row, and past
	// 500 other files only those needing attention are listed.
	v.Files, v.Sequences, v.FilesOmitted = Summarize(all, false)
	if e.rep != nil {
		e.rep.RequestChanged(v)
	}
}
