package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver: no cgo on Windows or macOS
)

// schemaVersion is the version this build writes; migrations below bring older files up to it.
var schemaVersion = len(migrations)

// migrations[i] moves a database from version i to i+1. Never edit a released entry: append
// one (schemaVersion follows the length of this list).
var migrations = []string{
	`CREATE TABLE requests (
		id         TEXT PRIMARY KEY,
		fields     TEXT NOT NULL,          -- JSON object of the request's string fields
		status     TEXT NOT NULL,          -- the studio's status (open, closed, ...)
		files      INTEGER NOT NULL,       -- how many files fulfil it; 0 = ready marker
		folder     TEXT NOT NULL,          -- absolute drop folder
		state      TEXT NOT NULL,          -- hotdrop's delivery state
		updated_at TEXT NOT NULL
	);
	CREATE TABLE files (
		id            INTEGER PRIMARY KEY,
		path          TEXT NOT NULL UNIQUE,  -- absolute local path
		request_id    TEXT NOT NULL,
		size          INTEGER NOT NULL,
		mtime_ns      INTEGER NOT NULL,
		inode         INTEGER NOT NULL,
		state         TEXT NOT NULL,
		reason        TEXT NOT NULL DEFAULT '',
		message       TEXT NOT NULL DEFAULT '',
		sha256        TEXT NOT NULL DEFAULT '',
		remote_path   TEXT NOT NULL DEFAULT '',
		rename_intent INTEGER NOT NULL DEFAULT 0,
		created_at    TEXT NOT NULL,
		updated_at    TEXT NOT NULL,
		delivered_at  TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX files_request ON files(request_id);
	CREATE INDEX files_intent ON files(rename_intent) WHERE rename_intent = 1;`,
	// v2: where an interrupted upload may resume. Keyed by the local path, not
	// files.id: one-shot `hotdrop send` resumes too, without a request.
	`CREATE TABLE checkpoints (
		path       TEXT PRIMARY KEY,       -- absolute local path
		partial    TEXT NOT NULL,          -- full remote path of the .NAME.partial
		offset     INTEGER NOT NULL,       -- contiguous bytes the server acknowledged
		size       INTEGER NOT NULL,       -- the local file when the checkpoint was taken
		mtime_ns   INTEGER NOT NULL,
		inode      INTEGER NOT NULL,
		updated_at TEXT NOT NULL
	);`,
	// v3: the events journal (every event but file.progress) and the outbox of deliveries
	// still owed to the webhook and the tracker, so a receiver that is down for hours loses
	// nothing across restarts. See events.go.
	`CREATE TABLE events (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		id         TEXT NOT NULL UNIQUE,   -- the event's stable id (receivers de-duplicate on it)
		type       TEXT NOT NULL,
		request_id TEXT NOT NULL DEFAULT '',
		at         TEXT NOT NULL,
		body       TEXT NOT NULL           -- the event as JSON, exactly as sent
	);
	CREATE INDEX events_request ON events(request_id, seq);
	CREATE TABLE outbox (
		seq        INTEGER PRIMARY KEY AUTOINCREMENT,
		target     TEXT NOT NULL,          -- "webhook" or "tracker"
		event_seq  INTEGER NOT NULL REFERENCES events(seq),
		attempts   INTEGER NOT NULL DEFAULT 0,
		next_try   TEXT NOT NULL DEFAULT '',
		last_error TEXT NOT NULL DEFAULT '',
		UNIQUE(target, event_seq)
	);
	CREATE INDEX outbox_target ON outbox(target, seq);`,
	// v4: when a delivered request's manifest reached the server, so a crash between its
	// last file and its manifest sends the manifest on the next start.
	`ALTER TABLE requests ADD COLUMN manifest_at TEXT NOT NULL DEFAULT '';`,
}

// ErrNotFound is returned by lookups for a record that does not exist.
var ErrNotFound = errors.New("not found")

// Store is an open journal. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	path   string
	opened os.FileInfo // the database file as Open found it, for Check

	// stmts are the statements every batch runs, prepared once: preparing them per
	// transaction was a tenth of the daemon's CPU at 50,000 frames (profile of bench/scale).
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt
}

