package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"

	"github.com/hotdrop/hotdrop/config"
)

// The watch modes of Options.Mode.
const (
	ModeAuto   = "auto"   // events on local disks, polling on network and FUSE mounts
	ModeEvents = "events" // fsnotify everywhere (polling only where a watch fails)
	ModePoll   = "poll"   // polling everywhere
)

// statusFileName is the drop folder status file hotdrop writes itself.
const statusFileName = ".hotdrop-status.json"

// Options configure a Watcher. The watcher owns its defaults; config only
// decodes and validates values into this struct.
type Options struct {
	Root                 string
	Settle, Rescan, Poll time.Duration // zero: config.DefaultSettle, DefaultRescan, DefaultPoll
	Mode                 string        // "auto" (or empty), "events" or "poll"
	Ignore               []string      // path.Match patterns on the base name, for files and folders
	// Skip is asked about every folder and file (rel: slash-separated,
	// relative to Root) before it is watched or reported; true hides it and,
	// for a folder, everything below. It runs on the Run goroutine, so it
	// must be quick and safe to call while its owner updates what it reads.
	// May be nil.
	Skip func(rel string) bool
	// Settled is asked about a file the watcher sees for the first time: true says the file
	// was delivered in exactly this identity before (the journal knows it), so it is ready at
	// once and reported to no one. A restart with 100,000 delivered files then costs one stat
	// each and no events. Called on the Run goroutine; may be nil.
	Settled func(rel string, info FileInfo) bool
	Clock   clock.Clock  // nil = clock.Real{}
	Logger  *slog.Logger // nil = slog.Default()
}

// Kind says what happened to a file.
type Kind int

// The kinds of Event.
const (
	Settling Kind = iota // a file appeared or changed; its settle clock (re)started
	Ready                // size and mtime unchanged for Settle
	Removed              // a previously reported file is gone
	Unsafe               // symlink, FIFO, socket or device: never followed or opened
	// Denied: a folder hotdrop cannot list or enter. Rel is a file known inside it (its files
	// are held until the folder can be read), or the folder itself when none was known; Reason
	// names the folder, the service user and what to change. When the folder can be read
	// again its files are reported Settling anew, and what was reported Denied and is not
	// there is reported Removed.
	Denied
	// FolderRemoved: a folder it watched is gone, after its files were reported Removed
	// (not while the whole root is gone: that is said once, in the log). Rel is the folder.
	FolderRemoved
)

