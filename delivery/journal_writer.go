package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
)

// journalBatch is what one batch of the loop changed, written in this order: requests,
// records forgotten, records saved, rename intents, events. The loop copies everything
// the writer reads; the fileStates are only keys and are handed back, never read here.
type journalBatch struct {
	reqs       []RequestRecord
	deletes    []string
	files      []*fileState // recs[i] is files[i]'s record
	recs       []FileRecord
	intents    []pendingIntent // intentRecs[i] is intents[i]'s
	intentRecs []RenameIntent
	events     []queuedEvent
	dropped    []*fileState // no longer the Engine's: their ids are forgotten
	afters     []*fileState
}

func (b *journalBatch) empty() bool {
	return len(b.reqs)+len(b.deletes)+len(b.recs)+len(b.intents)+len(b.events)+len(b.dropped)+len(b.afters) == 0
}

// journalDone is what the writer finished since the loop last took it.
type journalDone struct {
	saved  []savedID
	afters []*fileState
}

type savedID struct {
	fs *fileState
	id int64
}

// journalWriter writes the loop's batches to the Store in the order they were made, on its
// own goroutine (start) or, before the loop runs, on the caller's. The loop hands it one
// batch at a time and never waits for it: while a batch is being written, the loop goes on
// and what it changes meanwhile waits in the Engine for the next one, where a file changed
// three times is one record (flushJournal). What the writer finished waits in done until the
// loop takes it; ready says so.
//
// A batch the journal refuses is kept and tried again, before anything newer, when the next
// one comes: nothing written later may overtake it (a delete, say, must not be undone by an
// older save). Its intents are refused at once, so their uploads retry rather than rename
// without their record; a journal that stays gone stops the daemon (health.go).
type journalWriter struct {
	st     Store
	events EventSink
	log    *slog.Logger

	in      chan *journalBatch // nil until start
	stopped chan struct{}      // closed when the goroutine has returned

	// Owned by whoever writes: the goroutine once started.
	ids  map[*fileState]int64 // the journal id of every record written, by file
	held []*journalBatch      // batches the journal has not taken yet, oldest first

	mu    sync.Mutex
	idle  *sync.Cond // busy went false
	busy  bool       // a batch was handed over and is not written yet
	done  journalDone
	ready chan struct{} // one token: a batch was written
}

func newJournalWriter(st Store, events EventSink, log *slog.Logger) *journalWriter {
	w := &journalWriter{st: st, events: events, log: log, ids: map[*fileState]int64{}, ready: make(chan struct{}, 1)}
	w.idle = sync.NewCond(&w.mu)
	return w
}

// start runs the writer on its own goroutine until stop.
func (w *journalWriter) start() {
	w.in = make(chan *journalBatch, 1)
	w.stopped = make(chan struct{})
	go func() {
		defer close(w.stopped)
		for b := range w.in {
			w.write(b)
			w.mu.Lock()
			w.busy = false
			w.idle.Broadcast()
			w.mu.Unlock()
			select {
			case w.ready <- struct{}{}:
			default:
			}
		}
	}()
}

func (w *journalWriter) running() bool { return w.in != nil }

// stop writes what was handed over and waits for the goroutine to return.
func (w *journalWriter) stop() {
	if w.in == nil {
		return
	}
	close(w.in)
	<-w.stopped
	w.in = nil
}

// writing says whether a batch handed over is still being written.
func (w *journalWriter) writing() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.busy
}

// submit hands b over; the caller has seen writing() false. Before start, b is written at once.
func (w *journalWriter) submit(b *journalBatch) {
	if w.in == nil {
		w.write(b)
		return
	}
	w.mu.Lock()
	w.busy = true
	w.mu.Unlock()
	w.in <- b // never waits: the one batch before it was taken
}

// waitIdle returns once the batch handed over, if any, is written (or refused and kept).
func (w *journalWriter) waitIdle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy {
		w.idle.Wait()
	}
}

// take returns what was finished since the last take.
func (w *journalWriter) take() journalDone {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.done
	w.done = journalDone{}
	return d
}

func (w *journalWriter) write(b *journalBatch) {
	w.held = append(w.held, b)
	w.retryHeld()
}

func (w *journalWriter) retryHeld() {
	for len(w.held) > 0 {
		if !w.writeOne(w.held[0]) {
			for _, b := range w.held[1:] {
				refuseIntents(b, errJournalBehind)
			}
			return
		}
		w.held[0] = nil
		w.held = w.held[1:]
	}
	w.held = nil
}

// writeOne writes one batch; false when the journal refused its records, which then wait.
func (w *journalWriter) writeOne(b *journalBatch) bool {
	ctx := context.Background() // a shutdown does not cut the last writes short
	if len(b.reqs) > 0 {
		if err := w.st.SaveRequests(ctx, b.reqs); err != nil {
			w.log.Error("journal", "err", err)
			refuseIntents(b, err)
			return false
		}
		b.reqs = nil
	}
	for _, p := range b.deletes {
		if err := w.st.DeleteFile(ctx, p); err != nil {
			w.log.Error("journal", "err", err)
		}
	}
	b.deletes = nil
	if len(b.recs) > 0 {
		for i, fs := range b.files {
			if id := w.ids[fs]; id != 0 {
				b.recs[i].ID = id
			}
		}
		ids, err := w.st.SaveFiles(ctx, b.recs)
		if err != nil {
			// The intents would land on whatever row is there (an older delivery's, say):
			// no rename without the file's own record. Their uploads retry.
			w.log.Error("journal", "err", err)
			refuseIntents(b, err)
			return false
		}
		saved := make([]savedID, len(ids))
		for i, fs := range b.files {
			w.ids[fs] = ids[i]
			saved[i] = savedID{fs, ids[i]}
		}
		w.finished(saved, nil)
		b.files, b.recs = nil, nil
	}
	if len(b.intents) > 0 {
		errs := w.st.MarkRenameIntents(ctx, b.intentRecs)
		for i, p := range b.intents {
			p.reply <- errs[i]
		}
		b.intents, b.intentRecs = nil, nil
	}
	w.finished(nil, b.afters)
	w.emit(b.events)
	for _, fs := range b.dropped {
		delete(w.ids, fs)
	}
	return true
}

// errJournalBehind refuses the intents of a batch waiting behind one the journal refused.
var errJournalBehind = errors.New("the journal has not taken the records written before this one yet")

func refuseIntents(b *journalBatch, err error) {
	for _, p := range b.intents {
		p.reply <- err
	}
	b.intents, b.intentRecs = nil, nil
}

func (w *journalWriter) finished(saved []savedID, afters []*fileState) {
	if len(saved) == 0 && len(afters) == 0 {
		return
	}
	w.mu.Lock()
	w.done.saved = append(w.done.saved, saved...)
	w.done.afters = append(w.done.afters, afters...)
	w.mu.Unlock()
}

// emit hands the batch's events to the sink, in the order they were made, each carrying the
// journal id of its file's record.
func (w *journalWriter) emit(qs []queuedEvent) {
	if len(qs) == 0 || w.events == nil {
		return
	}
	evs := make([]Event, len(qs))
	for i, q := range qs {
		if q.fs != nil && q.ev.File != nil && q.ev.File.ID == 0 {
			q.ev.File.ID = w.ids[q.fs]
		}
		evs[i] = q.ev
	}
	if b, ok := w.events.(BatchSink); ok {
		b.EmitBatch(evs)
		return
	}
	for _, ev := range evs {
		w.events.Emit(ev)
	}
}
