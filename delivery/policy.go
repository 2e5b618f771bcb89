// Hold policy: what a request's files need before they go, and the state that follows.

package delivery

import (
	"context"
	"fmt"
	"slices"
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
	before := liftReconsidered(files, e.wasBuf[:0])
	defer func() { e.wasBuf = before[:0] }()
	comparing := e.applySameContent(r, files)
	t := tallyFiles(files, r)
	binWait := e.binWaits(files)
	for _, fs := range files {
		if fs.rec.State == Ready && !sameContentPending(fs) {
			e.deriveHold(r, fs, t)
		}
	}
	checking := e.applyContent(ctx, r, files) || comparing
	held, failed, ready, complete := countFiles(files, r, t.delivered, t.busy)
	complete = complete && !binWait
	if complete && held == 0 && failed == 0 && ready > 0 && !checking && e.holdSequences(r, files) {
		held, failed, ready, complete = countFiles(files, r, t.delivered, t.busy)
		complete = complete && !binWait
	}
	if complete && held == 0 && failed == 0 && ready > 0 && !checking && (e.opt.AutoDeliver || r.deliver) && r.Accepting() {
		e.startReady(ctx, r, files)
	}
	for i, fs := range files {
		if before[i] != (fileWas{fs.rec.State, fs.rec.Reason}) {
			e.save(ctx, fs)
		}
	}
	r.state = requestState(files, r, complete)
	r.settlingLeft, r.mayStart = 0, false
	for _, fs := range files {
		if fs.counted = fs.rec.State == Settling; fs.counted {
			r.settlingLeft++
		}
	}
	if r.state == Delivered && !r.quiet {
		// Not from the first look after a start: the journal holds only the files that were
		// delivered (a failed one is found again on the disk), which look delivered whole.
		r.delivered = true
	}
	e.announce(ctx, r, files)
	e.report(r)
}

type fileWas struct {
	state  State
	reason string
}

// liftReconsidered lifts the holds refreshNow derives again, and returns each file's state
// and reason before, so that only files whose outcome changed are saved.
func liftReconsidered(files []*fileState, before []fileWas) []fileWas {
	before = slices.Grow(before, len(files)) // once, not by a quarter at a time
	for _, fs := range files {
		before = append(before, fileWas{fs.rec.State, fs.rec.Reason})
		if fs.rec.State == Held && (reconsidered[fs.rec.Reason] || fs.seqSplit) {
			fs.seqSplit = false
			fs.rec.State, fs.rec.Reason, fs.rec.Message = Ready, "", ""
			if !fs.latestReady {
				fs.rec.State = Settling
			}
		}
	}
	return before
}

// tally is what the request-level holds are judged on, counted before any is derived: a held
// file still takes its place.
type tally struct {
	delivered     int // delivered files that still take one of the request's places
	ready         int
	busy          int // settling or uploading
	everDelivered int // files delivered once, whatever they are now
}

func tallyFiles(files []*fileState, r *reqState) tally {
	var t tally
	for _, fs := range files {
		if !fs.rec.DeliveredAt.IsZero() {
			t.everDelivered++
		}
		switch fs.rec.State {
		case Delivered:
			// In a redelivery, a delivered file whose source is gone is being replaced
			// (perhaps under a new name): it no longer takes one of the request's places.
			if !(r.Status == StatusRedeliveryRequested && fs.sourceGone) {
				t.delivered++
			}
		case Ready:
			t.ready++
		case Settling, Uploading:
			t.busy++
		}
	}
	return t
}

// RequestHold is the hold every ready file of a request gets from the request as a whole —
// its status, an earlier delivery, more files than it takes — or "" when there is none. It
// is the Engine's rule and explain's: files holds the request's files as the Engine counts
// them (delivered ones still taking a place, ready, and settling or uploading ones),
// everDelivered those delivered at least once, and wholeDelivered says whether the request
// was delivered as a whole before: a request of any number of files (files = 0) is already
// delivered by that alone, since its files are as many as came before its ready marker.
func RequestHold(r Request, files, everDelivered int, wholeDelivered bool) (code, message string) {
	already := everDelivered > 0 && everDelivered >= r.Files
	if r.Files == 0 {
		already = wholeDelivered
	}
	switch {
	case !r.Accepting():
		return ReasonRequestNotOpen, fmt.Sprintf("request %s has status %q, which takes no deliveries; the studio must reopen it (open or redelivery_requested)", r.ID, r.Status)
	case r.Status != StatusRedeliveryRequested && already:
		return ReasonAlreadyDelivered, fmt.Sprintf("request %s was already delivered; a new or changed file is sent only when the studio asks for a redelivery (status redelivery_requested)", r.ID)
	case r.Files > 0 && files > r.Files:
		return ReasonTooManyFiles, fmt.Sprintf("request %s takes %d file(s) but its folder holds %d; remove the extra ones", r.ID, r.Files, files)
	}
	return "", ""
}

// deriveHold holds a ready file for what its request as a whole says (RequestHold), a File
// Bin sequence split between requests, or a name the destination cannot take.
func (e *Engine) deriveHold(r *reqState, fs *fileState, t tally) {
	if code, msg := RequestHold(r.Request, t.delivered+t.ready+t.busy, t.everDelivered, r.delivered); code != "" {
		e.hold(fs, code, msg)
	} else if msg := e.sequenceSplit(fs); msg != "" {
		e.hold(fs, "ambiguous_match", msg)
		fs.seqSplit = true
	} else if msg := e.nameProblem(r, fs); msg != "" {
		e.hold(fs, ReasonInvalidName, msg)
	}
}

