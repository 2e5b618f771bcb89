// Checkpoints: how far an interrupted upload came, to resume it.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Checkpoint records how far an interrupted upload of a local file came: the server
// acknowledged every byte of Partial below Offset, and the local file then had Size, ModTime
// and Inode. Its fields match uploader.Checkpoint so the wiring converts one to the other.
type Checkpoint struct {
	Partial string
	Offset  int64
	Size    int64
	ModTime time.Time
	Inode   uint64
}

// SaveCheckpoint records (replacing any earlier one) the resume point of the upload of the
// local file at path. Uploads call it about once a second, so it is one small statement.
func (s *Store) SaveCheckpoint(ctx context.Context, path string, c Checkpoint) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO checkpoints(path, partial, offset, size, mtime_ns, inode, updated_at)
		VALUES(?,?,?,?,?,?,?)
		ON CONFLICT(path) DO UPDATE SET partial=excluded.partial, offset=excluded.offset, size=excluded.size,
			mtime_ns=excluded.mtime_ns, inode=excluded.inode, updated_at=excluded.updated_at`,
		path, c.Partial, c.Offset, c.Size, c.ModTime.UnixNano(), int64(c.Inode), ts(time.Now()))
	if err != nil {
		return fmt.Errorf("saving upload checkpoint of %s: %w", path, err)
	}
	return nil
}

// Checkpoint returns the resume point recorded for the local file at path, or ErrNotFound.
func (s *Store) Checkpoint(ctx context.Context, path string) (Checkpoint, error) {
	var c Checkpoint
	var mtime, inode int64
	err := s.db.QueryRowContext(ctx, `SELECT partial, offset, size, mtime_ns, inode FROM checkpoints WHERE path = ?`, path).
		Scan(&c.Partial, &c.Offset, &c.Size, &mtime, &inode)
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, fmt.Errorf("upload checkpoint of %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("upload checkpoint of %s: %w", path, err)
	}
	c.ModTime, c.Inode = time.Unix(0, mtime), uint64(inode)
	return c, nil
}

// CheckpointPaths lists the local files that have a resume point: the daemon asks for one
// file's only when it is among them (a query per file, 100,000 at once when a big request
// completes, blocked its loop).
func (s *Store) CheckpointPaths(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT path FROM checkpoints`)
	if err != nil {
		return nil, fmt.Errorf("listing upload checkpoints: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("listing upload checkpoints: %w", err)
		}
		out[p] = true
	}
	return out, rows.Err()
}

// DeleteCheckpoint forgets the resume point of the local file at path: after delivery, or
// when the upload must start over. Forgetting one that does not exist is not an error.
func (s *Store) DeleteCheckpoint(ctx context.Context, path string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM checkpoints WHERE path = ?`, path); err != nil {
		return fmt.Errorf("forgetting upload checkpoint of %s: %w", path, err)
	}
	return nil
}
