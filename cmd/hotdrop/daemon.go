package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotdrop/hotdrop/checks"
	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/statelock"
	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/report"
	"github.com/hotdrop/hotdrop/store"
	"github.com/hotdrop/hotdrop/uploader"
	"github.com/hotdrop/hotdrop/watcher"
)

// daemonHooks let tests and the demo look inside a running daemon without another code path.
type daemonHooks struct {
	// wrapUploader, when set, wraps the real uploader (to count uploads, say).
	wrapUploader func(delivery.Uploader) delivery.Uploader
	// reporters hear every request change besides the status files.
	reporters []delivery.Reporter
	// started is closed once the drop folders exist and the watcher is running.
	started chan<- struct{}
	// reload asks for the config and requests to be read again (SIGHUP).
	reload <-chan struct{}
	// reloaded, when set, hears the outcome of every reload (nil = applied).
	reloaded func(error)
	// stateLocked says the caller already holds state_dir's lock (the demo takes it before it
	// writes anything into its folder); otherwise runDaemon takes it.
	stateLocked bool
	// engineOptions, when set, adjusts the engine's options (tests: retry timing).
	engineOptions func(*delivery.Options)
	// events, when set, hears every engine event besides reporting; it must not block.
	events func(delivery.Event)
	// engine, when set, is given the engine before it runs.
	engine func(*delivery.Engine)
}

// eventTap lets a test hear the engine's events as they are emitted.
type eventTap struct {
	next delivery.EventSink
	fn   func(delivery.Event)
}

func (t eventTap) Emit(ev delivery.Event) {
	if t.next != nil {
		t.next.Emit(ev)
	}
	t.fn(ev)
}

// EmitBatch keeps the sink's batching (one transaction per batch): a tap must not change
// what it listens to, or a benchmark measures the tap.
func (t eventTap) EmitBatch(evs []delivery.Event) {
	if b, ok := t.next.(delivery.BatchSink); ok {
		b.EmitBatch(evs)
	} else if t.next != nil {
		for _, ev := range evs {
			t.next.Emit(ev)
		}
	}
	for _, ev := range evs {
		t.fn(ev)
	}
}

// JournalBatch keeps the sink's journaling in the engine's transaction, for the same reason.
func (t eventTap) JournalBatch(tx delivery.JournalTx, evs []delivery.Event) (func(), error) {
	ts, ok := t.next.(delivery.TxSink)
	if !ok {
		return func() { t.EmitBatch(evs) }, nil
	}
	announce, err := ts.JournalBatch(tx, evs)
	if err != nil {
		return nil, err
	}
	return func() {
		announce()
		for _, ev := range evs {
			t.fn(ev)
		}
	}, nil
}

type trackerApply struct {
	reqs  []delivery.Request
	reply chan error
}

