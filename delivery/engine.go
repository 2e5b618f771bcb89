package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

// Options are the Engine's settings, assembled from the config by cmd/hotdrop.
type Options struct {
	Root           string      // watch.root, absolute
	Bin            string      // watch.bin, a folder name below Root
	FolderTemplate string      // watch.folder
	FolderMode     os.FileMode // watch.folder_mode
	Group          string      // watch.group; "" = leave the group alone
	ReadyMarker    string      // watch.ready_marker
	Concurrency    int         // destination.concurrency
	AutoDeliver    bool        // destination.auto_deliver
	Names          string      // destination.names: "portable" or "any"
	// RemotePath renders destination.path for a file of req whose path inside its drop folder
	// is name. An error holds the file invalid_name.
	RemotePath func(req Request, name string) (string, error)
	// RetryBase and RetryMax bound the exponential backoff of transient upload errors.
	RetryBase, RetryMax time.Duration
	Clock               Clock
	Logger              *slog.Logger
	// Classifier judges files against naming rules, sidecars and profiles (nil: only drop
	// folders are used, and the File Bin holds its files).
	Classifier Classifier
	// Touch restarts a file's settle clock (the watcher's); called when its sidecar changes.
	Touch func(path string)
	// Events hears every state change (nil: none).
	Events EventSink
	// After is destination.after: "keep", "move" or "delete", applied once a file is verified.
	After string
	// Manifest is destination.manifest: write REQUEST_ID.hotdrop.json once a request is delivered.
	Manifest bool
	// TempDir holds local temporary files (manifests) before they are uploaded.
	TempDir string
	// JournalCheckEvery is how often a Store that is a JournalChecker is checked (0: 5s).
	JournalCheckEvery time.Duration
	// AlertAfter is destination.alert_after: transient failures for this long make one
	// destination.unreachable event; the next success makes destination.back.
	AlertAfter time.Duration
	// Inspector looks inside files before they are sent (nil: no content checks).
	Inspector Inspector
}

// Engine runs the delivery state machine. Its state is owned by the goroutine in Run; the
// upload goroutines it starts talk to it only through messages.
type Engine struct {
	big bigSlots // large uploads going (inflight.go)
	opt Options
	up  Uploader
	st  Store
	rep Reporter
	log *slog.Logger

	mu       sync.Mutex // guards reqs for Requests() callers outside the loop
	reqs     map[string]*reqState
	byFolder map[string]string // drop folder (slash, relative to Root) → request id
	files    map[string]*fileState
	byReq    map[string]map[*fileState]struct{} // request id ("" for none) → its files; see index.go
	stale    map[string]bool                    // requests to refresh once the events at hand are handled
	// unsaved are files whose records changed since the journal was last written, and
	// queued the events made meanwhile: both go out once per batch (journal.go).
	unsaved map[*fileState]struct{}
	queued  []queuedEvent
	intents []pendingIntent // rename intents waiting for the end of the batch
	afters  []*fileState    // delivered files whose destination.after waits for their record
	// checkpointed are the files with a resume point when Run started (nil: unknown, ask the
	// store for each file); see noCheckpoint.
	checkpointed map[string]bool
	// unsavedReqs are requests whose state changed since the journal was last written.
	unsavedReqs map[string]*reqState
	binSeqs     map[string]map[string]int // File Bin sequence key → request id → frames (index.go)
	outside     map[string]bool           // paths already logged as being outside every drop folder

	msgs    chan msg
	pending []*fileState // complete, waiting for an upload slot
	// resumable are pending files with a journaled checkpoint (a partial on the server):
	// started before the others, so repeated kills do not pile up partials.
	resumable []*fileState
	active    int
	wg        sync.WaitGroup

	runCtx        context.Context // Run's; the uploads it starts stop with it
	dirty         map[string]bool // requests whose views changed since the last flush
	binDirty      bool
	binReportedAt time.Time   // when the File Bin's view was last sent
	gen           int         // counts reloads: what was derived from the options before is stale
	downSince     time.Time   // first transient failure of the current outage
	unreachable   atomic.Bool // destination.unreachable was sent and not yet followed by back

	root *safefs.Root  // watch.root, open; see fsRoot
	insp *inspectState // content checks; see inspect.go
	// watch.group's id, looked up for gidFor (mkdirAll).
	gid    int
	gidFor string
}