const (
	upsertFileQuery = `INSERT INTO files(path, request_id, size, mtime_ns, inode, state, reason, message,
			sha256, remote_path, rename_intent, created_at, updated_at, delivered_at)
		VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(path) DO UPDATE SET request_id=excluded.request_id, size=excluded.size, mtime_ns=excluded.mtime_ns,
			inode=excluded.inode, state=excluded.state, reason=excluded.reason, message=excluded.message,
			sha256=excluded.sha256, remote_path=excluded.remote_path, rename_intent=excluded.rename_intent,
			updated_at=excluded.updated_at, delivered_at=excluded.delivered_at
		RETURNING id`
	updateFileQuery = `UPDATE files SET request_id=?, size=?, mtime_ns=?, inode=?, state=?, reason=?, message=?,
			sha256=?, remote_path=?, rename_intent=?, updated_at=?, delivered_at=? WHERE id = ? AND path = ?`
	markIntentQuery = `UPDATE files SET rename_intent = 1, remote_path = ?, sha256 = ?, updated_at = ? WHERE path = ?`
)

// hotQueries are prepared when the journal opens (prepareHot): every batch runs them.
var hotQueries = []string{upsertFileQuery, updateFileQuery, markIntentQuery, insertEventQuery, queueEventQuery}

// prepareHot prepares hotQueries on the journal's one connection. Eagerly: a statement
// prepared lazily inside a transaction would wait for the connection the transaction holds.
func (s *Store) prepareHot() error {
	s.stmts = make(map[string]*sql.Stmt, len(hotQueries))
	for _, q := range hotQueries {
		st, err := s.db.Prepare(q)
		if err != nil {
			return fmt.Errorf("state database %s: %w", s.path, err)
		}
		s.stmts[q] = st
	}
	return nil
}

// txStmt is a hot query's statement, for use inside tx (which reuses it on its connection).
func (s *Store) txStmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	s.stmtMu.Lock()
	st := s.stmts[query]
	s.stmtMu.Unlock()
	if st == nil {
		return tx.PrepareContext(ctx, query) // not a hot query, or the journal is closed
	}
	return tx.StmtContext(ctx, st), nil
}

// Request is the stored copy of a Source Request and its delivery state.
type Request struct {
	ID        string
	Fields    string // JSON object
	Status    string
	Files     int
	Folder    string
	State     string
	UpdatedAt time.Time
}

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

// Open opens (creating if needed) the journal at path and brings its schema up to date.
func Open(path string) (*Store, error) {
	if err := prepareFiles(path); err != nil {
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	dsn := "file:" + filepath.ToSlash(path) +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	// One connection: SQLite serialises writers anyway, and one connection means no
	// SQLITE_BUSY between our own goroutines.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.prepareHot(); err != nil {
		s.Close()
		return nil, err
	}
	if s.opened, err = os.Stat(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	return s, nil
}

// prepareFiles makes the database's folder 0750 and the database file 0600 when it creates
// them, whatever the umask: the journal names every file, request and remote path, and SQLite
// gives its -wal and -shm files the database file's mode. Existing ones are left as the
// administrator set them.
func prepareFiles(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		if err := os.Chmod(dir, 0o750); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Chmod(0o600)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Path is the database file, for messages.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	s.stmtMu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.stmtMu.Unlock()
	return s.db.Close()
}

func (s *Store) migrate() error {
	var v int
	if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("state database %s: reading schema version: %w", s.path, err)
	}
	if v > schemaVersion {
		return fmt.Errorf("state database %s has schema version %d, newer than this hotdrop understands (%d): upgrade hotdrop or use another state_dir", s.path, v, schemaVersion)
	}
	for ; v < schemaVersion; v++ {
		tx, err := s.db.Begin()
		if err != nil {
			return fmt.Errorf("state database %s: %w", s.path, err)
		}
		if _, err := tx.Exec(migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("state database %s: migrating to version %d: %w", s.path, v+1, err)
		}
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("state database %s: %w", s.path, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("state database %s: %w", s.path, err)
		}
	}
	return nil
}

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseTS(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
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
	return s.inTx(ctx, `INSERT INTO requests(id, fields, status, files, folder, state, updated_at)
		VALUES(?,?,?,?,?,?,?)
		ON CONFLICT(id) DO UPDATE SET fields=excluded.fields, status=excluded.status, files=excluded.files,
			folder=excluded.folder, state=excluded.state, updated_at=excluded.updated_at`, func(stmt *sql.Stmt) error {
		for _, r := range rs {
			if r.UpdatedAt.IsZero() {
				r.UpdatedAt = time.Now()
			}
			if _, err := stmt.ExecContext(ctx, r.ID, r.Fields, r.Status, r.Files, r.Folder, r.State, ts(r.UpdatedAt)); err != nil {
				return fmt.Errorf("saving request %s: %w", r.ID, err)
			}
		}
		return nil
	})
}

