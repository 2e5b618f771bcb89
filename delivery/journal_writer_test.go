package delivery

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

// A journal that takes its time (a slow disk, a long fsync) does not hold the loop back:
// while one batch is being written, other files are still taken in and sent, and once the
// journal answers every file is delivered once, with its record.
func TestSlowJournalDoesNotHoldTheLoop(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, st, newFakeUploader(), req("SR-1", 1), req("SR-2", 1))
	release := make(chan struct{})
	var releaseOnce sync.Once
	open := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(open) // before the harness stops, should the test fail with the journal shut
	entered := make(chan struct{})
	var once sync.Once
	st.setBeforeSave(func([]FileRecord) error {
		once.Do(func() { close(entered) })
		<-release
		return nil
	})
	a := h.drop("SR-1", "a.ttml", watcher.Ready, 10)
	<-entered // the writer is inside SaveFiles, and stays there
	dropped := make(chan string, 1)
	go func() { dropped <- h.drop("SR-2", "b.ttml", watcher.Ready, 10) }() // a loop held back would not take it
	// Both uploads start (and wait at their rename for their intents) while the journal is
	// still writing a's first record: the loop was not waiting for it.
	h.waitAttempts(h.up, 2)
	if n := h.up.count(); n != 0 {
		t.Fatalf("%d uploads renamed into place before their rename intents were journaled", n)
	}
	b := <-dropped
	st.setBeforeSave(nil)
	open()
	h.waitState("SR-1", Delivered)
	h.waitState("SR-2", Delivered)
	if n := h.up.count(); n != 2 {
		t.Errorf("uploads = %d, want 2", n)
	}
	for _, p := range []string{a, b} {
		if r, ok := st.record(p); !ok || r.State != Delivered {
			t.Errorf("journal record of %s = %+v (found %v), want delivered", p, r, ok)
		}
	}
}

// A batch the journal refuses is kept and written before anything newer once the journal
// takes writes again: a record saved during the refusal is not lost, and a record forgotten
// after it is not brought back by the older save.
func TestRefusedJournalBatchKeepsItsOrder(t *testing.T) {
	st := newMemStore()
	h := newHarness(t, st, newFakeUploader(), req("SR-3", 0))
	refused := make(chan struct{}, 1) // a batch with gone.mxf's record was refused
	st.setBeforeSave(func(recs []FileRecord) error {
		for _, r := range recs {
			if filepath.Base(r.Path) == "gone.mxf" {
				select {
				case refused <- struct{}{}:
				default:
				}
			}
		}
		return errors.New("disk I/O error")
	})
	gone := h.drop("SR-3", "gone.mxf", watcher.Ready, 10)
	<-refused
	kept := h.drop("SR-3", "kept.mxf", watcher.Ready, 10) // waits for _READY: no later change
	h.drop("SR-3", "gone.mxf", watcher.Removed, 0)
	// The journal is back; the next change hands over a batch, and the refused one goes first.
	st.setBeforeSave(nil)
	h.drop("SR-3", "later.mxf", watcher.Ready, 10)
	if !eventually(func() bool { _, ok := st.record(kept); return ok }) {
		t.Fatal("the record saved while the journal refused writes was never written")
	}
	if err := h.eng.do(context.Background(), func() {}); err != nil { // the journal holds all of it
		t.Fatal(err)
	}
	if r, ok := st.record(gone); ok {
		t.Errorf("the record of a removed file came back: %+v", r)
	}
}

// The journal's pace (commits gathered while the loop keeps it busy) never holds back an
// upload waiting at its rename, nor a caller waiting for the journal: with a pace of an
// hour, files are still delivered one after another and control calls return.
func TestJournalPaceHoldsNoOneWaiting(t *testing.T) {
	st := newMemStore()
	ids := []string{"SR-4", "SR-5", "SR-6"}
	h := newHarnessWith(t, t.TempDir(), st, newFakeUploader(), func(o *Options) { o.JournalPace = time.Hour },
		req(ids[0], 1), req(ids[1], 1), req(ids[2], 1))
	for i, id := range ids {
		h.drop(id, "a.ttml", watcher.Ready, 10)
		// Each waits at its rename for its intent while the writer pauses after the
		// previous file's batch.
		if !eventually(func() bool { return h.up.count() == i+1 }) {
			t.Fatalf("%s: %d uploads renamed into place, want %d: the paced writer held a rename", id, h.up.count(), i+1)
		}
		h.waitState(id, Delivered)
	}
	// A control call waits for the journal (syncJournal) before it answers.
	if err := h.eng.Retry(context.Background(), ids[0]); err == nil || !strings.Contains(err.Error(), "nothing to do") {
		t.Fatalf("Retry of a delivered request: %v, want nothing to do", err)
	}
}

// When the watcher's events end, Run stops the uploads in flight and returns: an upload
// left running would reach its rename and wait for an intent no loop writes any more.
func TestRunEndsItsUploadsWhenEventsClose(t *testing.T) {
	up := newFakeUploader()
	inside := make(chan struct{})
	var once sync.Once
	up.during = func(ctx context.Context, j Job) error {
		once.Do(func() { close(inside) })
		<-ctx.Done() // an upload runs until it is stopped
		return ctx.Err()
	}
	h := newHarness(t, newMemStore(), up, req("SR-7", 1))
	h.drop("SR-7", "a.ttml", watcher.Ready, 10)
	<-inside
	close(h.events)
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its events closed: it waits for an upload nobody stops")
	}
	h.cancel()
	h.cancel = nil // Run has returned; the harness must not wait for it again
}