type reqState struct {
	Request
	needsMarker bool   // its profile requires the ready marker even with files > 0
	suspect     bool   // its profile holds suspect frames (suspect_frames)
	rel         string // drop folder relative to Root, slash-separated
	marker      bool   // the ready marker is present
	deliver     bool   // `hotdrop deliver` was given: counts as the marker, and as auto_deliver
	setupErr    string // why its drop folder could not be made (whyRequest says it)
	state       State
	emitted     State // the state the last request event was made for
	quiet       bool  // first refresh after start: establish the state without events
	refreshedAt time.Time
	reportedAt  time.Time         // when its view was last sent
	milestones  map[string]string // sequence key → its last milestone event (sequence.go)
	lastMeta    map[string]string // the metadata of its last file judged, shared by equal ones (shareMeta)
}

type fileState struct {
	rec  FileRecord
	name string // path inside its drop folder
	req  string // request id; "" for the File Bin
	// latest is the newest identity the watcher reported, and whether it was Ready; it may be
	// newer than rec while an upload of an older identity is in flight.
	latest      watcher.FileInfo
	latestReady bool
	changes     int // consecutive changed_during_upload
	retrying    bool
	retryWhy    string // the transient error being retried, in words (whyRetrying)
	attempt     int
	nextTry     time.Time
	done        int64
	emitted     State // the state the last file event was made for
	inBin       bool  // dropped in the File Bin: its request comes from the naming rules
	// nameProblem's cached answer, valid for (nameGen, nameReq, nameFor).
	nameOK           bool
	nameGen          int
	nameReq, nameFor string
	nameMsg          string
	// frameOf's cached answer (sequence.go), valid while frameFor is the name.
	frame               matcher.Frame
	isFrame, frameKnown bool
	frameFor            string
	began               bool         // an upload of it began in this run (it may have a resume point)
	seqSplit            bool         // held because its File Bin sequence went to several requests
	binKey, binReq      string       // how binSequence counted it ("": not counted)
	gone                bool         // removed while uploading
	abandon             func()       // stops its upload in flight for good (abandon.go); nil when none runs
	sourceGone          bool         // delivered, then its source was moved away or deleted
	replace             bool         // the upload may replace the remote file (hotdrop's earlier delivery there)
	replaceAsked        bool         // `hotdrop retry --replace`: the next upload replaces what is there (control.go)
	note                *EventReason // said with the file's next event, once (control.go)
	meta                map[string]string
	verify              []Checksum // writers' checksum files to check before uploading
	progressAt          time.Time
	progressAt0         time.Time   // when this upload started, for the rate
	verified            string      // what proved the last delivery (Result.Verified)
	resume              *Checkpoint // the journaled resume point, read when the upload is queued
	dev                 uint64      // device of the settled identity (0: unknown, e.g. after a restart)
	insp                *fileInspection
}

type msgKind int

const (
	msgDone msgKind = iota
	msgRetrying
	msgProgress
	msgIntent
	msgReconciled
	msgCall
	msgBack    // an upload logged in: the destination is reachable
	msgTrouble // a reachability probe failed during a retry wait
)

type msg struct {
	kind    msgKind
	path    string
	res     Result
	err     error
	attempt int
	next    time.Time
	done    int64
	reply   chan error
	exists  bool
	call    func()
	// abandoned: the upload stopped because its source was removed (abandon.go).
	abandoned bool
}

// New makes an Engine. Call SetRequests, then Run.
func New(opt Options, up Uploader, st Store, rep Reporter) *Engine {
	opt = withDefaults(opt)
	return &Engine{
		opt: opt, up: up, st: st, rep: rep, log: opt.Logger,
		reqs: map[string]*reqState{}, byFolder: map[string]string{},
		files: map[string]*fileState{}, byReq: map[string]map[*fileState]struct{}{}, outside: map[string]bool{},
		msgs: make(chan msg, 64),
	}
}

