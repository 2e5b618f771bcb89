// Requests: the stored copy of each Source Request and its manifest.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Request is the stored copy of a Source Request and its delivery state.
type Request struct {
	ID        string
	Fields    string // JSON object
	Status    string
	Files     int
	Folder    string
	State     string
	UpdatedAt time.Time
	Delivered bool // delivered whole at least once
}

// SaveRequest inserts or replaces a request.
func (s *Store) SaveRequest(ctx context.Context, r Request) error {
	return s.SaveRequests(ctx, []Request{r})
}

// SaveRequests inserts or replaces requests, in one transaction: 10,000 requests at start
// cost one commit, not 10,000.
func (s *Store) SaveRequests(ctx context.Context, rs []Request) error {
	if len(rs) == 0 {
		return nil
	}
	return s.Write(ctx, false, func(t *Tx) error { return t.SaveRequests(rs) })
}

const saveRequestQuery = `INSERT INTO requests(id, fields, status, files, folder, state, updated_at, delivered)
	VALUES(?,?,?,?,?,?,?,?)
	ON CONFLICT(id) DO UPDATE SET fields=excluded.fields, status=excluded.status, files=excluded.files,
		folder=excluded.folder, state=excluded.state, updated_at=excluded.updated_at,
		delivered=MAX(requests.delivered, excluded.delivered)` // once delivered whole, always: a start that could not read it must not unsay it

// MarkManifest records that request id's manifest is on the server (at), or, with a zero
// time, that it is owed again (a redelivery).
func (s *Store) MarkManifest(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE requests SET manifest_at = ? WHERE id = ?`, ts(at), id); err != nil {
		return fmt.Errorf("recording the manifest of request %s: %w", id, err)
	}
	return nil
}

// ManifestAt returns when request id's manifest reached the server; zero when never (or
// the request is unknown).
func (s *Store) ManifestAt(ctx context.Context, id string) (time.Time, error) {
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT manifest_at FROM requests WHERE id = ?`, id).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("manifest of request %s: %w", id, err)
	}
	return parseTS(at), nil
}

// Requests lists every stored request, ordered by id.
func (s *Store) Requests(ctx context.Context) ([]Request, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, fields, status, files, folder, state, updated_at, delivered FROM requests ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing requests: %w", err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		var r Request
		var upd string
		if err := rows.Scan(&r.ID, &r.Fields, &r.Status, &r.Files, &r.Folder, &r.State, &upd, &r.Delivered); err != nil {
			return nil, fmt.Errorf("listing requests: %w", err)
		}
		r.UpdatedAt = parseTS(upd)
		out = append(out, r)
	}
	return out, rows.Err()
}
