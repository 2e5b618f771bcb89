// Files: the record of each local file, its rename intent, what was delivered.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// File is the stored record of one local file: its identity (path, inode, size, mtime), its
// delivery state and, once delivered, where it went and its checksum.
type File struct {
	ID           int64
	Path         string
	RequestID    string
	Size         int64
	ModTime      time.Time
	Inode        uint64
	State        string
	Reason       string
	Message      string
	SHA256       string
	RemotePath   string
	RenameIntent bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DeliveredAt  time.Time
}

const fileCols = `id, path, request_id, size, mtime_ns, inode, state, reason, message, sha256, remote_path,
	rename_intent, created_at, updated_at, delivered_at`

func scanFile(sc interface{ Scan(...any) error }) (File, error) {
	var f File
	var mtime int64
	var inode int64
	var intent int
	var created, updated, delivered string
	err := sc.Scan(&f.ID, &f.Path, &f.RequestID, &f.Size, &mtime, &inode, &f.State, &f.Reason, &f.Message,
		&f.SHA256, &f.RemotePath, &intent, &created, &updated, &delivered)
	if err != nil {
		return File{}, err
	}
	f.ModTime = time.Unix(0, mtime)
	f.Inode = uint64(inode)
	f.RenameIntent = intent != 0
	f.CreatedAt, f.UpdatedAt, f.DeliveredAt = parseTS(created), parseTS(updated), parseTS(delivered)
	return f, nil
}

// SaveFile inserts or updates the record of a file, keyed by its path, and returns its id.
func (s *Store) SaveFile(ctx context.Context, f File) (int64, error) {
	ids, err := s.SaveFiles(ctx, []File{f})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// SaveFiles inserts or updates files in one transaction and returns their ids, in order. The
// daemon journals a batch of state changes at once: a commit per change was most of its CPU
// at render-farm sizes. A file with an id is updated by it (no rows returned, which costs
// a third of an upsert here); one without is upserted by path.
func (s *Store) SaveFiles(ctx context.Context, fs []File) (ids []int64, err error) {
	if len(fs) == 0 {
		return make([]int64, 0), nil
	}
	err = s.Write(ctx, false, func(t *Tx) error {
		ids, err = t.SaveFiles(fs)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// Identity is what a delivered file was when it was delivered.
type Identity struct {
	Size    int64
	ModTime time.Time
	Inode   uint64
}

// Delivered returns the identity of every file delivered and not changed since, by path: a
// restarted watcher does not report those again (watcher.Options.Settled).
func (s *Store) Delivered(ctx context.Context) (map[string]Identity, error) {
	n := s.countFiles(ctx) // at most: the map is sized once, not grown
	rows, err := s.db.QueryContext(ctx, `SELECT path, size, mtime_ns, inode FROM files WHERE state = 'delivered' AND rename_intent = 0`)
	if err != nil {
		return nil, fmt.Errorf("listing delivered files: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Identity, min(n, 1<<22))
	for rows.Next() {
		var p string
		var size, mtime, inode int64
		if err := rows.Scan(&p, &size, &mtime, &inode); err != nil {
			return nil, fmt.Errorf("listing delivered files: %w", err)
		}
		out[p] = Identity{Size: size, ModTime: time.Unix(0, mtime), Inode: uint64(inode)}
	}
	return out, rows.Err()
}

// File returns the record of the file at path, or ErrNotFound.
func (s *Store) File(ctx context.Context, path string) (File, error) {
	f, err := scanFile(s.db.QueryRowContext(ctx, `SELECT `+fileCols+` FROM files WHERE path = ?`, path))
	if errors.Is(err, sql.ErrNoRows) {
		return File{}, fmt.Errorf("file %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return File{}, fmt.Errorf("file %s: %w", path, err)
	}
	return f, nil
}

// Files lists every file record, ordered by path.
func (s *Store) Files(ctx context.Context) ([]File, error) {
	return s.queryFiles(ctx, s.countFiles(ctx), `SELECT `+fileCols+` FROM files ORDER BY path`)
}

// countFiles is how many file records there are, to size what reads them all: appending
// 100,000 records of 240 bytes one by one grows the list by a quarter at a time, and made
// five times its size in copies at every start (issue 11). 0 when it cannot tell. It is
// asked before the rows are open: the one connection serves one query at a time.
func (s *Store) countFiles(ctx context.Context) int {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM files`).Scan(&n); err != nil {
		return 0
	}
	return n
}

// PendingRenames lists files whose intent to rename was recorded but not yet followed by a
// delivered record: after a crash, each is either delivered already (the rename happened) or
// must be sent again.
func (s *Store) PendingRenames(ctx context.Context) ([]File, error) {
	return s.queryFiles(ctx, 0, `SELECT `+fileCols+` FROM files WHERE rename_intent = 1 ORDER BY path`)
}

// queryFiles lists the files q selects; n is how many are expected (0: unknown).
func (s *Store) queryFiles(ctx context.Context, n int, q string, args ...any) ([]File, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing files: %w", err)
	}
	defer rows.Close()
	out := make([]File, 0, min(n, 1<<22)) // a hint: rows may come or go meanwhile
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, fmt.Errorf("listing files: %w", err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// MarkRenameIntent records, durably, that the file at path is about to be renamed into place
// at remote with the given checksum. It is the guard against a double delivery after a crash.
func (s *Store) MarkRenameIntent(ctx context.Context, path, remote, sha256 string) error {
	errs := s.MarkRenameIntents(ctx, []RenameIntent{{Path: path, Remote: remote, SHA256: sha256}})
	return errs[0]
}

// RenameIntent is one file about to be renamed into place at Remote.
type RenameIntent struct{ Path, Remote, SHA256 string }

// MarkRenameIntents records several rename intents with one full sync (uploads that reach
// their rename together share it); errs[i] is intents[i]'s outcome. Of all the journal's
// writes only these wait for a full sync: an intent lost to a power cut after its rename
// would deliver the file twice, while any other record lost is re-derived from the disk and
// the server.
func (s *Store) MarkRenameIntents(ctx context.Context, intents []RenameIntent) (errs []error) {
	err := s.Write(ctx, true, func(t *Tx) error {
		errs = t.MarkRenameIntents(intents)
		return nil
	})
	if err != nil { // the commit, or a statement that failed them all already
		if errs == nil {
			errs = make([]error, len(intents))
		}
		for i, in := range intents {
			if errs[i] == nil || !errors.Is(errs[i], err) {
				errs[i] = fmt.Errorf("recording rename intent for %s: %w", in.Path, err)
			}
		}
	}
	return errs
}

// DeleteFile forgets the record of the file at path.
func (s *Store) DeleteFile(ctx context.Context, path string) error {
	return s.Write(ctx, false, func(t *Tx) error { return t.DeleteFile(path) })
}