func withDefaults(opt Options) Options {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 1
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = time.Second
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = 5 * time.Minute
	}
	if opt.Clock == nil {
		opt.Clock = realClock{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.ReadyMarker == "" {
		opt.ReadyMarker = "_READY"
	}
	if opt.JournalCheckEvery <= 0 {
		opt.JournalCheckEvery = defaultJournalCheckEvery
	}
	return opt
}

// SetRequests installs the requests, creating a drop folder for each one that accepts
// deliveries (and the File Bin) and journaling them. It must be called before Run.
func (e *Engine) SetRequests(ctx context.Context, reqs []Request) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.setRequests(ctx, reqs)
}

func (e *Engine) setRequests(ctx context.Context, reqs []Request) error {
	prev := e.reqs
	e.reqs, e.byFolder = map[string]*reqState{}, map[string]string{}
	var errs []error
	recs := make([]RequestRecord, 0, len(reqs))
	if e.opt.Bin != "" {
		if err := e.mkdirAll(e.opt.Bin); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range reqs {
		rel, err := DropFolder(e.opt.FolderTemplate, r.Fields, e.opt.Bin)
		if err != nil {
			errs = append(errs, fmt.Errorf("request %s: %w", r.ID, err))
			continue
		}
		if other, dup := e.byFolder[rel]; dup && other != r.ID {
			errs = append(errs, fmt.Errorf("requests %s and %s get the same drop folder %q: add a field such as {id} to watch.folder", other, r.ID, rel))
			continue
		}
		r.Folder = filepath.Join(e.opt.Root, filepath.FromSlash(rel))
		rs := &reqState{Request: r, rel: rel, state: Waiting}
		if prev != nil && prev[r.ID] == nil && e.runCtx != nil {
			// New to a running engine (a reload, a tracker poll): if it was known before
			// (removed, then back), its delivered files must not announce request.delivered
			// and upload the manifest again; its first look establishes its state quietly.
			rs.quiet = true
		}
		if old := prev[r.ID]; old != nil {
			rs.marker, rs.deliver, rs.state, rs.emitted, rs.milestones = old.marker, old.deliver, old.state, old.emitted, old.milestones
			if old.Status != r.Status {
				e.log.Info("request status changed", "request", r.ID, "from", old.Status, "to", r.Status)
				e.emit(Event{Type: EventRequestStatusChanged, Request: &EventRequest{ID: r.ID, State: string(old.state), Status: r.Status}})
			}
		}
		e.reqs[r.ID] = rs
		e.byFolder[rel] = r.ID
		if r.Accepting() {
			if err := e.mkdirAll(rel); err != nil {
				errs = append(errs, fmt.Errorf("request %s: %w", r.ID, err))
				rs.setupErr = err.Error()
			}
		}
		recs = append(recs, requestRecord(rs))
	}
	if err := e.st.SaveRequests(ctx, recs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func requestRecord(r *reqState) RequestRecord {
	fields, _ := json.Marshal(r.Fields)
	return RequestRecord{ID: r.ID, Fields: string(fields), Status: r.Status, Files: r.Files,
		Folder: r.Folder, State: string(r.state), UpdatedAt: time.Now()}
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(g.Gid)
}

// Reload applies a new configuration while running, without dropping uploads in flight.
// It always applies what it was given; an error says which requests could not be set up
// (their drop folders), not that the old configuration stays.
//
// they finish with the uploader they started with, and later ones use up (nil keeps the
// current one). Requests are replaced (new drop folders created, statuses applied), failed
// files are tried again (SPEC: a config reload retries them) and every hold is re-derived.
func (e *Engine) Reload(ctx context.Context, opt Options, up Uploader, reqs []Request) error {
	var err error
	callErr := e.do(ctx, func() {
		opt = withDefaults(opt)
		e.opt = opt
		e.gen++
		e.log = opt.Logger
		if up != nil {
			e.up = up
		}
		err = e.setRequests(ctx, reqs)
		for _, fs := range e.files {
			if fs.rec.State == string(Delivered) || fs.rec.State == string(Uploading) {
				continue
			}
			if rel, rerr := filepath.Rel(e.opt.Root, fs.rec.Path); rerr == nil {
				r, name, _ := e.locate(filepath.ToSlash(rel))
				fs.name = name
				if r != nil {
					e.assign(fs, r.ID)
				} else {
					e.assign(fs, "")
				}
			}
			if fs.rec.State == string(Failed) {
				fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Settling), "", ""
				if fs.latestReady {
					fs.rec.State = string(Ready)
				}
				e.save(ctx, fs)
			}
		}
		e.reclassify(ctx)
		for _, r := range e.reqs {
			e.refresh(ctx, r)
		}
		e.reportBin()
		e.dispatch(ctx)
	})
	if callErr != nil {
		return callErr
	}
	return err
}

// do runs fn inside the Engine's loop, which owns all state, and waits for it.
func (e *Engine) do(ctx context.Context, fn func()) error {
	done := make(chan struct{})
	select {
	case e.msgs <- msg{kind: msgCall, call: func() {
		// What the events of this batch changed is derived before fn looks at it, and what fn
		// changed before its caller looks.
		e.settle(e.runCtx, true)
		fn()
		e.settle(e.runCtx, true)
		close(done)
	}}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

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

// Run processes watcher events until ctx is cancelled or events is closed, then waits for
// the uploads in flight to stop. Files caught mid-upload keep their journal records and are
// picked up again on the next start.
func (e *Engine) Run(ctx context.Context, events <-chan watcher.Event) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	e.runCtx = ctx
	if err := e.load(ctx); err != nil {
		return err
	}
	if cl, ok := e.st.(CheckpointLister); ok {
		if paths, err := cl.CheckpointPaths(ctx); err == nil {
			e.checkpointed = paths
		} else {
			e.log.Warn("journal: cannot list upload checkpoints; each file's is read when it is queued", "err", err)
		}
	}
	e.mu.Lock()
	var pending []pendingRename
	for _, fs := range e.files {
		if fs.rec.RenameIntent && fs.rec.State != string(Delivered) {
			// The opener is made here, on the loop, which owns the root.
			pending = append(pending, pendingRename{rec: fs.rec, open: e.sourceOpener(fs)})
		}
	}
	for _, r := range e.reqs {
		r.quiet = true
		e.refresh(ctx, r)
	}
	e.reportBin()
	e.settle(ctx, true)
	e.mu.Unlock()
	defer e.wg.Wait()
	if len(pending) > 0 {
		up, log := e.up, e.log
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.reconcile(ctx, up, log, pending)
		}()
	}
	flush := time.NewTicker(reportEvery)
	defer flush.Stop()
	defer func() {
		e.mu.Lock()
		e.flushJournal(ctx)
		e.flushReports(true)
		e.mu.Unlock()
	}()
	check := e.journalCheck()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-check:
			if err := e.checkJournal(ctx); err != nil {
				stop() // the uploads in flight stop at a resumable point
				return err
			}
			check = e.journalCheck()
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			e.mu.Lock()
			e.handle(ctx, ev)
			e.batch(ctx, events)
			e.mu.Unlock()
		case m := <-e.msgs:
			e.mu.Lock()
			e.result(ctx, m)
			e.batch(ctx, events)
			e.mu.Unlock()
		case <-flush.C:
			e.mu.Lock()
			e.settle(ctx, false) // big requests keep their own pace (refreshStale)
			e.flushReports(false)
			e.mu.Unlock()
		}
	}
}