// Group commit: while one upload waits at its rename and another's intent is still pending
// (its bytes still travel), the writer holds off for journalGather at most, so that the loop
// can hand both intents over in one batch; once every pending intent has its upload waiting
// it ends the pause at once, and an upload whose partner never comes waits journalGather,
// not the pace. Every intent asked for is counted until it is answered.
func TestJournalGathersIntentsIntoOneCommit(t *testing.T) {
	for _, tt := range []struct {
		name     string
		bothWait bool
		held     time.Duration // how long the pause lasted once a upload waited
	}{
		{"every pending intent waits", true, 0},
		{"one intent still travels", false, journalGather},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newJournalWriter(newMemStore(), nil, discardLogger(), time.Hour)
				w.start()
				defer w.stop()
				a, b := &fileState{rec: FileRecord{Path: "/r/a"}}, &fileState{rec: FileRecord{Path: "/r/b"}}
				w.submit(&journalBatch{files: []*fileState{a, b}, recs: []FileRecord{a.rec, b.rec}})
				synctest.Wait() // written; the writer pauses (an hour: nobody waits)

				// Both uploads asked for their intents; a reaches its rename first.
				replyA, replyB := make(chan error, 1), make(chan error, 1)
				w.asked()
				w.asked()
				began := time.Now()
				doneA := make(chan error, 1)
				go func() { doneA <- w.waitFor(context.Background(), replyA) }()
				if tt.bothWait {
					go func() { _ = w.waitFor(context.Background(), replyB) }()
				}
				w.waitIdle() // the pause is over
				if held := time.Since(began); held != tt.held {
					t.Errorf("the writer paused %v once uploads waited, want %v", held, tt.held)
				}
				// The loop hands over both intents in the next batch.
				w.submit(&journalBatch{
					intents:    []pendingIntent{{a, replyA}, {b, replyB}},
					intentRecs: []RenameIntent{{Path: "/r/a", Remote: "a"}, {Path: "/r/b", Remote: "b"}}, intentOf: []int{0, 1},
				})
				if err := <-doneA; err != nil {
					t.Fatalf("intent of a: %v", err)
				}
				synctest.Wait()
				if n := w.pending.Load(); n != 0 {
					t.Errorf("%d intents still counted as pending after both were answered", n)
				}
			})
		})
	}
}

// A rename intent whose record goes in the same batch already carrying it is written with
// that record, in the same full-sync transaction, and no statement of its own; one whose
// record is not in the batch gets its own. Both are answered, and both are in the journal.
func TestIntentCarriedByItsRecord(t *testing.T) {
	st := &intentCount{memStore: newMemStore()}
	e := &Engine{jw: newJournalWriter(st, nil, discardLogger(), time.Hour), unsaved: map[*fileState]struct{}{}}
	// b's record is in the journal from an earlier batch.
	b := &fileState{rec: FileRecord{Path: "/r/b", State: Ready}}
	e.unsaved[b] = struct{}{}
	e.flushJournal()
	e.takeJournaled()
	if b.rec.ID == 0 {
		t.Fatal("b's record got no id")
	}
	// a is new and uploading with its intent; b's intent comes alone.
	a := &fileState{rec: FileRecord{Path: "/r/a", State: Uploading, RenameIntent: true, RemotePath: "in/a"}}
	b.rec.State, b.rec.RenameIntent, b.rec.RemotePath = Uploading, true, "in/b"
	e.unsaved[a] = struct{}{}
	replyA, replyB := make(chan error, 1), make(chan error, 1)
	e.intents = []pendingIntent{{a, replyA}, {b, replyB}}
	e.flushJournal()
	for name, reply := range map[string]chan error{"a": replyA, "b": replyB} {
		if err := <-reply; err != nil {
			t.Errorf("intent of %s: %v", name, err)
		}
	}
	for _, p := range []string{"/r/a", "/r/b"} {
		if r, ok := st.record(p); !ok || !r.RenameIntent {
			t.Errorf("journal record of %s = %+v (found %v), want its rename intent", p, r, ok)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.marked) != 1 || st.marked[0] != "/r/b" || !st.durable {
		t.Errorf("intent statements for %v (durable %v), want one for /r/b alone, in a full-sync commit", st.marked, st.durable)
	}
}

// intentCount is a memStore that notes which intents got a statement of their own, and
// whether the last transaction was a full-sync one.
type intentCount struct {
	*memStore
	mu      sync.Mutex
	marked  []string
	durable bool
}

func (s *intentCount) WriteTx(ctx context.Context, durable bool, fn func(JournalTx) error) error {
	s.mu.Lock()
	s.durable = durable
	s.mu.Unlock()
	return s.memStore.WriteTx(ctx, durable, func(tx JournalTx) error { return fn(intentTx{tx, s}) })
}

type intentTx struct {
	JournalTx
	s *intentCount
}

func (t intentTx) MarkRenameIntents(ctx context.Context, in []RenameIntent) []error {
	t.s.mu.Lock()
	for _, x := range in {
		t.s.marked = append(t.s.marked, x.Path)
	}
	t.s.mu.Unlock()
	return t.JournalTx.MarkRenameIntents(ctx, in)
}
