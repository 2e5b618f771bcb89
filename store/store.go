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
	// v5: the request was delivered whole once: a request of any number of files (files = 0)
	// is "already delivered" by it, not by its first file delivered (one that failed must go
	// when retried), and after a restart too. Journals from before: as they were judged then.
	`ALTER TABLE requests ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0;
	UPDATE requests SET delivered = 1 WHERE state = 'delivered'
		OR (files = 0 AND EXISTS (SELECT 1 FROM files WHERE files.request_id = requests.id AND files.delivered_at != '')
			AND NOT EXISTS (SELECT 1 FROM files WHERE files.request_id = requests.id AND files.delivered_at = ''
				AND files.state != 'settling' AND NOT (files.state = 'held' AND files.reason = 'already_delivered')));`,
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

// ErrOtherSchema: a journal OpenReadOnly will not read, as its schema is not this build's.
var ErrOtherSchema = errors.New("the state database's schema is not the one this hotdrop reads")

// OpenReadOnly opens the journal at path to read it, as the daemon may be writing it:
// nothing is created, migrated or written (SQLite's mode=ro, and query_only). A command that
// only looks (explain) must not migrate the journal of a daemon still running an older build,
// nor make it one that build refuses. A journal of another schema version is refused
// (ErrOtherSchema): its columns are not the ones read here.
func OpenReadOnly(path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	dsn := "file:" + filepath.ToSlash(path) + "?mode=ro&_pragma=query_only(1)&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("state database %s: reading schema version: %w", path, err)
	}
	if v != schemaVersion {
		db.Close()
		return nil, fmt.Errorf("state database %s has schema version %d, this hotdrop reads %d: %w", path, v, schemaVersion, ErrOtherSchema)
	}
	return &Store{db: db, path: path}, nil
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
