package delivery

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/internal/safefs"
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
	// Matcher judges files against naming rules, sidecars and profiles (nil: only drop
	// folders are used, and the File Bin holds its files).
	Matcher Matcher
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
	// JournalPace is the least time between two of the journal's commits while the loop
	// keeps it busy (0: journalPace, 10 ms).
	JournalPace time.Duration
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

	// published is what readers outside the loop see (views.go); nothing else is shared.
	published   atomic.Pointer[views]
	reqsChanged bool // requests came or went since the last publish
	// Buffers the loop reuses: views and refreshes of big requests are built every second,
	// and allocating them each time was most of the daemon's garbage at 50,000 frames.
	wasBuf   []fileWas
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
	deletes []string        // records to forget, in order with the saves (deleteRecord)
	dropped []*fileState    // files no longer the Engine's (forget)
	jw      *journalWriter  // writes the batches off the loop (journal_writer.go)
	// checkpointed are the files with a resume point when Run started (nil: unknown, ask the
	// store for each file); see noCheckpoint.
	checkpointed map[string]bool
	// unsavedReqs are requests whose state changed since the journal was last written.
	unsavedReqs    map[string]*reqState
	binSeqs        map[string]map[string]int // File Bin sequence key → request id → frames (index.go)
	outside        map[string]bool           // paths already logged as being outside every drop folder
	evBuf          []watcher.Event           // batch's, reused
	prejudged      map[string]prejudged      // verdicts made ahead of their events, by path (prejudge.go)
	remake         map[string]time.Time      // request id ("" the File Bin) → when to make its removed folder again (intake.go)
	notCheckedSaid time.Time                 // when checkJournal last said the journal could not be checked (health.go)

	msgs    chan msg
	pending []*fileState // complete, waiting for an upload slot
	// resumable are pending files with a journaled checkpoint (a partial on the server):
	// started before the others, so repeated kills do not pile up partials.
	resumable []*fileState
	active    int
	// sending is the file whose upload goes to each remote path now, and parked the files
	// that wait for it to end (inflight.go): two files that map to one remote path would
	// write the same partial, and the one published could hold the other's bytes.
	sending map[string]string // remote path → the local path of the file sent there
	parked  map[string][]*fileState
	wg      sync.WaitGroup

	runCtx        context.Context         // Run's; the uploads it starts stop with it
	manifests     map[string]*manifestRun // the manifest uploads still running, by request (finish.go)
	lastManifest  map[string]*manifestRun // the last manifest started, by request, running or not
	dirty         map[string]bool         // requests whose views changed since the last flush
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
	remote  string // msgDone: the remote path the upload held (releaseRemote)
	res     Result
	err     error
	attempt int
	next    time.Time
	done    int64
	reply   chan error
	exists  bool
	at      time.Time // msgRetrying, msgTrouble: when the failure was seen
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
		jw:   newJournalWriter(st, opt.Events, opt.Logger, opt.JournalPace),
	}
}

func withDefaults(opt Options) Options {
	if opt.Concurrency <= 0 {
		opt.Concurrency = config.DefaultConcurrency
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = time.Second
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = 5 * time.Minute
	}
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.ReadyMarker == "" {
		opt.ReadyMarker = config.DefaultReadyMarker
	}
	if opt.JournalCheckEvery <= 0 {
		opt.JournalCheckEvery = defaultJournalCheckEvery
	}
	if opt.JournalPace <= 0 {
		opt.JournalPace = journalPace
	}
	return opt
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
		e.syncJournal()      // and the journal holds it
		e.flushReports(true) // readers (Requests) see what fn did once do returns
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

func (e *Engine) send(ctx context.Context, m msg) {
	select {
	case e.msgs <- m:
	case <-ctx.Done():
	}
}

// Run processes watcher events until ctx is cancelled or events is closed, then waits for
// the uploads in flight to stop. Files caught mid-upload keep their journal records and are
// picked up again on the next start.
func (e *Engine) Run(ctx context.Context, events <-chan watcher.Event) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	e.runCtx = ctx
	e.jw.start()
	defer e.jw.stop() // last, once the uploads have stopped: the final batch was handed over below
	pending, err := e.restore(ctx)
	if err != nil {
		return err
	}
	defer func() {
		// The uploads stop at a resumable point before they are waited for, however Run
		// ends: after events closed, one reaching its rename would wait for an intent no
		// loop writes any more.
		stop()
		e.wg.Wait()
	}()
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
		// Written before the uploads are waited for: one may wait for its rename intent.
		e.syncJournal()
		e.flushReports(true)
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
			e.batch(ctx, events, ev)
		case m := <-e.msgs:
			e.result(ctx, m)
			e.batch(ctx, events)
		case <-e.jw.ready:
			// A batch is written: take its ids and the sources whose destination.after
			// waited, and hand over what changed meanwhile.
			e.takeJournaled()
			e.batch(ctx, events)
		case <-flush.C:
			e.remakeFolders()
			e.settle(ctx, false) // big requests keep their own pace (refreshStale)
			e.flushReports(false)
		}
	}
}

// restore restores the journal and establishes every request's state quietly, before the
// first event is handled. It returns the renames whose outcome a crash left unknown, for
// reconcile to ask the server about.
func (e *Engine) restore(ctx context.Context) ([]pendingRename, error) {
	if err := e.load(ctx); err != nil {
		return nil, err
	}
	if cl, ok := e.st.(CheckpointLister); ok {
		if paths, err := cl.CheckpointPaths(ctx); err == nil {
			e.checkpointed = paths
		} else {
			e.log.Warn("journal: cannot list upload checkpoints; each file's is read when it is queued", "err", err)
		}
	}
	var pending []pendingRename
	for _, fs := range e.files {
		if fs.rec.RenameIntent && fs.rec.State != Delivered {
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
	e.flushReports(true)
	return pending, nil
}

// maxBatch bounds how many events and messages are handled before the requests they touched
// are re-derived, so a flood of events cannot hold back the uploads it makes ready.
const maxBatch = 512

// batch handles what else is already waiting, up to maxBatch, then re-derives the requests
// all of it touched: one refresh per request per batch, not one per event. The events
// are gathered until a message comes between them, so that their ready files are judged side
// by side (handleAll); first, if given, is handled first.
func (e *Engine) batch(ctx context.Context, events <-chan watcher.Event, first ...watcher.Event) {
	evs := e.evBuf[:0]
	evs = append(evs, first...)
	defer func() { e.evBuf = evs[:0] }()
	for range maxBatch {
		select {
		case ev, ok := <-events:
			if !ok {
				e.handleAll(ctx, evs)
				e.settle(ctx, false)
				return
			}
			evs = append(evs, ev)
			continue
		case m := <-e.msgs:
			e.handleAll(ctx, evs)
			evs = evs[:0]
			e.result(ctx, m)
			continue
		default:
		}
		break
	}
	e.handleAll(ctx, evs)
	e.settle(ctx, false)
}