// maxBatch bounds how many events and messages are handled before the requests they touched
// are re-derived, so a flood of events cannot hold back the uploads it makes ready.
const maxBatch = 512

// batch handles what else is already waiting, up to maxBatch, then re-derives the requests
// all of it touched: one refresh per request per batch, not one per event.
func (e *Engine) batch(ctx context.Context, events <-chan watcher.Event) {
	for range maxBatch {
		select {
		case ev, ok := <-events:
			if !ok {
				e.settle(ctx, false)
				return
			}
			e.handle(ctx, ev)
			continue
		case m := <-e.msgs:
			e.result(ctx, m)
			continue
		default:
		}
		break
	}
	e.settle(ctx, false)
}

func relName(folder, p string) string {
	rel, err := filepath.Rel(folder, p)
	if err != nil {
		return filepath.Base(p)
	}
	return filepath.ToSlash(rel)
}

// locate finds the request whose drop folder holds the file at rel (relative to Root), and
// the file's path inside it. bin is set for files in the File Bin.
func (e *Engine) locate(rel string) (r *reqState, name string, bin bool) {
	if id, ok := e.byFolder[rel]; ok && rel != e.opt.Bin {
		return e.reqs[id], ".", false // the drop folder itself: a folder hotdrop cannot enter (Denied)
	}
	if e.opt.Bin != "" && (rel == e.opt.Bin || strings.HasPrefix(rel, e.opt.Bin+"/")) {
		return nil, strings.TrimPrefix(rel, e.opt.Bin+"/"), true
	}
	dir := path.Dir(rel)
	for dir != "." && dir != "/" {
		if id, ok := e.byFolder[dir]; ok {
			return e.reqs[id], strings.TrimPrefix(rel, dir+"/"), false
		}
		dir = path.Dir(dir)
	}
	return nil, "", false
}

