// Hold policy: what a request's files need before they go, and the state that follows.

package delivery

import (
	"context"
	"fmt"
	"sort"

	"github.com/hotdrop/hotdrop/matcher"
)

// reconsidered are the holds the Engine itself derives from the request as a whole; they are
// lifted and re-derived whenever the request is looked at again. Holds about the file itself
// (unsafe_path) stay until the file changes.
var reconsidered = map[string]bool{
	ReasonRequestNotOpen: true, ReasonTooManyFiles: true, ReasonAlreadyDelivered: true, ReasonInvalidName: true,
	ReasonIncompleteSequence: true, ReasonSuspectFrame: true,
	ReasonMediaMismatch: true, ReasonUnreadableMedia: true, ReasonIMFMismatch: true, // applyContent re-derives them
}

// refreshNow re-derives a request's holds and state, starts its uploads when it is complete,
// and reports it. Callers ask for it with refresh; see index.go.
func (e *Engine) refreshNow(ctx context.Context, r *reqState) {
	files := e.filesOf(r.ID)
	type was struct{ state, reason string }
	before := make([]was, len(files))
	for i, fs := range files {
		before[i] = was{fs.rec.State, fs.rec.Reason}
		if fs.rec.State == string(Held) && (reconsidered[fs.rec.Reason] || fs.seqSplit) {
			fs.seqSplit = false
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Ready), "", ""
			if !fs.latestReady {
				fs.rec.State = string(Settling)
			}
		}
	}
	var delivered, ready, busy, everDelivered int
	for _, fs := range files {
		if !fs.rec.DeliveredAt.IsZero() {
			everDelivered++
		}
		switch State(fs.rec.State) {
		case Delivered:
			// In a redelivery, a delivered file whose source is gone is being replaced
			// (perhaps under a new name): it no longer takes one of the request's places.
			if !(r.Status == StatusRedeliveryRequested && fs.sourceGone) {
				delivered++
			}
		case Ready:
			ready++
		case Settling, Uploading:
			busy++
		}
	}
	// A sequence dropped in the File Bin whose other frames still settle there (matched to
	// no request yet) goes once they are judged, whole.
	binWait := false
	for _, fs := range files {
		if fs.inBin && fs.rec.State == string(Ready) && e.binFramesSettling(fs) {
			binWait = true
			break
		}
	}
	for _, fs := range files {
		if fs.rec.State != string(Ready) {
			continue
		}
		switch {
		case !r.Accepting():
			e.hold(fs, ReasonRequestNotOpen, fmt.Sprintf("request %s has status %q, which takes no deliveries; the studio must reopen it (open or redelivery_requested)", r.ID, r.Status))
		case r.Status != StatusRedeliveryRequested && everDelivered > 0 && everDelivered >= max(r.Files, 1):
			e.hold(fs, ReasonAlreadyDelivered, fmt.Sprintf("request %s was already delivered; a new or changed file is sent only when the studio asks for a redelivery (status redelivery_requested)", r.ID))
		case r.Files > 0 && delivered+ready+busy > r.Files:
			e.hold(fs, ReasonTooManyFiles, fmt.Sprintf("request %s takes %d file(s) but its folder holds %d; remove the extra ones", r.ID, r.Files, delivered+ready+busy))
		default:
			if msg := e.sequenceSplit(fs); msg != "" {
				e.hold(fs, "ambiguous_match", msg)
				fs.seqSplit = true
			} else if msg := e.nameProblem(r, fs); msg != "" {
				e.hold(fs, ReasonInvalidName, msg)
			}
		}
	}
	checking := e.applyContent(ctx, r, files)
	held, failed, ready, complete := countFiles(files, r, delivered, busy)
	complete = complete && !binWait
	if complete && held == 0 && failed == 0 && ready > 0 && !checking && e.holdSequences(r, files) {
		held, failed, ready, complete = countFiles(files, r, delivered, busy)
		complete = complete && !binWait
	}
	if complete && held == 0 && failed == 0 && ready > 0 && !checking && (e.opt.AutoDeliver || r.deliver) && r.Accepting() {
		var starting []*fileState
		for _, fs := range files {
			if fs.rec.State == string(Ready) {
				starting = append(starting, fs)
			}
		}
		sort.Slice(starting, func(i, j int) bool { return starting[i].name < starting[j].name })
		for _, fs := range starting {
			e.start(ctx, r, fs)
		}
		e.dispatch(ctx)
	}
	for i, fs := range files {
		if before[i] != (was{fs.rec.State, fs.rec.Reason}) {
			e.save(ctx, fs)
		}
	}
	r.state = requestState(files, r, complete)
	e.sequenceMilestones(r, files, r.quiet)
	if r.quiet {
		r.quiet, r.emitted = false, r.state
		if r.state == Delivered && e.opt.Manifest {
			// A crash between the last file and its manifest: send the manifest now.
			if at, err := e.st.ManifestAt(ctx, r.ID); err == nil && (at.IsZero() || at.Equal(manifestIntent)) {
				e.startManifest(ctx, r, files)
			}
		}
	}
	if typ := requestEventType(r.emitted, r.state); typ != "" {
		if typ == EventRequestDelivered {
			e.startManifest(ctx, r, files)
			r.deliver = false // `hotdrop deliver` released this package, not the next one
		}
		ev := Event{Type: typ, Request: &EventRequest{ID: r.ID, State: string(r.state), Status: r.Status}}
		for _, fs := range files {
			if fs.rec.State == string(Held) || fs.rec.State == string(Failed) {
				ev.Reason = &EventReason{Code: fs.rec.Reason, Message: fs.name + ": " + fs.rec.Message}
				break
			}
		}
		e.emit(ev)
	}
	if r.emitted != r.state {
		r.emitted = r.state
		if e.unsavedReqs == nil {
			e.unsavedReqs = map[string]*reqState{}
		}
		e.unsavedReqs[r.ID] = r // journaled at the end of the batch
	}
	e.report(r)
}

