package delivery

import (
	"context"
)

// The Engine journals and announces per batch of its loop, not per change: a commit per state
// change and an event journaled per transaction were most of the daemon's CPU at render-farm
// sizes. Nothing is lost by waiting for the end of the batch that a kill -9 would not lose
// anyway: the one record that guards against a double delivery, the rename intent, is written
// at once, after the batch so far (flushJournal before MarkRenameIntent), and states are
// re-derived from the disk and the server on start.

// queuedEvent is an event waiting for the end of the batch; fs, when set, is the file whose
// journal id it carries once the record is written.
type queuedEvent struct {
	ev Event
	fs *fileState
}

func (e *Engine) queue(ev Event, fs *fileState) {
	if e.opt.Events == nil {
		return
	}
	if ev.ID == "" {
		ev.ID = newEventID()
	}
	if ev.At.IsZero() {
		ev.At = e.opt.Clock.Now().UTC()
	}
	e.queued = append(e.queued, queuedEvent{ev: ev, fs: fs})
}

// flushJournal writes the changed records in one transaction, then hands the events of the
// batch to the sink, in the order they were made, and moves or deletes the sources
// (destination.after) whose delivered record is now written. When the records cannot be
// written, nothing of that follows: it waits for the next batch, and the error is returned.
func (e *Engine) flushJournal(ctx context.Context) error {
	if len(e.unsavedReqs) > 0 {
		recs := make([]RequestRecord, 0, len(e.unsavedReqs))
		for _, r := range e.unsavedReqs {
			recs = append(recs, requestRecord(r, e.opt.Clock.Now()))
		}
		if err := e.st.SaveRequests(context.WithoutCancel(ctx), recs); err != nil {
			e.log.Error("journal", "err", err)
		} else {
			clear(e.unsavedReqs)
		}
	}
	if len(e.unsaved) > 0 {
		files := make([]*fileState, 0, len(e.unsaved))
		recs := make([]FileRecord, 0, len(e.unsaved))
		for fs := range e.unsaved {
			if fs.rec.ID == 0 && fs.rec.State == Settling ||
				fs.rec.ID != 0 && fs.rec.State == Uploading && !fs.rec.RenameIntent {
				// Not journaled: a settling record is never read back (a start re-derives it
				// from the disk; a writer's temp file that comes and goes costs nothing), nor
				// is an uploading one without its rename intent (a start re-derives it too;
				// the intent, which matters, is written by flushIntents). Two writes in four
				// per file at render-farm sizes.
				delete(e.unsaved, fs)
				continue
			}
			files = append(files, fs)
			recs = append(recs, fs.rec)
		}
		ids, err := e.st.SaveFiles(context.WithoutCancel(ctx), recs)
		if err != nil {
			// Kept for the next batch, with the events that announce them: a journal that is
			// back takes them then (one that is gone stops the daemon: health.go).
			e.log.Error("journal", "err", err)
			return err
		}
		for i, fs := range files {
			fs.rec.ID = ids[i]
		}
		clear(e.unsaved)
	}
	// A source is moved or deleted only once its delivered record is journaled: a crash in
	// between must not leave a delivered file whose journal still calls it uploading and
	// whose source is gone.
	for _, fs := range e.afters {
		if e.files[fs.rec.Path] == fs && fs.rec.State == Delivered {
			e.afterDelivery(fs)
		}
	}
	clear(e.afters)
	e.afters = e.afters[:0]
	if len(e.queued) == 0 {
		return nil
	}
	evs := make([]Event, len(e.queued))
	for i, q := range e.queued {
		if q.fs != nil && q.ev.File != nil && q.ev.File.ID == 0 {
			q.ev.File.ID = q.fs.rec.ID
		}
		evs[i] = q.ev
	}
	clear(e.queued)
	e.queued = e.queued[:0]
	if cap(e.queued) > 4096 {
		e.queued = nil // a flood's backing array is not kept for the quiet that follows
	}
	if b, ok := e.opt.Events.(BatchSink); ok {
		b.EmitBatch(evs)
		return nil
	}
	for _, ev := range evs {
		e.opt.Events.Emit(ev)
	}
	return nil
}

// pendingIntent is an upload waiting at its rename for its intent to be journaled.
type pendingIntent struct {
	fs    *fileState
	reply chan error
}

// flushIntents journals the rename intents of the batch with one full sync and lets their
// uploads go on. The rows they update are written first.
func (e *Engine) flushIntents(ctx context.Context) {
	if len(e.intents) == 0 {
		return
	}
	if err := e.flushJournal(ctx); err != nil {
		// The intent would land on whatever row is there (an older delivery's, say): no
		// rename without the file's own record. The upload retries.
		for _, p := range e.intents {
			p.reply <- err
		}
		clear(e.intents)
		e.intents = e.intents[:0]
		return
	}
	in := make([]RenameIntent, len(e.intents))
	for i, p := range e.intents {
		in[i] = RenameIntent{Path: p.fs.rec.Path, Remote: p.fs.rec.RemotePath}
	}
	errs := e.st.MarkRenameIntents(context.WithoutCancel(ctx), in)
	for i, p := range e.intents {
		p.reply <- errs[i]
	}
	clear(e.intents)
	e.intents = e.intents[:0]
}

// forget drops fs from the records waiting for the journal: its record is being deleted.
func (e *Engine) forget(fs *fileState) { delete(e.unsaved, fs) }