// auxiliary reports whether a file is never delivered itself: the ready marker, sidecars,
// folder metadata and writers' checksum files beside a file.
func (e *Engine) auxiliary(p string) bool {
	base := filepath.Base(p)
	if base == e.opt.ReadyMarker || base == "_metadata.toml" || base == "_metadata.json" {
		return true
	}
	for _, ext := range []string{".toml", ".json", ".md5", ".sha256", ".xxh64"} {
		if strings.HasSuffix(base, ext) {
			if _, err := e.lstat(strings.TrimSuffix(p, ext)); err == nil {
				return true
			}
		}
	}
	return false
}

func (e *Engine) handle(ctx context.Context, ev watcher.Event) {
	r, name, bin := e.locate(ev.Rel)
	if r == nil && !bin {
		if !e.outside[ev.Path] && ev.Kind != watcher.Removed {
			e.outside[ev.Path] = true
			e.log.Warn("file is not inside any request's drop folder nor the File Bin; it is left alone", "path", ev.Path)
		}
		return
	}
	if r != nil && filepath.Base(ev.Path) == e.opt.ReadyMarker && path.Dir(ev.Rel) == r.rel {
		r.marker = ev.Kind != watcher.Removed
		e.refresh(ctx, r)
		return
	}
	if ev.Kind != watcher.Removed && ev.Kind != watcher.Unsafe && ev.Kind != watcher.Denied && e.isAuxiliary(ev.Path) {
		e.liftDenied(ctx, ev.Path)
		e.auxChanged(ev.Path)
		return
	}
	fs := e.files[ev.Path]
	if ev.Kind == watcher.Removed {
		if fs == nil {
			if e.isAuxiliary(ev.Path) {
				e.auxChanged(ev.Path) // a sidecar or checksum file went: judge its file again
			}
			return
		}
		if fs.rec.State == string(Uploading) {
			fs.gone = true
			e.abandonUpload(fs)
		}
		if fs.rec.State != string(Delivered) && fs.rec.State != string(Uploading) {
			e.dropFile(fs)
			if err := e.st.DeleteFile(ctx, ev.Path); err != nil {
				e.log.Error("journal", "err", err)
			}
		}
		if fs.rec.State == string(Delivered) {
			fs.sourceGone = true // moved away (after = move) or deleted: the delivery stands
		}
		e.refreshOwner(ctx, fs)
		return
	}
	if fs == nil {
		fs = &fileState{rec: FileRecord{Path: ev.Path, State: string(Settling), CreatedAt: time.Now()}}
		e.putFile(fs)
	}
	fs.inBin = bin
	id := fs.req // a File Bin file's request is decided by classify when it is ready
	if r != nil {
		id = r.ID
	}
	if fs.req != id && fs.rec.State != string(Uploading) {
		prev := fs.req
		e.assign(fs, id)
		if prevReq := e.reqs[prev]; prevReq != nil {
			e.refresh(ctx, prevReq)
		}
	}
	fs.name = name
	e.binSequence(fs, true) // name and File Bin known now
	fs.gone, fs.sourceGone = false, false
	fs.latest, fs.latestReady = ev.Info, ev.Kind == watcher.Ready

	switch ev.Kind {
	case watcher.Unsafe:
		if fs.rec.State == string(Uploading) {
			return
		}
		e.setIdentity(fs, ev.Info)
		e.hold(fs, ReasonUnsafePath, fmt.Sprintf("%s %s", name, ev.Reason))
	case watcher.Denied:
		if !e.holdDenied(fs, ev) {
			return
		}
	case watcher.Settling, watcher.Ready:
		if fs.rec.State == string(Uploading) {
			return // the upload will notice the change and discard its partial
		}
		if fs.rec.State == string(Delivered) && sameIdentity(fs.rec, ev.Info) {
			return
		}
		e.setIdentity(fs, ev.Info)
		if ev.Kind == watcher.Settling {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Settling), "", ""
		} else {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Ready), "", ""
			e.classify(ctx, fs, r)
		}
	}
	e.binSequence(fs, true) // judged now (classify), or settling again
	e.save(ctx, fs)
	e.refreshOwner(ctx, fs)
}

