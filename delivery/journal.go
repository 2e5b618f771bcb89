package delivery

// The Engine journals and announces per batch of its loop, not per change: a commit per state
// change and an event journaled per transaction were most of the daemon's CPU at render-farm
// sizes. Nothing is lost by waiting for the end of the batch that a kill -9 would not lose
// anyway: the one record that guards against a double delivery, the rename intent, is written
// before its upload may rename, after the records of the batches before it, and states are
// re-derived from the disk and the server on start.
//
// The loop hands each batch to the journal writer (journal_writer.go), which writes it on its
// own goroutine: the loop handles the next events while SQLite commits and the intents wait
// for their full sync.

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

// flushJournal hands what the batch changed to the journal writer: the requests' and files'
// records, the records forgotten, the events in the order they were made, the rename intents
// to write after the records, and the delivered files whose destination.after waits for
// their record. What the writer finished meanwhile is taken first (takeJournaled).
func (e *Engine) flushJournal() {
	e.takeJournaled()
	if e.jw.writing() {
		return // the next batch is handed over when this one is written (Run: jw.ready)
	}
	b := &journalBatch{deletes: e.deletes, dropped: e.dropped, afters: e.afters}
	e.deletes, e.dropped, e.afters = nil, nil, nil
	if len(e.unsavedReqs) > 0 {
		b.reqs = make([]RequestRecord, 0, len(e.unsavedReqs))
		for _, r := range e.unsavedReqs {
			b.reqs = append(b.reqs, requestRecord(r, e.opt.Clock.Now()))
		}
		clear(e.unsavedReqs)
	}
	if len(e.unsaved) > 0 {
		b.files = make([]*fileState, 0, len(e.unsaved))
		b.recs = make([]FileRecord, 0, len(e.unsaved))
		for fs := range e.unsaved {
			if fs.rec.ID == 0 && fs.rec.State == Settling ||
				fs.rec.ID != 0 && fs.rec.State == Uploading && !fs.rec.RenameIntent {
				// Not journaled: a settling record is never read back (a start re-derives it
				// from the disk; a writer's temp file that comes and goes costs nothing), nor
				// is an uploading one without its rename intent (a start re-derives it too;
				// the intent, which matters, is written after the records). Two writes in
				// four per file at render-farm sizes.
				continue
			}
			b.files = append(b.files, fs)
			b.recs = append(b.recs, fs.rec)
		}
		clear(e.unsaved)
	}
	if len(e.intents) > 0 {
		b.intents = e.intents
		// An intent whose record goes in this batch already carrying it (rename_intent and
		// the remote path, in the same full-sync transaction) needs no statement of its own:
		// with eight small files in flight that was most of them, a fifth of the journal's
		// statements.
		var carried map[*fileState]bool
		for i, fs := range b.files {
			if b.recs[i].RenameIntent {
				if carried == nil {
					carried = make(map[*fileState]bool, len(b.files))
				}
				carried[fs] = true
			}
		}
		for i, p := range e.intents {
			if carried[p.fs] {
				continue
			}
			b.intentRecs = append(b.intentRecs, RenameIntent{Path: p.fs.rec.Path, Remote: p.fs.rec.RemotePath})
			b.intentOf = append(b.intentOf, i)
		}
		e.intents = nil
	}
	if len(e.queued) > 0 {
		b.events = make([]queuedEvent, len(e.queued))
		for i, q := range e.queued {
			if q.fs != nil && q.ev.File != nil && q.ev.File.ID == 0 {
				q.ev.File.ID = q.fs.rec.ID // 0 while the writer has not said; it fills it in
			}
			b.events[i] = q
		}
		clear(e.queued)
		e.queued = e.queued[:0]
		if cap(e.queued) > 4096 {
			e.queued = nil // a flood's backing array is not kept for the quiet that follows
		}
	}
	if b.empty() {
		return
	}
	e.jw.submit(b)
	if !e.jw.running() {
		e.takeJournaled()
	}
}

// pendingJournal says whether changes wait for the writer.
func (e *Engine) pendingJournal() bool {
	return len(e.unsaved)+len(e.unsavedReqs)+len(e.deletes)+len(e.dropped)+len(e.intents)+len(e.queued)+len(e.afters) > 0
}

// takeJournaled takes what the writer finished: the ids of new records, and the delivered
// files whose record is now written, whose destination.after runs now. A source is moved or
// deleted only once its delivered record is journaled: a crash in between must not leave a
// delivered file whose journal still calls it uploading and whose source is gone.
func (e *Engine) takeJournaled() {
	done := e.jw.take()
	for _, s := range done.saved {
		if s.fs.rec.ID == s.id {
			continue
		}
		s.fs.rec.ID = s.id
		// Views show the id (the dashboard and the API act on a file by it).
		if r := e.reqs[s.fs.req()]; r != nil && e.files[s.fs.rec.Path] == s.fs {
			e.report(r)
		} else if s.fs.inBin {
			e.binDirty = true
		}
	}
	for _, fs := range done.afters {
		if e.files[fs.rec.Path] == fs && fs.rec.State == Delivered {
			e.afterDelivery(fs)
		}
	}
}

// syncJournal waits until the writer has written everything handed to it so far, and takes
// what it finished: control calls return with the journal as their change left it.
func (e *Engine) syncJournal() {
	for {
		e.jw.hurry()
		e.jw.waitIdle()
		e.takeJournaled() // may move sources (destination.after): nothing more to journal
		if !e.pendingJournal() {
			return
		}
		e.flushJournal()
	}
}

// pendingIntent is an upload waiting at its rename for its intent to be journaled.
type pendingIntent struct {
	fs    *fileState
	reply chan error
}

// forget drops fs from the records waiting for the journal: its record is being deleted or
// it is no longer the Engine's.
func (e *Engine) forget(fs *fileState) {
	delete(e.unsaved, fs)
	e.dropped = append(e.dropped, fs)
}

// deleteRecord forgets the journal's record of the file at p, in order with the writes
// handed to the writer before it.
func (e *Engine) deleteRecord(p string) { e.deletes = append(e.deletes, p) }