// String returns the lower-case name used in logs.
func (k Kind) String() string {
	switch k {
	case Settling:
		return "settling"
	case Ready:
		return "ready"
	case Removed:
		return "removed"
	case Unsafe:
		return "unsafe"
	case Denied:
		return "denied"
	case FolderRemoved:
		return "folder removed"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// FileInfo is a file's identity besides its path. The device number is left
// out on purpose: it changes when a network share is remounted.
type FileInfo struct {
	Size    int64
	ModTime time.Time
	Inode   uint64 // 0 where the platform has none (Windows)
	// Dev is the device the file was seen on, for the one comparison where it matters: a
	// file opened for upload must be the very file that settled. It is never part of equal
	// (a remount changes it) and is not journaled.
	Dev uint64
}

func (a FileInfo) equal(b FileInfo) bool {
	return a.Size == b.Size && a.ModTime.Equal(b.ModTime) && a.Inode == b.Inode
}

// Event is one observation sent on Run's channel.
type Event struct {
	Kind   Kind
	Path   string   // absolute
	Rel    string   // slash-separated, relative to Root
	Info   FileInfo // for Removed: what was last seen
	Reason string   // for Unsafe and Denied: a human sentence (for Unsafe, safefs.TypeRefusal's)
}

// Watcher watches one root. Make it with New and start it with Run.
type Watcher struct {
	root       string
	settle     time.Duration
	rescan     time.Duration
	poll       time.Duration
	checkEvery time.Duration
	mode       string
	ignore     []string
	skip       func(string) bool
	settled    func(string, FileInfo) bool
	clock      clock.Clock
	log        *slog.Logger

	rescanReq   chan struct{}
	touchMu     sync.Mutex
	touched     map[string]struct{} // rel paths whose settle clock Touch restarts
	touchReq    chan struct{}
	running     atomic.Bool
	warnedLimit atomic.Bool

	// Seams for tests; production values are set by New.
	newNotifier func() (notifier, error)
	fsType      func(dir string) (name string, network bool)
	freshStat   func(abs string) (FileInfo, error) // nil: through the root (freshStatIn)
	rearmMin    time.Duration
	rearmMax    time.Duration
	onTick      func(what string, now time.Time) // after each ticker-driven step ("settle", "poll", "rescan"); nil in production
}

// New checks opts and returns a Watcher. It does not touch the filesystem;
// Run does.
func New(opts Options) (*Watcher, error) {
	if opts.Root == "" {
		return nil, errors.New("watcher: no root folder given")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("watcher: root %s: %w", opts.Root, err)
	}
	w := &Watcher{
		root:        root,
		settle:      opts.Settle,
		rescan:      opts.Rescan,
		poll:        opts.Poll,
		mode:        opts.Mode,
		ignore:      append([]string(nil), opts.Ignore...),
		skip:        opts.Skip,
		settled:     opts.Settled,
		clock:       opts.Clock,
		log:         opts.Logger,
		rescanReq:   make(chan struct{}, 1),
		touched:     make(map[string]struct{}),
		touchReq:    make(chan struct{}, 1),
		newNotifier: newFsnotifier,
		fsType:      detectFS,
		rearmMin:    10 * time.Second,
		rearmMax:    10 * time.Minute,
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"settle", &w.settle, config.DefaultSettle}, {"rescan", &w.rescan, config.DefaultRescan}, {"poll", &w.poll, config.DefaultPoll}} {
		if *d.v < 0 {
			return nil, fmt.Errorf("watcher: %s period %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	switch w.mode {
	case "":
		w.mode = ModeAuto
	case ModeAuto, ModeEvents, ModePoll:
	default:
		return nil, fmt.Errorf("watcher: mode %q: want %q, %q or %q", w.mode, ModeAuto, ModeEvents, ModePoll)
	}
	for _, p := range w.ignore {
		if _, err := path.Match(p, "x"); err != nil {
			return nil, fmt.Errorf("watcher: ignore pattern %q: %w", p, err)
		}
	}
	if w.clock == nil {
		w.clock = clock.Real{}
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.checkEvery = min(max(w.settle/4, 5*time.Millisecond), time.Second)
	return w, nil
}

// Rescan asks for a full walk of the tree soon, for when something outside
// the watcher knows the tree changed in ways events may not show (folders
// created, config reloaded). It never blocks; requests made before the walk
// starts are merged.
func (w *Watcher) Rescan() {
	select {
	case w.rescanReq <- struct{}{}:
	default:
	}
}

// Touch restarts the settle clock of the file at path (absolute or relative to the root), as
// if it had changed: a file already reported Ready is reported Settling, then Ready again
// after a full settle period. Delivery uses it when a file's sidecar or folder metadata
// changes (SPEC.md: that restarts the file's settle clock). It never blocks; unknown paths
// are ignored.
func (w *Watcher) Touch(p string) {
	rel := p
	if filepath.IsAbs(p) {
		r, err := filepath.Rel(w.root, p)
		if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return
		}
		rel = r
	}
	w.touchMu.Lock()
	w.touched[filepath.ToSlash(rel)] = struct{}{}
	w.touchMu.Unlock()
	select {
	case w.touchReq <- struct{}{}:
	default:
	}
}

func (w *Watcher) takeTouched() []string {
	w.touchMu.Lock()
	defer w.touchMu.Unlock()
	out := make([]string, 0, len(w.touched))
	for rel := range w.touched {
		out = append(out, rel)
	}
	clear(w.touched)
	return out
}

// Run watches until ctx is done, sending events on out; it returns nil on
// cancellation. Every send also watches ctx, so a stalled reader never keeps
// Run from returning. It returns an error only when it cannot start: the root
// is missing or not a folder, or Run is already running. Problems later on
// (a vanished root, a failed watch, a lost event queue) are logged and
// worked around, never returned.
func (w *Watcher) Run(ctx context.Context, out chan<- Event) error {
	if out == nil {
		return errors.New("watcher: Run needs an output channel")
	}
	if !w.running.CompareAndSwap(false, true) {
		return fmt.Errorf("watcher: already running on %s", w.root)
	}
	defer w.running.Store(false)
	fi, err := os.Stat(w.root)
	if err != nil {
		return fmt.Errorf("watch root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("watch root %s is not a folder", w.root)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := newRun(ctx, w, out)
	defer r.close()
	return r.loop()
}

// ignored reports whether a file or folder is hidden from the watcher.
func (w *Watcher) ignored(name, rel string) bool {
	return Ignored(w.ignore, name) || w.skip != nil && w.skip(rel)
}

// Ignored reports whether a file or folder named name is never reported: hotdrop's own
// files (.hotdrop*, the status file) and those matching a watch.ignore pattern (writers'
// temp files). It is the watcher's rule and explain's.
func Ignored(patterns []string, name string) bool {
	if strings.HasPrefix(name, ".hotdrop") || name == statusFileName {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