// binWaits reports whether a File Bin sequence of the request still has frames settling in
// the bin (matched to no request yet): it goes once they are judged, whole.
func (e *Engine) binWaits(files []*fileState) bool {
	for _, fs := range files {
		if fs.inBin && fs.rec.State == Ready && e.binFramesSettling(fs) {
			return true
		}
	}
	return false
}

// startReady starts the uploads of a complete request's ready files, in name order.
func (e *Engine) startReady(ctx context.Context, r *reqState, files []*fileState) {
	var starting []*fileState
	for _, fs := range files {
		if fs.rec.State == Ready {
			starting = append(starting, fs)
		}
	}
	sort.Slice(starting, func(i, j int) bool { return starting[i].name < starting[j].name })
	for _, fs := range starting {
		e.start(ctx, r, fs)
	}
	e.dispatch(ctx)
}

// announce says what a request's new state means: sequence milestones, the request event
// (with the first hold or failure as its reason), the manifest once it is delivered, and a
// journal record of the state. The first look after a start is quiet: it establishes the
// state, and only sends a manifest a crash left unsent.
func (e *Engine) announce(ctx context.Context, r *reqState, files []*fileState) {
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
			if fs.rec.State == Held || fs.rec.State == Failed {
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
}

// countFiles counts a request's held, failed and ready files and says whether it is
// complete (SPEC.md, Completeness): delivered and busy (settling or uploading) are counted
// before holds are derived, as a held file still takes its place.
func countFiles(files []*fileState, r *reqState, delivered, busy int) (held, failed, ready int, complete bool) {
	c := countStates(files)
	held, failed, ready, uploading := c.of(Held), c.of(Failed), c.of(Ready), c.of(Uploading)
	if r.Files > 0 {
		complete = ready+delivered+uploading == r.Files && busy == uploading && (!r.needsMarker || r.marker || r.deliver)
	} else {
		complete = (r.marker || r.deliver) && ready+delivered+uploading > 0 && busy == uploading
	}
	return held, failed, ready, complete
}

// stateCounts counts files by state (an array, not a map: a refresh of a 100,000-frame
// request counts three times).
type stateCounts struct{ n [len(allStates)]int }

var allStates = [...]State{Waiting, Settling, Held, Ready, Uploading, Delivered, Failed}

func stateIndex(s State) int {
	switch s {
	case Settling:
		return 1
	case Held:
		return 2
	case Ready:
		return 3
	case Uploading:
		return 4
	case Delivered:
		return 5
	case Failed:
		return 6
	}
	return 0
}

func countStates(files []*fileState) stateCounts {
	var c stateCounts
	for _, fs := range files {
		c.n[stateIndex(fs.rec.State)]++
	}
	return c
}

func (c stateCounts) of(s State) int { return c.n[stateIndex(s)] }

// asMap is c as a view shows counts: the states with files.
func (c stateCounts) asMap() map[State]int {
	m := map[State]int{}
	for i, n := range c.n {
		if n > 0 {
			m[allStates[i]] = n
		}
	}
	return m
}

// nameProblem is cached per request and name: refresh asks on every event, for every ready
// file of the request.
func (e *Engine) nameProblem(r *reqState, fs *fileState) string {
	if e.opt.RemotePath == nil {
		return ""
	}
	if fs.nameOK && int(fs.nameGen) == e.gen && r.ID == fs.req() {
		return fs.nameMsg
	}
	fs.nameOK, fs.nameGen = r.ID == fs.req(), int32(e.gen) // setName and assign drop it
	fs.nameMsg = e.nameProblemUncached(r, fs)
	return fs.nameMsg
}

func (e *Engine) nameProblemUncached(r *reqState, fs *fileState) string {
	rel, err := e.opt.RemotePath(r.Request, fs.name)
	if err != nil {
		return fmt.Sprintf("the remote path for %q cannot be made from destination.path: %v", fs.name, err)
	}
	return matcher.NameProblem(e.opt.Names, rel)
}

// requestState derives a request's state from its files (SPEC.md: held if any file is held,
// failed if any failed, uploading once any is, delivered when all are).
func requestState(files []*fileState, r *reqState, complete bool) State {
	if len(files) == 0 {
		return Waiting
	}
	c := countStates(files)
	failed, held, uploading, delivered, settling := c.of(Failed), c.of(Held), c.of(Uploading), c.of(Delivered), c.of(Settling)
	for _, fs := range files {
		// A delivered file written again stays delivered, for its delivered request, until
		// it is known to hold other content (samecontent.go): the same bytes written again
		// must not turn the request to settling and back, announcing it and sending its
		// manifest a second time. Only for a request delivered now: one that is not must not
		// become delivered with such a file (its manifest would lack it).
		if r.state == Delivered && fs.more != nil && fs.more.was != nil && (fs.rec.State == Settling || sameContentPending(fs)) {
			delivered++
			if fs.rec.State == Settling {
				settling--
			}
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