func (e *Engine) refreshOwner(ctx context.Context, fs *fileState) {
	if r := e.reqs[fs.req]; r != nil {
		e.refresh(ctx, r)
	}
	if fs.inBin || e.reqs[fs.req] == nil {
		e.reportBin()
	}
}

func sameIdentity(rec FileRecord, fi watcher.FileInfo) bool {
	// A journaled inode of 0 is unknown, not different: the watcher reported none for a while
	// (its stats came from safefs, whose Sys() it did not read), and records of then remain.
	return rec.Size == fi.Size && rec.ModTime.Equal(fi.ModTime) && (rec.Inode == fi.Inode || rec.Inode == 0)
}

func (e *Engine) setIdentity(fs *fileState, fi watcher.FileInfo) {
	if fs.rec.State == string(Delivered) && !sameIdentity(fs.rec, fi) {
		// A new version of a delivered file: its checksum no longer describes it. DeliveredAt
		// stays: it says the remote file at RemotePath is ours (a redelivery may replace it).
		fs.rec.SHA256 = ""
	}
	fs.rec.Size, fs.rec.ModTime, fs.rec.Inode = fi.Size, fi.ModTime, fi.Inode
	fs.dev = fi.Dev
}

func (e *Engine) hold(fs *fileState, code, message string) {
	fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Held), code, message
}

// save marks fs's record for the journal and announces its new state; both go out at the end
// of the batch (flushJournal), the record first.
func (e *Engine) save(_ context.Context, fs *fileState) {
	fs.rec.UpdatedAt = time.Now()
	if e.unsaved == nil {
		e.unsaved = map[*fileState]struct{}{}
	}
	e.unsaved[fs] = struct{}{}
	st := State(fs.rec.State)
	if typ := fileEventType(fs.emitted, st); typ != "" {
		e.queue(e.fileEvent(typ, fs), fs)
	}
	fs.emitted = st
}

func (e *Engine) emit(ev Event) { e.queue(ev, nil) }

func (e *Engine) fileEvent(typ string, fs *fileState) Event {
	ev := Event{Type: typ, File: &EventFile{ID: fs.rec.ID, Name: fs.name, Size: fs.rec.Size, SHA256: fs.rec.SHA256,
		RemotePath: fs.rec.RemotePath}}
	if f, ok := fs.frameOf(); ok && fs.req != "" {
		// A frame of a request: receivers get its sequence's milestones (sequenceMilestones,
		// per request). A File Bin frame no request took keeps its own events.
		ev.File.Sequence = f.Key
	}
	if r := e.reqs[fs.req]; r != nil {
		ev.Request = &EventRequest{ID: r.ID, State: string(r.state), Status: r.Status}
		ev.File.Metadata = fileMetadata(r, fs)
	}
	if typ == EventFileDelivered {
		ev.File.Verified = fs.verified
		withMedia(&ev, fs)
	}
	if fs.rec.Reason != "" {
		ev.Reason = &EventReason{Code: fs.rec.Reason, Message: fs.rec.Message}
	} else if fs.note != nil {
		ev.Reason, fs.note = fs.note, nil
	}
	return ev
}

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

