package report

import (
	"sync"

	"github.com/hotdrop/hotdrop/delivery"
)

// StatusWriter writes status files from a goroutine of its own: the engine's loop hands it
// views and never waits for the disk (10,000 requests' first status files took the loop five
// seconds on an overlay filesystem). Only the newest view of each folder is written; a view
// that changes again before its turn is written once. Close writes what is pending and stops.
type StatusWriter struct {
	files *StatusFiles

	mu      sync.Mutex
	pending map[string]delivery.RequestView // by folder
	order   []string                        // folders in the order they first became pending
	closed  bool

	wake chan struct{}
	done chan struct{}
}

var _ delivery.Reporter = (*StatusWriter)(nil)

// NewStatusWriter starts a StatusWriter over files.
func NewStatusWriter(files *StatusFiles) *StatusWriter {
	w := &StatusWriter{files: files, pending: map[string]delivery.RequestView{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// RequestChanged queues v's status file; it never blocks on the disk.
func (w *StatusWriter) RequestChanged(v delivery.RequestView) {
	if v.Folder == "" {
		return
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.files.RequestChanged(v) // after Close: written at once, as nothing else will
		return
	}
	if _, ok := w.pending[v.Folder]; !ok {
		w.order = append(w.order, v.Folder)
	}
	w.pending[v.Folder] = v
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *StatusWriter) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.order) == 0 {
			closed := w.closed
			w.mu.Unlock()
			if closed {
				return
			}
			<-w.wake
			continue
		}
		folder := w.order[0]
		w.order = w.order[1:]
		v := w.pending[folder]
		delete(w.pending, folder)
		w.mu.Unlock()
		w.files.RequestChanged(v)
	}
}

// Close writes the views still pending and waits for the writer to stop.
func (w *StatusWriter) Close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
}
