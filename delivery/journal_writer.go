package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// journalBatch is what one batch of the loop changed, written in this order: requests,
// records forgotten, records saved, rename intents, events. The loop copies everything
// the writer reads; the fileStates are only keys and are handed back, never read here.
type journalBatch struct {
	reqs       []RequestRecord
	deletes    []string
	files      []*fileState // recs[i] is files[i]'s record
	recs       []FileRecord
	intents    []pendingIntent // all answered once the batch is written
	intentRecs []RenameIntent  // those not carried by a record of the batch: intents[intentOf[k]]
	intentOf   []int
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
	pace    time.Duration      // journalPace
	gather  time.Duration      // journalGather
	rush    chan struct{}      // one token: end the pause (hurry)
	nudge   chan struct{}      // one token: an upload began waiting for its intent
	waiters atomic.Int32       // uploads waiting for their intent
	pending atomic.Int32       // intents asked for (asked) and not answered yet
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

func newJournalWriter(st Store, events EventSink, log *slog.Logger, pace time.Duration) *journalWriter {
	w := &journalWriter{st: st, events: events, log: log, ids: map[*fileState]int64{}, ready: make(chan struct{}, 1),
		pace: pace, gather: min(pace, journalGather), rush: make(chan struct{}, 1), nudge: make(chan struct{}, 1)}
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
			began := time.Now()
			w.write(b)
			w.pause(began)
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

// journalPace is the least time from one batch's start to the next's while the loop keeps
// the writer busy. Without it the writer took the next batch the moment it was done, so it
// was busy all the time whatever the load and a batch held two or three files: a commit
// costs far more than the rows in it, and the journal was a third of the daemon's CPU
// against `hotdrop send`'s (issue 11). A writer that was idle takes the next batch at once,
// and anyone waiting for the journal ends the pause (hurry): a control call, the end of
// Run. So the pause only gathers what nobody waits for yet, such as the intents of small
// files sent early (earlyIntentMax) while their bytes still travel.
const journalPace = 10 * time.Millisecond

// journalGather is how long, from one batch's start, the writer still gathers while uploads
// wait for their rename intents: a group commit. With eight small files in flight one of
// them nearly always waits, and writing at once gave a commit with a full sync for every
// three intents (6,300 for 20,000 frames, a tenth of the daemon's CPU); gathering until
// every upload whose intent is pending waits, or this long, gave one for every four or five
// (4,400). On a busy machine a batch takes longer than this anyway and nothing waits more.
const journalGather = 3 * time.Millisecond

// pause waits, after a batch that began at began, until journalPace has passed since, or
// until hurry. While uploads wait for their intents it waits journalGather at most, and not
// at all once every intent asked for and not yet answered has its upload waiting: nothing
// more would join the batch. The loop meanwhile gathers the next batch.
func (w *journalWriter) pause(began time.Time) {
	for {
		wait := w.pace - time.Since(began)
		if n := w.waiters.Load(); n > 0 {
			if n >= w.pending.Load() {
				return
			}
			wait = min(wait, w.gather-time.Since(began))
		}
		if wait <= 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			return
		case <-w.rush:
			t.Stop()
			return
		case <-w.nudge:
			t.Stop() // one more upload waits: look again
		}
	}
}

// asked counts an intent handed to the loop; answer replies to one.
func (w *journalWriter) asked() { w.pending.Add(1) }

func (w *journalWriter) answer(reply chan<- error, err error) {
	reply <- err
	w.pending.Add(-1)
}

// waitFor waits for an intent's reply, and keeps the writer from pausing longer than
// journalGather meanwhile.
func (w *journalWriter) waitFor(ctx context.Context, reply <-chan error) error {
	select {
	case err := <-reply:
		return err
	default:
	}
	w.waiters.Add(1)
	defer w.waiters.Add(-1)
	select {
	case w.nudge <- struct{}{}:
	default:
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hurry ends the writer's pause, if it is in one, and the next one too if it is not.
func (w *journalWriter) hurry() {
	select {
	case w.rush <- struct{}{}:
	default:
	}
}

// stop writes what was handed over and waits for the goroutine to return.
func (w *journalWriter) stop() {
	if w.in == nil {
		return
	}
	close(w.in)
	w.hurry()
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
				w.refuseIntents(b, errJournalBehind)
			}
			return
		}
		w.held[0] = nil
		w.held = w.held[1:]
	}
	w.held = nil
}