// applyFromTracker hands a tracker's list to the daemon's goroutine and waits for the result.
func (d *daemon) applyFromTracker(ctx context.Context, reqs []delivery.Request) error {
	a := trackerApply{reqs: reqs, reply: make(chan error, 1)}
	select {
	case d.applyCh <- a:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-a.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// shutdownGrace bounds how long a stop waits for uploads to reach a resumable point.
const shutdownGrace = 10 * time.Second

// daemon is one running hotdrop: the pieces `hotdrop run` wires together, kept so a reload
// can swap the ones whose settings changed while uploads in flight finish undisturbed.
type daemon struct {
	log     *slog.Logger
	hooks   daemonHooks
	cfg     *config.Config
	st      *store.Store
	eng     *delivery.Engine
	up      *uploader.Uploader
	retired []*uploader.Uploader // replaced by a reload; closed at exit, after their uploads
	rp      *reporting           // reporting
	m       *matcher.Matcher
	applyCh chan trackerApply               // the tracker's new lists, applied in the daemon's goroutine
	w       atomic.Pointer[watcher.Watcher] // the running watcher, for Touch from the engine
	events  chan watcher.Event
	watch   context.CancelFunc
	werr    chan error
	// checker looks inside files; kept across reloads that leave [checks] alone.
	checker    *checks.Checker
	checkerKey []any

	// statusFiles writes each request's status file; nil when [status] status_files is off.
	statusFiles *report.StatusWriter
}

// runDaemon is `hotdrop run`: it wires config, journal, uploader, engine and watcher together
// and runs them until ctx is cancelled, reloading on hooks.reload and when a requests file
// changes.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger, hooks daemonHooks) error {
	creqs, err := startupRequests(cfg, log)
	if err != nil {
		return err
	}
	if !hooks.stateLocked {
		// Before the journal is opened: two daemons on one journal corrupt deliveries.
		lock, err := statelock.Acquire(cfg.StateDir, "hotdrop run --config "+cfg.File)
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	d := &daemon{log: log, hooks: hooks, cfg: cfg, events: make(chan watcher.Event, 256), applyCh: make(chan trackerApply)}
	defer d.closeParts() // after the engine has stopped: defers run in reverse
	if err := d.openParts(); err != nil {
		return err
	}
	if err := d.newEngine(ctx, creqs); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	engDone, err := d.start(ctx)
	if err != nil {
		return err
	}
	log.Info("hotdrop is watching", "root", cfg.Watch.Root, "requests", len(creqs), "destination", redactURL(cfg.Destination.URL), "settle", cfg.Watch.Settle)
	if hooks.started != nil {
		close(hooks.started)
	}
	return d.serve(ctx, engDone)
}

// startupRequests reads the requests files the daemon starts with.
func startupRequests(cfg *config.Config, log *slog.Logger) ([]config.Request, error) {
	creqs, err := config.LoadRequests(cfg)
	if err != nil {
		return nil, err
	}
	// What the service cannot read or write is a config error (exit 78), refused before
	// anything starts: a restart would only meet it again.
	if err := configProblems(cfg, creqs, config.CurrentAccount()); err != nil {
		return nil, err
	}
	if len(creqs) == 0 {
		log.Warn("no requests found: no drop folder will be created", "requests.files", strings.Join(cfg.Requests.Files, ", "))
	}
	return creqs, nil
}

// openParts opens what the engine runs on: the journal, reporting, the uploader and the
// status files' writer. closeParts closes whichever of them opened, in reverse order.
func (d *daemon) openParts() (err error) {
	if d.st, err = store.Open(filepath.Join(d.cfg.StateDir, "state.db")); err != nil {
		return err
	}
	if d.rp, err = newReporting(d.cfg, d.st, d.log); err != nil { // reporting
		return err // reporting
	} // reporting
	if d.up, err = newUploader(d.cfg, d.log); err != nil {
		return err
	}
	if d.cfg.Status.StatusFiles {
		// Written off the engine's loop; its Close (in closeParts, after the engine has
		// stopped) writes the last views.
		d.statusFiles = report.NewStatusWriter(&report.StatusFiles{Logger: d.log, Root: d.cfg.Watch.Root})
	}
	return nil
}

func (d *daemon) closeParts() {
	if d.statusFiles != nil {
		d.statusFiles.Close()
	}
	if d.up != nil {
		d.up.Close()
		for _, u := range d.retired {
			u.Close()
		}
	}
	if d.rp != nil {
		d.rp.close() // reporting
	}
	if d.st != nil {
		d.st.Close()
	}
}

// newEngine builds the engine on the opened parts and sets the requests it starts with.
func (d *daemon) newEngine(ctx context.Context, creqs []config.Request) error {
	rep := multiReporter(d.hooks.reporters)
	rep = append(rep, d.rp.reporter()) // reporting
	if d.statusFiles != nil {
		rep = append(multiReporter{d.statusFiles}, rep...)
	}
	reqs, m, err := d.requestsAndMatcher(d.cfg, creqs)
	if err != nil {
		return err
	}
	d.m = m
	d.eng = delivery.New(d.options(d.cfg, d.m), d.wrap(d.up, d.cfg), storeAdapter{d.st}, rep) // reporting
	if err := d.eng.SetRequests(ctx, reqs); err != nil {
		// A request whose drop folder cannot be made (a 300-byte title) is flagged in its
		// view; the others run. Ending here would stop every delivery for one bad request.
		d.log.Error("some requests could not be set up; the others run", "err", err)
	}
	if d.hooks.engine != nil {
		d.hooks.engine(d.eng)
	}
	return nil
}

// start runs the watcher, reporting and the engine; the engine's outcome arrives on the
// returned channel.
func (d *daemon) start(ctx context.Context) (<-chan error, error) {
	if err := d.startWatcher(ctx); err != nil {
		return nil, err
	}
	if err := d.rp.start(ctx, d.eng, d.applyFromTracker); err != nil { // reporting
		return nil, err // reporting
	} // reporting
	engDone := make(chan error, 1)
	go func() { engDone <- d.eng.Run(ctx, d.events) }()
	return engDone, nil
}

// serve runs the daemon until the engine stops or ctx ends: it applies a tracker's new lists
// and reloads on hooks.reload and when a requests file changes.
func (d *daemon) serve(ctx context.Context, engDone <-chan error) error {
	// Requests files are polled for changes: cheap, and it works on every platform and on
	// network mounts alike.
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	seen := requestFilesStamp(d.cfg)
	root := stampRoot(d.cfg.Watch.Root)
	for {
		select {
		case err := <-engDone:
			d.stopWatcher()
			return err
		case <-ctx.Done():
			return d.shutdown(engDone)
		case a := <-d.applyCh:
			a.reply <- d.applyTracker(ctx, a.reqs)
		case <-d.hooks.reload:
			d.reload(ctx)
			seen, root = requestFilesStamp(d.cfg), stampRoot(d.cfg.Watch.Root)
		case <-tick.C:
			if now := requestFilesStamp(d.cfg); now != seen {
				seen = now
				d.log.Info("a requests file changed; reloading")
				d.reload(ctx)
			}
			d.checkRoot(ctx, &root)
		}
	}
}

// shutdown waits for the uploads in flight to stop (cancellation reached them with ctx),
// at most shutdownGrace: a service manager kills what takes longer.
func (d *daemon) shutdown(engDone <-chan error) error {
	d.log.Info("stopping: no new uploads; waiting for those in flight to stop")
	defer d.stopWatcher()
	select {
	case err := <-engDone:
		return err
	case <-time.After(shutdownGrace):
		d.log.Warn("uploads did not stop within the grace period; exiting anyway (they resume or restart on the next start)", "grace", shutdownGrace)
		return nil
	}
}

func (d *daemon) wrap(u *uploader.Uploader, cfg *config.Config) delivery.Uploader {
	var du delivery.Uploader = uploaderAdapter{u: u, next: newNextSteps(cfg)}
	if d.hooks.wrapUploader != nil {
		du = d.hooks.wrapUploader(du)
	}
	return du
}

func (d *daemon) startWatcher(ctx context.Context) error {
	// Files delivered and unchanged since are not reported again: a restart with 100,000
	// delivered frames stats each once and sends the engine nothing (issue 11). The engine
	// would find each of them delivered in the same identity anyway.
	delivered, err := d.st.Delivered(ctx)
	if err != nil {
		d.log.Warn("journal: cannot list delivered files; the watcher reports every file again", "err", err)
	}
	root := d.cfg.Watch.Root
	w, err := watcher.New(watcher.Options{
		Root: root, Settle: d.cfg.Watch.Settle, Rescan: d.cfg.Watch.Rescan, Poll: d.cfg.Watch.Poll,
		Mode: d.cfg.Watch.Mode, Ignore: d.cfg.Watch.Ignore, Logger: d.log,
		Skip: func(rel string) bool { return rel == "_delivered" || strings.HasPrefix(rel, "_delivered/") },
		Settled: func(rel string, info watcher.FileInfo) bool {
			id, ok := delivered[filepath.Join(root, filepath.FromSlash(rel))]
			// A journaled inode of 0 is unknown (journals of a version whose watcher read none).
			return ok && id.Size == info.Size && id.ModTime.Equal(info.ModTime) && (id.Inode == info.Inode || id.Inode == 0)
		},
	})
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	d.watch, d.werr = cancel, make(chan error, 1)
	d.w.Store(w)
	go func() { d.werr <- w.Run(wctx, d.events) }()
	return nil
}

func (d *daemon) stopWatcher() {
	if d.watch == nil {
		return
	}
	d.watch()
	if err := <-d.werr; err != nil && !errors.Is(err, context.Canceled) {
		d.log.Error("watcher stopped with an error", "err", err)
	}
	d.watch = nil
}

// reload reads the config and the requests again. A config with errors is refused and the
// running one stays; otherwise only the parts whose settings changed are replaced.
func (d *daemon) reload(ctx context.Context) {
	err := d.reloadErr(ctx)
	if err != nil {
		d.log.Error("reload refused; the running configuration stays in force:\n" + err.Error())
	} else {
		d.log.Info("configuration reloaded", "config", d.cfg.File)
	}
	d.rp.hub.SetProblem(err) // the dashboard and hotdrop status show it until a reload succeeds
	if d.hooks.reloaded != nil {
		d.hooks.reloaded(err)
	}
}

func (d *daemon) reloadErr(ctx context.Context) error {
	cfg, err := config.Load(d.cfg.File)
	if err != nil {
		return err
	}
	creqs, err := config.LoadRequests(cfg)
	if err != nil {
		return err
	}
	if err := configProblems(cfg, creqs, config.CurrentAccount()); err != nil {
		return err
	}
	if cfg.StateDir != d.cfg.StateDir {
		d.log.Warn("state_dir changed: that takes a restart; the journal stays where it is", "state_dir", d.cfg.StateDir)
		cfg.StateDir = d.cfg.StateDir
	}
	var newUp *uploader.Uploader
	if onlyBandwidthChanged(cfg.Destination, d.cfg.Destination) {
		o := uploaderOptions(cfg.Destination, d.log)
		d.up.SetBandwidth(o.Bandwidth, o.Schedule)
	} else if !reflect.DeepEqual(cfg.Destination, d.cfg.Destination) {
		if newUp, err = newUploader(cfg, d.log); err != nil {
			return err
		}
		newUp.Remember(d.up) // what the server showed it cannot do, when it is the same server
	}
	var du delivery.Uploader
	if newUp != nil {
		du = d.wrap(newUp, cfg)
	}
	reqs, m, err := d.requestsAndMatcher(cfg, creqs)
	if err != nil {
		if newUp != nil {
			newUp.Close()
		}
		return err
	}
	// The engine applies the new settings even when some requests cannot be set up (a drop
	// folder that cannot be made): from here on, they are the running configuration.
	applyErr := d.eng.Reload(ctx, d.options(cfg, m), du, reqs) // reporting
	if applyErr != nil && ctx.Err() != nil {
		if newUp != nil {
			newUp.Close()
		}
		return applyErr
	}
	if applyErr != nil {
		d.log.Error("reload applied, but some requests could not be set up", "err", applyErr)
	}
	d.m = m
	if newUp != nil {
		d.retired = append(d.retired, d.up)
		d.up = newUp
	}
	if !reflect.DeepEqual(cfg.Watch, d.cfg.Watch) {
		d.stopWatcher()
		d.cfg = cfg
		return d.startWatcher(ctx)
	}
	d.cfg = cfg
	return nil
}

func newUploader(cfg *config.Config, log *slog.Logger) (*uploader.Uploader, error) {
	return uploader.New(uploaderOptions(cfg.Destination, log))
}

// onlyBandwidthChanged reports whether two destinations differ in nothing but their
// bandwidth and schedule: then the running uploader takes the new limits, uploads in flight
// included, instead of being replaced.
func onlyBandwidthChanged(a, b config.Destination) bool {
	a.Bandwidth, a.Schedule = b.Bandwidth, b.Schedule
	return reflect.DeepEqual(a, b)
}

// options are the engine's options for cfg and m, with reporting's event sink.
func (d *daemon) options(cfg *config.Config, m *matcher.Matcher) delivery.Options {
	o := d.rp.withEvents(d.engineOptions(cfg, m)) // reporting
	if d.hooks.engineOptions != nil {
		d.hooks.engineOptions(&o)
	}
	if d.hooks.events != nil {
		o.Events = eventTap{next: o.Events, fn: d.hooks.events}
	}
	return o
}

func (d *daemon) engineOptions(cfg *config.Config, m *matcher.Matcher) delivery.Options {
	o := engineOptions(cfg, d.log)
	o.Matcher = m
	o.Inspector = inspector{d.checkerFor(cfg)}
	o.Touch = func(p string) {
		if w := d.w.Load(); w != nil {
			w.Touch(p)
		}
	}
	return o
}

// requestsAndMatcher gives the requests the engine runs with (the requests files', or the
// tracker's last known list) and the matcher built from the same list.
func (d *daemon) requestsAndMatcher(cfg *config.Config, creqs []config.Request) ([]delivery.Request, *matcher.Matcher, error) {
	reqs := d.rp.requests(creqs) // reporting: the tracker's list with source = "http"
	if cfg.Requests.Source == "http" {
		creqs = fromDeliveryRequests(reqs)
	}
	m, err := newMatcher(cfg, creqs)
	if err != nil {
		return nil, nil, err
	}
	return d.deliveryRequests(reqs, m), m, nil
}

// applyTracker installs a tracker's new list of requests, from the daemon's goroutine (so it
// never races a reload): a new matcher, then the engine.
func (d *daemon) applyTracker(ctx context.Context, reqs []delivery.Request) error {
	m, err := newMatcher(d.cfg, fromDeliveryRequests(reqs))
	if err != nil {
		return err
	}
	err = d.eng.Reload(ctx, d.options(d.cfg, m), nil, d.deliveryRequests(reqs, m))
	d.m = m // applied even when some requests could not be set up
	return err
}

// fromDeliveryRequests turns a tracker's requests into the config's shape for the matcher. A
// tracker reply does not say whether files was set; 1 is taken as the default.
func fromDeliveryRequests(reqs []delivery.Request) []config.Request {
	out := make([]config.Request, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, config.Request{ID: r.ID, Status: r.Status, Files: r.Files, FilesSet: r.Files != 1, Fields: r.Fields})
	}
	return out
}

// deliveryRequests gives each request the number of files that completes it: its own files
// when it set them, else its source type profile's default (multi-file: the ready marker).
func (d *daemon) deliveryRequests(reqs []delivery.Request, m *matcher.Matcher) []delivery.Request {
	for i := range reqs {
		if n, _, ok := m.Files(reqs[i].ID); ok {
			reqs[i].Files = n
		}
	}
	return reqs
}

func engineOptions(cfg *config.Config, log *slog.Logger) delivery.Options {
	return delivery.Options{
		Root: cfg.Watch.Root, Bin: cfg.Watch.Bin, FolderTemplate: cfg.Watch.Folder,
		FolderMode: cfg.Watch.FolderMode, Group: cfg.Watch.Group, ReadyMarker: cfg.Watch.ReadyMarker,
		Concurrency: cfg.Destination.Concurrency, AutoDeliver: cfg.Destination.AutoDeliver,
		Names: cfg.Destination.Names, After: cfg.Destination.After, Manifest: cfg.Destination.Manifest,
		TempDir: filepath.Join(cfg.StateDir, "tmp"), AlertAfter: cfg.Destination.AlertAfter,
		RemotePath: func(r delivery.Request, name string) (string, error) {
			return uploader.RemotePath(cfg.Destination.Path, r.Fields, name)
		},
		Logger: log,
	}
}

// requestFilesStamp summarises the requests files (names, sizes, mtimes), to notice a change.
func requestFilesStamp(cfg *config.Config) string {
	var b strings.Builder
	for _, g := range cfg.Requests.Files {
		matches, _ := filepath.Glob(g)
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && !fi.IsDir() {
				fmt.Fprintf(&b, "%s|%d|%d\n", m, fi.Size(), fi.ModTime().UnixNano())
			}
		}
	}
	return b.String()
}

func toDeliveryRequests(in []config.Request) []delivery.Request {
	out := make([]delivery.Request, 0, len(in))
	for _, r := range in {
		out = append(out, delivery.Request{ID: r.ID, Status: r.Status, Files: r.Files, Fields: r.Fields})
	}
	return out
}

// redactURL drops anything secret-looking (a password in user info) before a URL is logged.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return s[:i+3] + rest[:c] + ":***" + rest[at:]
			}
		}
	}
	return s
}

type multiReporter []delivery.Reporter

func (m multiReporter) RequestChanged(v delivery.RequestView) {
	for _, r := range m {
		r.RequestChanged(v)
	}
}
