package watcher

import (
	"context"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hotdrop/hotdrop/internal/safefs"
)

// errNotRegular says a path that was a regular file is something else now.
var errNotRegular = errors.New("not a regular file")

// run is the state of one Run call. Everything in it belongs to the Run
// goroutine except q, which the drain goroutine fills.
type run struct {
	w   *Watcher
	ctx context.Context
	out chan<- Event

	set *settler
	// settled is Options.Settled during the first full scan, nil after it.
	settled func(string, FileInfo) bool
	dirs    map[string]*dirState // by rel; "." is the root
	q       *queue
	n       notifier // nil in poll mode or while no event source can be made
	drains  sync.WaitGroup
	stop    context.CancelFunc // stops the current drain goroutine

	rootMissing bool
	limited     bool      // the watch limit was hit; no Add until the next re-arm
	rearmAt     time.Time // zero: nothing to re-arm
	rearmDelay  time.Duration
	warnedList  map[string]bool    // folders already reported unreadable
	warnedWatch map[string]bool    // folders already reported unwatchable
	denied      map[string]*denial // folders hotdrop may not enter, by rel (denied.go)

	root *safefs.Root // the watch root, held open; nil while it is missing
}

type childKind uint8

const (
	childFile childKind = iota + 1
	childDir
	childUnsafe
)

// dirState is what the watcher knows about one folder.
type dirState struct {
	children map[string]childKind // by base name
	dev      uint64
	hasDev   bool
	fsType   string
	network  bool // on NFS, SMB, FUSE…: size and mtime are read through an open descriptor
	poll     bool // listed on every poll tick
	watched  bool // holds an fsnotify watch
	fallback bool // wants events but its watch failed; polled until re-armed
}

func newRun(ctx context.Context, w *Watcher, out chan<- Event) *run {
	return &run{
		w:           w,
		ctx:         ctx,
		out:         out,
		set:         newSettler(w.settle),
		dirs:        make(map[string]*dirState),
		q:           newQueue(),
		rearmDelay:  w.rearmMin,
		warnedList:  make(map[string]bool),
		warnedWatch: make(map[string]bool),
		denied:      make(map[string]*denial),
	}
}

func (r *run) now() time.Time { return r.w.clock.Now() }

func (r *run) abs(rel string) string {
	if rel == "." {
		return r.w.root
	}
	return filepath.Join(r.w.root, filepath.FromSlash(rel))
}

// relOf maps a path fsnotify reported back to rel; false when outside root.
func (r *run) relOf(name string) (string, bool) {
	rel, err := filepath.Rel(r.w.root, name)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// emit sends ev unless ctx ends first; callers check r.ctx.Err() in loops.
func (r *run) emit(ev Event) {
	ev.Path = r.abs(ev.Rel)
	select {
	case r.out <- ev:
	case <-r.ctx.Done():
	}
}

func (r *run) loop() error {
	if r.w.mode == ModeEvents || (r.w.mode == ModeAuto && !autoPollsAll) {
		r.startNotifier()
	}
	r.settled = r.w.settled
	r.fullScan()
	// Settled speaks of what was there at the start; a file that appears later (moved back,
	// restored) is new and settles like any other. Dropped, so what it holds (the journal's
	// delivered files) is freed.
	r.settled, r.w.settled = nil, nil
	settleT := r.w.clock.NewTicker(r.w.checkEvery)
	defer settleT.Stop()
	pollT := r.w.clock.NewTicker(r.w.poll)
	defer pollT.Stop()
	rescanT := r.w.clock.NewTicker(r.w.rescan)
	defer rescanT.Stop()
	var wake <-chan time.Time // the settle check at the next file's due time (settleWake)
	for {
		var ticked string
		select {
		case <-r.ctx.Done():
			return nil
		case <-r.q.ready:
			r.handleQueue()
		case <-r.w.rescanReq:
			r.fullScan()
		case <-r.w.touchReq:
			now := r.now()
			for _, rel := range r.w.takeTouched() {
				if info, wasReady := r.set.restart(rel, now); wasReady {
					r.emit(Event{Kind: Settling, Rel: rel, Info: info})
				}
			}
		case <-settleT.C():
			next := r.checkSettled()
			r.maybeRearm()
			if wake == nil {
				wake = r.settleWake(next)
			}
			ticked = "settle"
		case <-wake:
			wake = r.settleWake(r.checkSettled())
			ticked = "settle"
		case <-pollT.C():
			r.pollDirs()
			ticked = "poll"
		case <-rescanT.C():
			r.fullScan()
			ticked = "rescan"
		}
		if ticked != "" && r.w.onTick != nil && r.ctx.Err() == nil {
			r.w.onTick(ticked, r.now())
		}
	}
}

// settleWake is a look at the settling files when the next of them comes due, where that is
// sooner than the settle ticker's next turn: the ticker runs every quarter of watch.settle (a
// second at most), and a file waited for it up to that long past its settle period. Looks
// are at least an eighth of a turn apart, so files coming due one after another are taken
// together. At most one is pending (a fake clock counts each it made).
func (r *run) settleWake(next time.Time) <-chan time.Time {
	if next.IsZero() {
		return nil
	}
	wait := max(next.Sub(r.now()), r.w.checkEvery/8, time.Millisecond)
	if wait >= r.w.checkEvery {
		return nil
	}
	return r.w.clock.After(wait)
}

// close stops the event source and waits for the drain goroutines.
func (r *run) close() {
	r.stopNotifier()
	r.drains.Wait()
	r.closeRoot()
}

func (r *run) startNotifier() bool {
	n, err := r.w.newNotifier()
	if err != nil {
		msg := "cannot start file events; every folder is polled instead until they can be started"
		if isInstanceLimit(err) {
			msg += " (too many inotify instances or open files: raise fs.inotify.max_user_instances with sysctl, or the service's open file limit)"
		}
		r.w.log.Warn(msg, "root", r.w.root, "poll", r.w.poll, "err", err)
		r.scheduleRearm()
		return false
	}
	ctx, stop := context.WithCancel(r.ctx)
	r.n, r.stop = n, stop
	r.drains.Add(1)
	go func() {
		defer r.drains.Done()
		drain(ctx, n.Events(), n.Errors(), r.q)
	}()
	return true
}

func (r *run) stopNotifier() {
	if r.n == nil {
		return
	}
	r.stop()
	if err := r.n.Close(); err != nil {
		r.w.log.Debug("closing file events", "root", r.w.root, "err", err)
	}
	r.n, r.stop = nil, nil
}

// notifierLost moves every watched folder to polling after the event source
// died, and schedules a new one.
func (r *run) notifierLost(err error) {
	r.w.log.Warn("file events stopped; polling every folder until they can be restarted", "root", r.w.root, "err", err)
	r.stopNotifier()
	for _, d := range r.dirs {
		if d.watched {
			d.watched, d.fallback, d.poll = false, true, true
		}
	}
	r.scheduleRearm()
}

func (r *run) handleQueue() {
	events, errs, overflow := r.q.take()
	rescan := false
	for _, err := range errs {
		if errors.Is(err, errNotifierClosed) {
			if r.n != nil {
				r.notifierLost(err)
			}
			rescan = true
			continue
		}
		r.w.log.Warn("file event error; rescanning the tree", "root", r.w.root, "err", err)
		rescan = true
	}
	// Writes come in bursts; one stat answers a run of them.
	lastWrite := make(map[string]bool)
	for _, ev := range events {
		if r.ctx.Err() != nil {
			return
		}
		minor := !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename)
		if minor && lastWrite[ev.Name] {
			continue
		}
		lastWrite[ev.Name] = minor
		if r.handleEvent(ev) {
			rescan = true
		}
	}
	if overflow {
		r.w.log.Info("too many file events at once (the kernel's event queue overflowed); rescanning the tree", "root", r.w.root)
		rescan = true
	}
	if rescan {
		r.fullScan()
	}
}

