package store

import (
	"context"
	"fmt"
	"time"
)

// Event is one journaled event: its stable id, its place in the journal (Seq, increasing)
// and its JSON body exactly as it is sent to receivers.
type Event struct {
	Seq       int64
	ID        string
	Type      string
	RequestID string // "" for events about no request (destination.unreachable, ...)
	At        time.Time
	Body      []byte
}

// OutboxItem is one delivery still owed to a target (a webhook, the tracker): the event, how
// often sending it failed, when to try next and why the last try failed.
type OutboxItem struct {
	Seq       int64 // order within the outbox: the order events were journaled
	Target    string
	Event     Event
	Attempts  int
	NextTry   time.Time // zero: as soon as possible
	LastError string
}

// AppendEvent journals ev and queues it for every target, in one transaction: an event is
// never journaled without its deliveries or the other way round. It returns ev's Seq. An
// event whose id is already journaled is not added again (its Seq is returned).
func (s *Store) AppendEvent(ctx context.Context, ev Event, targets []string) (int64, error) {
	seqs, err := s.AppendEvents(ctx, []Event{ev}, [][]string{targets})
	if err != nil {
		return 0, err
	}
	return seqs[0], nil
}

const (
	// insertEventQuery adds an event unless its id is journaled already; eventSeqQuery then
	// finds its seq. Exec and the row id, not RETURNING: a query's rows cost a fifth of the
	// journal's time per event (BenchmarkFrameBatches).
	insertEventQuery = `INSERT INTO events(id, type, request_id, at, body) VALUES(?,?,?,?,?)
		ON CONFLICT(id) DO NOTHING`
	eventSeqQuery   = `SELECT seq FROM events WHERE id = ?`
	queueEventQuery = `INSERT INTO outbox(target, event_seq) VALUES(?,?) ON CONFLICT DO NOTHING`
)

// AppendEvents is AppendEvent for several events in one transaction (targets[i] are evs[i]'s):
// the daemon journals a batch of events at once.
func (s *Store) AppendEvents(ctx context.Context, evs []Event, targets [][]string) (seqs []int64, err error) {
	if len(evs) == 0 {
		return make([]int64, 0), nil
	}
	err = s.Write(ctx, false, func(t *Tx) error {
		seqs, err = t.AppendEvents(evs, targets)
		return err
	})
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

const eventCols = `e.seq, e.id, e.type, e.request_id, e.at, e.body`

func scanEvent(sc interface{ Scan(...any) error }, extra ...any) (Event, error) {
	var ev Event
	var at, body string
	if err := sc.Scan(append([]any{&ev.Seq, &ev.ID, &ev.Type, &ev.RequestID, &at, &body}, extra...)...); err != nil {
		return Event{}, err
	}
	ev.At, ev.Body = parseTS(at), []byte(body)
	return ev, nil
}

// Events lists journaled events after seq (0: from the start), oldest first, at most limit.
// With requestID set, only that request's events.
func (s *Store) Events(ctx context.Context, after int64, requestID string, limit int) ([]Event, error) {
	q := `SELECT ` + eventCols + ` FROM events e WHERE e.seq > ?`
	args := []any{after}
	if requestID != "" {
		q += ` AND e.request_id = ?`
		args = append(args, requestID)
	}
	q += ` ORDER BY e.seq LIMIT ?`
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("listing events: %w", err)
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Outbox lists the deliveries owed to target, oldest first, at most limit.
func (s *Store) Outbox(ctx context.Context, target string, limit int) ([]OutboxItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+eventCols+`, o.seq, o.attempts, o.next_try, o.last_error
		FROM outbox o JOIN events e ON e.seq = o.event_seq WHERE o.target = ? ORDER BY o.seq LIMIT ?`, target, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the %s outbox: %w", target, err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		it := OutboxItem{Target: target}
		var next string
		ev, err := scanEvent(rows, &it.Seq, &it.Attempts, &next, &it.LastError)
		if err != nil {
			return nil, fmt.Errorf("reading the %s outbox: %w", target, err)
		}
		it.Event, it.NextTry = ev, parseTS(next)
		out = append(out, it)
	}
	return out, rows.Err()
}

// OutboxDone removes a delivery that its target accepted.
func (s *Store) OutboxDone(ctx context.Context, seq int64) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM outbox WHERE seq = ?`, seq); err != nil {
		return fmt.Errorf("outbox entry %d: %w", seq, err)
	}
	return nil
}

// OutboxFailed records a failed try of a delivery: how many tries so far, when to try next
// and why it failed.
func (s *Store) OutboxFailed(ctx context.Context, seq int64, attempts int, next time.Time, lastErr string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = ?, next_try = ?, last_error = ? WHERE seq = ?`,
		attempts, ts(next), lastErr, seq); err != nil {
		return fmt.Errorf("outbox entry %d: %w", seq, err)
	}
	return nil
}

// PruneEvents forgets journaled events older than before that no target still owes, so the
// journal does not grow without bound. It returns how many it removed.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM events WHERE at < ? AND at != ''
		AND seq NOT IN (SELECT event_seq FROM outbox)`, ts(before))
	if err != nil {
		return 0, fmt.Errorf("pruning events: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