// writeOne writes one batch in one transaction: its requests, forgotten records, saved
// records, rename intents (then with a full sync) and, through a TxSink, its events. False
// when the journal refused it: it then waits, whole, and its intents are refused, so their
// uploads retry rather than rename without their record.
func (w *journalWriter) writeOne(b *journalBatch) bool {
	ctx := context.Background() // a shutdown does not cut the last writes short
	var ids []int64
	var intentErrs []error
	var announce func()
	txSink, _ := w.events.(TxSink)
	err := w.st.WriteTx(ctx, len(b.intents) > 0, func(tx JournalTx) error {
		ids, intentErrs, announce = nil, nil, nil // a held batch written again starts afresh
		if len(b.reqs) > 0 {
			if err := tx.SaveRequests(ctx, b.reqs); err != nil {
				return err
			}
		}
		for _, p := range b.deletes {
			if err := tx.DeleteFile(ctx, p); err != nil {
				return err
			}
		}
		if len(b.recs) > 0 {
			for i, fs := range b.files {
				if id := w.ids[fs]; id != 0 {
					b.recs[i].ID = id
				}
			}
			var err error
			if ids, err = tx.SaveFiles(ctx, b.recs); err != nil {
				return err
			}
		}
		if len(b.intents) > 0 {
			intentErrs = make([]error, len(b.intents)) // a carried one is written with its record
			if len(b.intentRecs) > 0 {
				for k, err := range tx.MarkRenameIntents(ctx, b.intentRecs) {
					intentErrs[b.intentOf[k]] = err
				}
			}
		}
		if txSink != nil && len(b.events) > 0 {
			var err error
			announce, err = txSink.JournalBatch(tx, w.eventsOf(b, ids))
			return err
		}
		return nil
	})
	if err != nil {
		w.log.Error("journal", "err", err)
		w.refuseIntents(b, err)
		return false
	}
	if len(b.recs) > 0 {
		saved := make([]savedID, len(ids))
		for i, fs := range b.files {
			w.ids[fs] = ids[i]
			saved[i] = savedID{fs, ids[i]}
		}
		w.finished(saved, nil)
	}
	for i, p := range b.intents {
		w.answer(p.reply, intentErrs[i])
	}
	w.finished(nil, b.afters)
	switch {
	case announce != nil:
		announce()
	case txSink == nil:
		w.emit(w.eventsOf(b, nil))
	}
	for _, fs := range b.dropped {
		delete(w.ids, fs)
	}
	*b = journalBatch{}
	return true
}

// errJournalBehind refuses the intents of a batch waiting behind one the journal refused.
var errJournalBehind = errors.New("the journal has not taken the records written before this one yet")

func (w *journalWriter) refuseIntents(b *journalBatch, err error) {
	for _, p := range b.intents {
		w.answer(p.reply, err)
	}
	b.intents, b.intentRecs, b.intentOf = nil, nil, nil
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

// eventsOf is the batch's events in the order they were made, each carrying the journal id
// of its file's record: known before, or ids[k] of the batch's own b.files[k] (not yet
// committed: the events go in the same transaction).
func (w *journalWriter) eventsOf(b *journalBatch, ids []int64) []Event {
	if len(b.events) == 0 {
		return nil
	}
	var fresh map[*fileState]int64
	evs := make([]Event, len(b.events))
	for i, q := range b.events {
		if q.fs != nil && q.ev.File != nil && q.ev.File.ID == 0 {
			id := w.ids[q.fs]
			if id == 0 && len(ids) > 0 {
				if fresh == nil {
					fresh = make(map[*fileState]int64, len(ids))
					for k, fs := range b.files {
						fresh[fs] = ids[k]
					}
				}
				id = fresh[q.fs]
			}
			f := *q.ev.File // a copy: a rolled-back transaction's ids must not stick
			f.ID = id
			q.ev.File = &f
		}
		evs[i] = q.ev
	}
	return evs
}

// emit hands events to a sink that journals them itself, after the batch's transaction.
func (w *journalWriter) emit(evs []Event) {
	if len(evs) == 0 || w.events == nil {
		return
	}
	if b, ok := w.events.(BatchSink); ok {
		b.EmitBatch(evs)
		return
	}
	for _, ev := range evs {
		w.events.Emit(ev)
	}
}