// handleEvent treats an event as a hint: it looks at the path and acts on
// what is there now. It returns true when only a full rescan can tell what
// happened.
func (r *run) handleEvent(ev fsnotify.Event) bool {
	rel, ok := r.relOf(ev.Name)
	if !ok {
		return false
	}
	if rel == "." {
		return ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)
	}
	parent, name := path.Dir(rel), path.Base(rel)
	d := r.dirs[parent]
	if d == nil || r.w.ignored(name, rel) {
		return false
	}
	fi, err := r.lstat(rel)
	if err != nil {
		if gone(err) {
			if _, known := d.children[name]; known {
				r.removeChild(parent, d, name)
			}
		} else if errors.Is(err, fs.ErrPermission) {
			r.scanDir(parent, false) // a folder on the way may no longer be entered: deny says so
		} else {
			r.w.log.Debug("stat after file event", "path", r.abs(rel), "err", err)
		}
		return false
	}
	restart := ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write)
	r.visit(parent, d, name, fi, restart, false)
	if fi.IsDir() && ev.Has(fsnotify.Chmod) && r.dirs[rel] != nil {
		// Its mode or owner changed: hotdrop may have lost (deny) or gained (lift) the right
		// to enter it.
		r.scanDir(rel, false)
	}
	return false
}

// scheduleRearm sets the next attempt to re-arm failed watches, unless one
// is already set.
func (r *run) scheduleRearm() {
	if r.rearmAt.IsZero() {
		r.rearmAt = r.now().Add(r.rearmDelay)
	}
}

// maybeRearm retries failed watches once their backoff has passed, doubling
// the wait (up to rearmMax) while they keep failing, like syncthing's
// monitorWatch.
func (r *run) maybeRearm() {
	if r.rearmAt.IsZero() || r.now().Before(r.rearmAt) {
		return
	}
	r.rearmAt = time.Time{}
	if r.n == nil && !r.startNotifier() {
		r.backoff()
		return
	}
	r.limited = false
	var rels []string
	for rel, d := range r.dirs {
		if d.fallback {
			rels = append(rels, rel)
		}
	}
	sort.Strings(rels) // parents first
	armed, left := 0, 0
	for _, rel := range rels {
		d := r.dirs[rel]
		if d == nil || !d.fallback {
			continue
		}
		if r.limited || r.ctx.Err() != nil {
			left++
			continue
		}
		r.arm(rel, d)
		if d.watched {
			armed++
			r.scanDir(rel, false) // close the gap between the last poll and the watch
		} else if d.fallback {
			left++
		}
	}
	r.rearmAt = time.Time{}
	if left > 0 {
		r.backoff()
		return
	}
	r.rearmDelay = r.w.rearmMin
	if armed > 0 {
		r.w.log.Info("file events work again; folders that were polled are watched", "root", r.w.root, "folders", armed)
	}
}

func (r *run) backoff() {
	r.rearmDelay = min(r.rearmDelay*2, r.w.rearmMax)
	r.rearmAt = r.now().Add(r.rearmDelay)
}

// gone reports whether err means the path (or a folder above it) no longer
// exists.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
