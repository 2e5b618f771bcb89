// Tx: several of the journal's writes in one transaction.

package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Tx is one transaction of the journal. The daemon's journal writer puts all that one batch
// of its loop changed into one (records, rename intents, events): a commit costs far more
// than the rows in it, and a batch of two or three files paid three commits (issue 11: the
// journal was a third of the daemon's CPU against `hotdrop send`). It also keeps a batch
// whole: its records and their events land together or not at all.
//
// A Tx is used by one goroutine, inside the function given to Write.
type Tx struct {
	ctx context.Context
	tx  *sql.Tx
	s   *Store
	err error // the first statement that failed: Write then rolls back
}

// Write runs fn in one transaction and commits it if fn returns nil and no statement failed.
// durable commits with a full sync: for a transaction that records rename intents, which
// guard against a double delivery after a power cut; everything else is committed with
// synchronous=NORMAL (WAL: survives a killed process, and a record lost to a power cut is
// re-derived from the disk and the server).
func (s *Store) Write(ctx context.Context, durable bool, fn func(*Tx) error) error {
	// The pool has one connection; it is held for the pragma, the transaction and the
	// pragma's reset, so the full sync cannot leak to another writer's commit or another's
	// reset to normal undo this one's.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer conn.Close()
	if durable {
		if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer tx.Rollback()
	t := &Tx{ctx: ctx, tx: tx, s: s}
	if err := fn(t); err != nil {
		return err
	}
	if t.err != nil {
		return t.err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// fail remembers the first failed statement (the transaction is then rolled back) and
// returns err. Every later call returns it without running anything: after an I/O error, a
// full disk or an interrupt SQLite may have rolled the transaction back already, and a
// statement run then would commit on its own, outside the batch.
func (t *Tx) fail(err error) error {
	if t.err == nil {
		t.err = err
	}
	return err
}

func (t *Tx) stmt(query string) (*sql.Stmt, error) {
	if t.err != nil {
		return nil, t.err
	}
	st, err := t.s.txStmt(t.ctx, t.tx, query)
	if err != nil {
		return nil, t.fail(fmt.Errorf("journal: %w", err))
	}
	return st, nil
}

// SaveRequests inserts or updates requests, keyed by id.
func (t *Tx) SaveRequests(rs []Request) error {
	if len(rs) == 0 || t.err != nil {
		return t.err
	}
	st, err := t.tx.PrepareContext(t.ctx, saveRequestQuery) // not hot: requests change rarely
	if err != nil {
		return t.fail(fmt.Errorf("journal: %w", err))
	}
	defer st.Close()
	for _, r := range rs {
		if r.UpdatedAt.IsZero() {
			r.UpdatedAt = time.Now()
		}
		if _, err := st.ExecContext(t.ctx, r.ID, r.Fields, r.Status, r.Files, r.Folder, r.State, ts(r.UpdatedAt), r.Delivered); err != nil {
			return t.fail(fmt.Errorf("saving request %s: %w", r.ID, err))
		}
	}
	return nil
}

// DeleteFile forgets the record of the file at path.
func (t *Tx) DeleteFile(path string) error {
	if t.err != nil {
		return t.err
	}
	if _, err := t.tx.ExecContext(t.ctx, `DELETE FROM files WHERE path = ?`, path); err != nil {
		return t.fail(fmt.Errorf("forgetting file %s: %w", path, err))
	}
	return nil
}

// SaveFiles inserts or updates files and returns their ids, in order. A file with an id is
// updated by it (no rows returned, which costs a third of an upsert here); one without is
// upserted by path.
func (t *Tx) SaveFiles(fs []File) ([]int64, error) {
	ids := make([]int64, len(fs))
	if len(fs) == 0 {
		return ids, nil
	}
	upsert, err := t.stmt(upsertFileQuery)
	if err != nil {
		return nil, err
	}
	defer upsert.Close()
	update, err := t.stmt(updateFileQuery)
	if err != nil {
		return nil, err
	}
	defer update.Close()
	now := time.Now()
	for i, f := range fs {
		if f.UpdatedAt.IsZero() {
			f.UpdatedAt = now
		}
		intent := 0
		if f.RenameIntent {
			intent = 1
		}
		if f.ID != 0 {
			res, err := update.ExecContext(t.ctx, f.RequestID, f.Size, f.ModTime.UnixNano(), int64(f.Inode), f.State, f.Reason, f.Message,
				f.SHA256, f.RemotePath, intent, ts(f.UpdatedAt), ts(f.DeliveredAt), f.ID, f.Path)
			if err != nil {
				return nil, t.fail(fmt.Errorf("saving file %s: %w", f.Path, err))
			}
			if n, _ := res.RowsAffected(); n == 1 {
				ids[i] = f.ID
				continue
			}
			// Forgotten meanwhile (DeleteFile): inserted again below.
		}
		err := upsert.QueryRowContext(t.ctx, f.Path, f.RequestID, f.Size, f.ModTime.UnixNano(), int64(f.Inode), f.State, f.Reason, f.Message,
			f.SHA256, f.RemotePath, intent, ts(now), ts(f.UpdatedAt), ts(f.DeliveredAt)).Scan(&ids[i])
		if err != nil {
			return nil, t.fail(fmt.Errorf("saving file %s: %w", f.Path, err))
		}
	}
	return ids, nil
}

// MarkRenameIntents records that each file is about to be renamed into place at its remote
// path; errs[i] is intents[i]'s outcome: ErrNotFound for a file without a record. A failed
// statement fails them all, and the transaction. Only a Write with durable set makes them
// the guard they are meant to be.
func (t *Tx) MarkRenameIntents(intents []RenameIntent) (errs []error) {
	errs = make([]error, len(intents))
	failAll := func(err error) []error {
		t.fail(err)
		for i, in := range intents {
			errs[i] = fmt.Errorf("recording rename intent for %s: %w", in.Path, err)
		}
		return errs
	}
	if len(intents) == 0 {
		return errs
	}
	mark, err := t.stmt(markIntentQuery)
	if err != nil {
		return failAll(err)
	}
	defer mark.Close()
	now := ts(time.Now())
	for i, in := range intents {
		res, err := mark.ExecContext(t.ctx, in.Remote, in.SHA256, now, in.Path)
		if err != nil {
			return failAll(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			errs[i] = fmt.Errorf("recording rename intent for %s: %w", in.Path, ErrNotFound)
		}
	}
	return errs
}

// AppendEvents journals events and queues each for its targets (targets[i] are evs[i]'s),
// and returns their Seqs. An event whose id is already journaled is not added again (its
// Seq is returned).
func (t *Tx) AppendEvents(evs []Event, targets [][]string) ([]int64, error) {
	seqs := make([]int64, len(evs))
	if len(evs) == 0 {
		return seqs, nil
	}
	ins, err := t.stmt(insertEventQuery)
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	queue, err := t.stmt(queueEventQuery)
	if err != nil {
		return nil, err
	}
	defer queue.Close()
	for i, ev := range evs {
		res, err := ins.ExecContext(t.ctx, ev.ID, ev.Type, ev.RequestID, ts(ev.At), string(ev.Body))
		if err != nil {
			return nil, t.fail(fmt.Errorf("journaling event %s: %w", ev.ID, err))
		}
		if n, _ := res.RowsAffected(); n == 1 {
			seqs[i], err = res.LastInsertId()
		} else { // journaled before: its seq
			err = t.tx.QueryRowContext(t.ctx, eventSeqQuery, ev.ID).Scan(&seqs[i])
		}
		if err != nil {
			return nil, t.fail(fmt.Errorf("journaling event %s: %w", ev.ID, err))
		}
		for _, tg := range targets[i] {
			if _, err := queue.ExecContext(t.ctx, tg, seqs[i]); err != nil {
				return nil, t.fail(fmt.Errorf("queueing event %s for %s: %w", ev.ID, tg, err))
			}
		}
	}
	return seqs, nil
}