// countFiles counts a request's held, failed and ready files and says whether it is
// complete (SPEC.md, Completeness): delivered and busy (settling or uploading) are counted
// before holds are derived, as a held file still takes its place.
func countFiles(files []*fileState, r *reqState, delivered, busy int) (held, failed, ready int, complete bool) {
	uploading := 0
	for _, fs := range files {
		switch State(fs.rec.State) {
		case Held:
			held++
		case Failed:
			failed++
		case Uploading:
			uploading++
		case Ready:
			ready++
		}
	}
	if r.Files > 0 {
		complete = ready+delivered+uploading == r.Files && busy == uploading && (!r.needsMarker || r.marker || r.deliver)
	} else {
		complete = (r.marker || r.deliver) && ready+delivered+uploading > 0 && busy == uploading
	}
	return held, failed, ready, complete
}

// nameProblem is cached per request and name: refresh asks on every event, for every ready
// file of the request.
func (e *Engine) nameProblem(r *reqState, fs *fileState) string {
	if e.opt.RemotePath == nil {
		return ""
	}
	if fs.nameOK && fs.nameGen == e.gen && fs.nameReq == r.ID && fs.nameFor == fs.name {
		return fs.nameMsg
	}
	fs.nameOK, fs.nameGen, fs.nameReq, fs.nameFor = true, e.gen, r.ID, fs.name
	fs.nameMsg = e.nameProblemUncached(r, fs)
	return fs.nameMsg
}

func (e *Engine) nameProblemUncached(r *reqState, fs *fileState) string {
	rel, err := e.opt.RemotePath(r.Request, fs.name)
	if err != nil {
		return fmt.Sprintf("the remote path for %q cannot be made from destination.path: %v", fs.name, err)
	}
	if p := matcher.UnsafeNameProblem(rel); p != "" {
		return p // under every policy
	}
	if e.opt.Names == "portable" {
		return matcher.PortableNameProblem(rel)
	}
	return ""
}

// requestState derives a request's state from its files (SPEC.md: held if any file is held,
// failed if any failed, uploading once any is, delivered when all are).
func requestState(files []*fileState, r *reqState, complete bool) State {
	if len(files) == 0 {
		return Waiting
	}
	var failed, held, uploading, delivered, settling int
	for _, fs := range files {
		switch State(fs.rec.State) {
		case Failed:
			failed++
		case Held:
			held++
		case Uploading:
			uploading++
		case Delivered:
			delivered++
		case Settling:
			settling++
		}
	}
	switch {
	case failed > 0:
		return Failed
	case held > 0:
		return Held
	case uploading > 0:
		return Uploading
	case delivered == len(files) && (r.Files == 0 || delivered >= r.Files):
		return Delivered
	case complete:
		return Ready
	case settling > 0:
		return Settling
	}
	return Waiting
}