func (e *Engine) send(ctx context.Context, m msg) {
	select {
	case e.msgs <- m:
	case <-ctx.Done():
	}
}

func (e *Engine) result(ctx context.Context, m msg) {
	switch m.kind {
	case msgCall:
		m.call()
		return
	case msgBack:
		e.noteBack()
		if fs := e.files[m.path]; fs != nil && fs.retrying { // logged in again: no longer retrying
			fs.retrying = false
			if r := e.reqs[fs.req]; r != nil {
				e.report(r)
			}
		}
		return
	case msgTrouble:
		e.noteTrouble(m.err)
		return
	}
	fs := e.files[m.path]
	if fs == nil {
		if m.reply != nil {
			m.reply <- fmt.Errorf("file %s: no longer known", m.path)
		}
		if m.kind == msgDone {
			e.active--
			e.dispatch(ctx)
		}
		return
	}
	switch m.kind {
	case msgProgress:
		fs.done = m.done
		now := time.Now()
		if fs.progressAt0.IsZero() {
			fs.progressAt0 = now
		}
		if now.Sub(fs.progressAt) >= time.Second || m.done == fs.rec.Size {
			fs.progressAt = now
			p := &Progress{Bytes: m.done, Total: fs.rec.Size}
			if el := now.Sub(fs.progressAt0).Seconds(); el > 0 {
				p.Rate = float64(m.done) / el
				if p.Rate > 0 {
					p.ETA = float64(fs.rec.Size-m.done) / p.Rate
				}
			}
			ev := e.fileEvent(EventFileProgress, fs)
			ev.Progress = p
			e.emit(ev)
		}
		return
	case msgReconciled:
		if fs.rec.State == string(Uploading) || fs.rec.State == string(Delivered) || !fs.rec.RenameIntent {
			return // an upload worker got there first and checks the server itself
		}
		fs.rec.RenameIntent = false
		if m.exists && m.err != nil {
			te := classify(m.err)
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Failed), te.Code, te.Msg
			e.log.Error("upload failed", "file", fs.rec.Path, "reason", te.Code, "message", te.Msg)
		} else if m.exists {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Delivered), "", ""
			fs.rec.DeliveredAt = time.Now()
			if m.res.SHA256 != "" {
				fs.rec.SHA256 = m.res.SHA256
			}
			fs.verified = m.res.Verified
			e.log.Info("delivered (the rename had happened before hotdrop stopped)", "file", fs.rec.Path, "remote", fs.rec.RemotePath,
				"sha256", fs.rec.SHA256, "verified", fs.verified, "checksum_file", m.res.ChecksumFile)
		} else if _, err := e.lstat(fs.rec.Path); err != nil && fs.rec.DeliveredAt.IsZero() {
			// Not delivered, and the source is gone: nothing is left to send or to show.
			e.dropFile(fs)
			if err := e.st.DeleteFile(ctx, fs.rec.Path); err != nil {
				e.log.Error("journal", "err", err)
			}
			e.refreshOwner(ctx, fs)
			return
		}
		e.save(ctx, fs)
		e.refreshOwner(ctx, fs)
		return
	case msgIntent:
		fs.rec.RenameIntent = true
		e.intents = append(e.intents, pendingIntent{fs: fs, reply: m.reply}) // written at the end of the batch
		return
	case msgRetrying:
		fs.retrying, fs.attempt, fs.nextTry = true, m.attempt, m.next
		fs.retryWhy = classify(m.err).Msg
		e.noteTrouble(m.err)
		if r := e.reqs[fs.req]; r != nil {
			e.report(r)
		}
		return
	}
	e.active--
	defer e.dispatch(ctx)
	fs.abandon = nil
	// Stopped by a shutdown: resumed on the next start. Stopped because its source is gone:
	// forgotten below, resume point and all.
	cancelled := errors.Is(m.err, errCancelled) && !m.abandoned && !fs.gone
	if m.exists && !cancelled {
		// Delivered, failed or changed: the partial is gone and so is its resume point.
		if err := e.st.DeleteCheckpoint(ctx, fs.rec.Path); err != nil {
			e.log.Warn("journal", "err", err)
		}
	}
	fs.retrying = false
	fs.progressAt0, fs.progressAt = time.Time{}, time.Time{}
	if m.err == nil {
		e.noteBack()
	}
	var te *TransferError
	switch {
	case m.err == nil:
		fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Delivered), "", ""
		fs.rec.SHA256 = m.res.SHA256
		fs.verified = m.res.Verified
		if m.res.Remote != "" {
			fs.rec.RemotePath = m.res.Remote
		}
		fs.rec.RenameIntent = false
		fs.rec.DeliveredAt = time.Now()
		fs.changes = 0
		e.log.Info("delivered", "file", fs.rec.Path, "request", fs.req, "remote", fs.rec.RemotePath, "sha256", fs.rec.SHA256,
			"resumed_from", m.res.Resumed, "verified", m.res.Verified)
		e.afters = append(e.afters, fs) // once its delivered record is journaled (flushJournal)
	case cancelled:
		return // journal keeps it uploading; the next start re-derives it
	case m.abandoned || fs.gone && m.err != nil:
		e.afterAbandon(ctx, fs) // its source was removed: forgotten below, or judged anew if it is back
	case errors.As(m.err, &te) && te.Code == ReasonChangedDuringUpload:
		fs.changes++
		fs.rec.RenameIntent = false
		if fs.changes >= 3 {
			e.hold(fs, ReasonKeepsChanging, fmt.Sprintf("%s changed during upload %d times in a row; hotdrop will try again when it stops changing", fs.name, fs.changes))
		} else {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Settling), ReasonChangedDuringUpload,
				"the file changed while it was being sent; the partial upload was discarded and it is settling again"
			if fs.latestReady && !sameIdentity(fs.rec, fs.latest) {
				e.setIdentity(fs, fs.latest)
				fs.rec.State = string(Ready)
			}
		}
		e.log.Warn("file changed during upload; partial discarded", "file", fs.rec.Path)
	case errors.As(m.err, &te) && holdCodes[te.Code]:
		fs.rec.RenameIntent = false // no rename followed: the intent must not vouch for a delivery
		e.hold(fs, te.Code, te.Msg)
		e.log.Warn("file held", "file", fs.rec.Path, "reason", te.Code, "message", te.Msg)
	default:
		fs.rec.RenameIntent = false
		te = classify(m.err)
		fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Failed), te.Code, te.Msg
		e.log.Error("upload failed", "file", fs.rec.Path, "reason", te.Code, "message", te.Msg)
	}
	if fs.gone && fs.rec.State != string(Delivered) {
		// Removed while it was being sent: nothing is left to send or to show.
		e.dropFile(fs)
		if err := e.st.DeleteFile(ctx, fs.rec.Path); err != nil {
			e.log.Error("journal", "err", err)
		}
		e.refreshOwner(ctx, fs)
		return
	}
	if fs.latestReady && !sameIdentity(fs.rec, fs.latest) && fs.rec.State != string(Settling) && fs.rec.State != string(Ready) {
		// A newer version settled while the upload ran (its Ready came and was set aside):
		// judge it now, or it would wait for a watcher event that never comes.
		e.setIdentity(fs, fs.latest)
		fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Ready), "", ""
		fs.changes = 0
		var r *reqState
		if !fs.inBin {
			r = e.reqs[fs.req]
		}
		e.classify(ctx, fs, r)
	}
	e.save(ctx, fs)
	e.refreshOwner(ctx, fs)
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
