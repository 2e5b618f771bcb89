package watcher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"

	"github.com/fsnotify/fsnotify"
)

// notifier is the part of *fsnotify.Watcher the watcher uses, so tests can
// lose events, fail watches or report overflows on purpose.
type notifier interface {
	Add(dir string) error
	Remove(dir string) error
	WatchList() []string
	Events() <-chan fsnotify.Event
	Errors() <-chan error
	Close() error
}

type fsnotifier struct{ w *fsnotify.Watcher }

func newFsnotifier() (notifier, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	return fsnotifier{w}, nil
}

func (n fsnotifier) Add(dir string) error          { return n.w.Add(dir) }
func (n fsnotifier) Remove(dir string) error       { return n.w.Remove(dir) }
func (n fsnotifier) WatchList() []string           { return n.w.WatchList() }
func (n fsnotifier) Events() <-chan fsnotify.Event { return n.w.Events }
func (n fsnotifier) Errors() <-chan error          { return n.w.Errors }
func (n fsnotifier) Close() error                  { return n.w.Close() }

// errNotifierClosed is queued when a notifier's channels close without the
// watcher asking: its watches are gone and every folder must be polled.
var errNotifierClosed = errors.New("file event source closed unexpectedly")

// maxQueued bounds the internal event buffer. Past it the events are thrown
// away and the tree is rescanned instead, as after a kernel queue overflow.
const maxQueued = 1 << 16

// queue buffers fsnotify's output between the drain goroutine, which must
// never block (the kernel queue overflows behind it), and the Run goroutine,
// which may be slowed down by its reader. Order is kept: a directory renamed
// away must be forgotten before its new name is watched.
type queue struct {
	mu       sync.Mutex
	events   []fsnotify.Event
	errs     []error
	overflow bool
	ready    chan struct{} // has a value when there is something to take
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) pushEvent(ev fsnotify.Event) {
	q.mu.Lock()
	if len(q.events) >= maxQueued {
		q.events, q.overflow = nil, true
	} else {
		q.events = append(q.events, ev)
	}
	q.mu.Unlock()
	q.signal()
}

func (q *queue) pushErr(err error) {
	q.mu.Lock()
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		q.overflow = true
	} else if len(q.errs) < 16 {
		q.errs = append(q.errs, err)
	}
	q.mu.Unlock()
	q.signal()
}

// take empties the queue.
func (q *queue) take() (events []fsnotify.Event, errs []error, overflow bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	events, errs, overflow = q.events, q.errs, q.overflow
	q.events, q.errs, q.overflow = nil, nil, false
	return events, errs, overflow
}

// drain moves everything fsnotify sends into q until ctx is done. It never
// waits on anything but its two inputs and ctx.
func drain(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error, q *queue) {
	for events != nil || errs != nil {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			q.pushEvent(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			q.pushErr(err)
		}
	}
	if ctx.Err() == nil {
		q.pushErr(errNotifierClosed)
	}
}

// isWatchLimit reports whether Add failed because the per-user inotify watch
// limit is used up (inotify_add_watch returns ENOSPC).
func isWatchLimit(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// isInstanceLimit reports whether creating an event source failed because of
// the per-user inotify instance limit or the open file limit.
func isInstanceLimit(err error) bool { return errors.Is(err, syscall.EMFILE) }

// watchLimitAdvice is the one warning about running out of inotify watches.
func watchLimitAdvice(dir string, poll fmt.Stringer) string {
	cur, ok := inotifyMaxUserWatches()
	want := int64(524288)
	have := "its current value"
	if ok {
		have = fmt.Sprint(cur)
		if cur*2 > want {
			want = cur * 2
		}
	}
	return fmt.Sprintf("hotdrop ran out of inotify watches while watching %s: the kernel allows each user "+
		"fs.inotify.max_user_watches watches (%s) and they are all in use. Folders without a watch are polled "+
		"every %s instead, which notices files later and costs more disk reads. To raise the limit run "+
		"`sudo sysctl -w fs.inotify.max_user_watches=%d` and keep it across reboots with "+
		"`echo fs.inotify.max_user_watches=%d | sudo tee /etc/sysctl.d/90-hotdrop.conf`; "+
		"hotdrop switches those folders back to events by itself.", dir, have, poll, want, want)
}