// inTx runs fn with query prepared in a transaction, and commits when fn returns nil.
func (s *Store) inTx(ctx context.Context, query string, fn func(*sql.Stmt) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	defer stmt.Close()
	if err := fn(stmt); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

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
	rows, err := s.db.QueryContext(ctx, `SELECT id, fields, status, files, folder, state, updated_at FROM requests ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing requests: %w", err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		var r Request
		var upd string
		if err := rows.Scan(&r.ID, &r.Fields, &r.Status, &r.Files, &r.Folder, &r.State, &upd); err != nil {
			return nil, fmt.Errorf("listing requests: %w", err)
		}
		r.UpdatedAt = parseTS(upd)
		out = append(out, r)
	}
	return out, rows.Err()
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
func (s *Store) SaveFiles(ctx context.Context, fs []File) ([]int64, error) {
	ids := make([]int64, len(fs))
	if len(fs) == 0 {
		return ids, nil
	}
	now := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer tx.Rollback()
	upsert, err := s.txStmt(ctx, tx, upsertFileQuery)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer upsert.Close()
	update, err := s.txStmt(ctx, tx, updateFileQuery)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer update.Close()
	for i, f := range fs {
		if f.UpdatedAt.IsZero() {
			f.UpdatedAt = now
		}
		intent := 0
		if f.RenameIntent {
			intent = 1
		}
		if f.ID != 0 {
			res, err := update.ExecContext(ctx, f.RequestID, f.Size, f.ModTime.UnixNano(), int64(f.Inode), f.State, f.Reason, f.Message,
				f.SHA256, f.RemotePath, intent, ts(f.UpdatedAt), ts(f.DeliveredAt), f.ID, f.Path)
			if err != nil {
				return nil, fmt.Errorf("saving file %s: %w", f.Path, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				ids[i] = f.ID
				continue
			}
			// Forgotten meanwhile (DeleteFile): inserted again below.
		}
		err := upsert.QueryRowContext(ctx, f.Path, f.RequestID, f.Size, f.ModTime.UnixNano(), int64(f.Inode), f.State, f.Reason, f.Message,
			f.SHA256, f.RemotePath, intent, ts(now), ts(f.UpdatedAt), ts(f.DeliveredAt)).Scan(&ids[i])
		if err != nil {
			return nil, fmt.Errorf("saving file %s: %w", f.Path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
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
// their rename together share it); errs[i] is intents[i]'s outcome.
func (s *Store) MarkRenameIntents(ctx context.Context, intents []RenameIntent) (errs []error) {
	errs = make([]error, len(intents))
	fail := func(err error) []error {
		for i, in := range intents {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("recording rename intent for %s: %w", in.Path, err)
			}
		}
		return errs
	}
	// Everything else is committed with synchronous=NORMAL (WAL: survives a killed process,
	// and a record lost to a power cut is re-derived from the disk and the server). This one
	// record guards against a double delivery, so it alone waits for a full sync. The pool
	// has one connection, so the pragma cannot leak to another statement in between.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return fail(err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	now := ts(time.Now())
	mark, err := s.txStmt(ctx, tx, markIntentQuery)
	if err != nil {
		return fail(err)
	}
	defer mark.Close()
	for i, in := range intents {
		res, err := mark.ExecContext(ctx, in.Remote, in.SHA256, now, in.Path)
		if err != nil {
			return fail(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			errs[i] = fmt.Errorf("recording rename intent for %s: %w", in.Path, ErrNotFound)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return errs
}

// DeleteFile forgets the record of the file at path.
func (s *Store) DeleteFile(ctx context.Context, path string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM files WHERE path = ?`, path); err != nil {
		return fmt.Errorf("forgetting file %s: %w", path, err)
	}
	return nil
}

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
