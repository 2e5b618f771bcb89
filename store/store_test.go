package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestFileRoundTripAndReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	mtime := time.Unix(1700000000, 123456789)
	want := File{Path: "/drop/a.ttml", RequestID: "SR-1", Size: 42, ModTime: mtime, Inode: 77, State: "ready"}
	id, err := s.SaveFile(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRenameIntent(ctx, want.Path, "/in/a.ttml", "abc"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2, err := Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	got, err := s2.File(ctx, want.Path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != id || got.Size != 42 || !got.ModTime.Equal(mtime) || got.Inode != 77 || !got.RenameIntent ||
		got.RemotePath != "/in/a.ttml" || got.SHA256 != "abc" || got.State != "ready" {
		t.Errorf("File after reopen = %+v", got)
	}
	pending, err := s2.PendingRenames(ctx)
	if err != nil || len(pending) != 1 || pending[0].Path != want.Path {
		t.Errorf("PendingRenames = %v, %v; want the one file", pending, err)
	}

	// Saving again by path updates the same row.
	got.State, got.RenameIntent = "delivered", false
	id2, err := s2.SaveFile(ctx, got)
	if err != nil || id2 != id {
		t.Fatalf("SaveFile update id = %d, %v; want %d", id2, err, id)
	}
	if pending, _ := s2.PendingRenames(ctx); len(pending) != 0 {
		t.Errorf("PendingRenames after delivery = %v, want none", pending)
	}
}

func TestFileNotFound(t *testing.T) {
	s, _ := openTemp(t)
	if _, err := s.File(context.Background(), "/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("File(missing) error = %v, want ErrNotFound", err)
	}
	if err := s.MarkRenameIntent(context.Background(), "/nope", "x", "y"); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkRenameIntent(missing) error = %v, want ErrNotFound", err)
	}
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for _, r := range []Request{
		{ID: "SR-2", Fields: `{"title":"B"}`, Status: "open", Files: 1, Folder: "/d/b", State: "waiting"},
		{ID: "SR-1", Fields: `{"title":"A"}`, Status: "open", Files: 0, Folder: "/d/a", State: "waiting"},
		{ID: "SR-2", Fields: `{"title":"B2"}`, Status: "closed", Files: 1, Folder: "/d/b", State: "delivered"},
	} {
		if err := s.SaveRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := s.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].ID != "SR-1" || rs[1].Status != "closed" || rs[1].Fields != `{"title":"B2"}` {
		t.Errorf("Requests = %+v", rs)
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	s, path := openTemp(t)
	if _, err := s.db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path); err == nil {
		t.Fatal("Open of a database from a newer hotdrop succeeded; want a clear error")
	}
}

func TestCheckpoints(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if _, err := s.Checkpoint(ctx, "/drop/big.mxf"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Checkpoint(missing) error = %v, want ErrNotFound", err)
	}
	mtime := time.Unix(1700000000, 5)
	want := Checkpoint{Partial: "/in/.big.mxf.partial", Offset: 64 << 20, Size: 1 << 30, ModTime: mtime, Inode: 9}
	if err := s.SaveCheckpoint(ctx, "/drop/big.mxf", want); err != nil {
		t.Fatal(err)
	}
	want.Offset = 128 << 20
	if err := s.SaveCheckpoint(ctx, "/drop/big.mxf", want); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Checkpoint(ctx, "/drop/big.mxf")
	if err != nil || got.Partial != want.Partial || got.Offset != want.Offset || got.Size != want.Size ||
		!got.ModTime.Equal(mtime) || got.Inode != 9 {
		t.Errorf("Checkpoint() = %+v, %v; want %+v", got, err, want)
	}
	if err := s2.DeleteCheckpoint(ctx, "/drop/big.mxf"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Checkpoint(ctx, "/drop/big.mxf"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Checkpoint after delete error = %v, want ErrNotFound", err)
	}
}

// TestMigrateFromV1: a journal written by the foundation (version 1) opens, keeps its
// files and gains the checkpoints table.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations[0] + `; PRAGMA user_version = 1;
		INSERT INTO files(path, request_id, size, mtime_ns, inode, state, created_at, updated_at)
		VALUES('/drop/a', 'SR-1', 1, 0, 0, 'ready', '', '')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open(v1 journal): %v", err)
	}
	defer s.Close()
	if f, err := s.File(ctx, "/drop/a"); err != nil || f.RequestID != "SR-1" {
		t.Errorf("File after migration = %+v, %v", f, err)
	}
	if err := s.SaveCheckpoint(ctx, "/drop/a", Checkpoint{Partial: "/in/.a.partial", Offset: 1}); err != nil {
		t.Errorf("SaveCheckpoint after migration: %v", err)
	}
}

func TestManifestMark(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if err := s.SaveRequest(ctx, Request{ID: "SR-1", Fields: "{}", Status: "open", Files: 1, Folder: "/d", State: "delivered"}); err != nil {
		t.Fatal(err)
	}
	if at, err := s.ManifestAt(ctx, "SR-1"); err != nil || !at.IsZero() {
		t.Fatalf("ManifestAt before = %v, %v; want zero", at, err)
	}
	now := time.Now()
	if err := s.MarkManifest(ctx, "SR-1", now); err != nil {
		t.Fatal(err)
	}
	// Saving the request again (a state change) keeps the mark.
	if err := s.SaveRequest(ctx, Request{ID: "SR-1", Fields: "{}", Status: "open", Files: 1, Folder: "/d", State: "delivered"}); err != nil {
		t.Fatal(err)
	}
	if at, err := s.ManifestAt(ctx, "SR-1"); err != nil || !at.Equal(now.UTC().Truncate(0)) && at.Sub(now).Abs() > time.Millisecond {
		t.Errorf("ManifestAt after = %v, %v; want %v", at, err, now)
	}
}

// SaveFiles updates a file by its id and inserts one without; a file forgotten since its id
// was handed out is inserted again rather than lost.
func TestSaveFilesByIDAndAfterDelete(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	ids, err := s.SaveFiles(ctx, []File{{Path: "/d/a", State: "ready"}, {Path: "/d/b", State: "ready"}})
	if err != nil || ids[0] == 0 || ids[1] == 0 || ids[0] == ids[1] {
		t.Fatalf("ids %v, %v", ids, err)
	}
	again, err := s.SaveFiles(ctx, []File{{ID: ids[0], Path: "/d/a", State: "delivered", SHA256: "x"}})
	if err != nil || again[0] != ids[0] {
		t.Fatalf("update by id: %v, %v", again, err)
	}
	if f, err := s.File(ctx, "/d/a"); err != nil || f.State != "delivered" || f.SHA256 != "x" {
		t.Fatalf("after the update: %+v, %v", f, err)
	}
	if err := s.DeleteFile(ctx, "/d/b"); err != nil {
		t.Fatal(err)
	}
	back, err := s.SaveFiles(ctx, []File{{ID: ids[1], Path: "/d/b", State: "held"}})
	if err != nil || back[0] == 0 {
		t.Fatalf("save after delete: %v, %v", back, err)
	}
	if f, err := s.File(ctx, "/d/b"); err != nil || f.State != "held" {
		t.Fatalf("a forgotten file saved again: %+v, %v", f, err)
	}
}

// A statement that failed inside Write rolls the whole transaction back, even when the
// function given to Write went on and returned nil: a batch lands whole or not at all.
// SQLite keeps a transaction open after a statement's own abort, so a commit would keep the
// first half.
func TestWriteRollsBackAfterAFailedStatement(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if _, err := s.db.Exec(`CREATE TRIGGER refuse_b BEFORE INSERT ON files WHEN NEW.path = '/drop/b.exr'
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, false, func(tx *Tx) error {
		if _, err := tx.SaveFiles([]File{{Path: "/drop/a.exr", State: "settling"}}); err != nil {
			t.Fatalf("first save: %v", err)
		}
		if _, err := tx.SaveFiles([]File{{Path: "/drop/b.exr", State: "settling"}}); err == nil {
			t.Fatal("the trigger did not refuse b.exr")
		}
		// After a failure nothing more runs: SQLite may have ended the transaction already,
		// and a statement would then commit on its own.
		if _, err := tx.SaveFiles([]File{{Path: "/drop/c.exr", State: "settling"}}); err == nil {
			t.Fatal("a save after a failed one ran")
		}
		return nil // the caller ignores it: Write must not
	})
	if err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("Write: %v, want the statement's error", err)
	}
	if _, err := s.File(ctx, "/drop/a.exr"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a.exr: %v, want ErrNotFound (rolled back with b.exr)", err)
	}
}

// TestMigrateDeliveredWhole: a v4 journal's requests get their delivered-whole mark as they
// were judged then: delivered ones, and any-number ones with a file delivered.
func TestMigrateDeliveredWhole(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:4] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`PRAGMA user_version = 4;
		INSERT INTO requests(id, fields, status, files, folder, state, updated_at) VALUES
			('SR-1', '{}', 'open', 2, '/d/1', 'delivered', ''),
			('SR-2', '{}', 'open', 0, '/d/2', 'held', ''),
			('SR-3', '{}', 'open', 0, '/d/3', 'failed', ''),
			('SR-4', '{}', 'open', 2, '/d/4', 'held', ''),
			('SR-5', '{}', 'open', 0, '/d/5', 'failed', '');
		INSERT INTO files(path, request_id, size, mtime_ns, inode, state, created_at, updated_at, delivered_at) VALUES
			('/d/2/a', 'SR-2', 1, 0, 0, 'held', '', '', '2026-01-01T00:00:00Z'),
			('/d/3/a', 'SR-3', 1, 0, 0, 'failed', '', '', ''),
			('/d/4/a', 'SR-4', 1, 0, 0, 'delivered', '', '', '2026-01-01T00:00:00Z'),
			('/d/5/a', 'SR-5', 1, 0, 0, 'delivered', '', '', '2026-01-01T00:00:00Z'),
			('/d/5/b', 'SR-5', 1, 0, 0, 'failed', '', '', '')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs, err := s.Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// SR-5: one file delivered, another failed: not delivered whole, so the failed one goes
	// when it is retried.
	want := map[string]bool{"SR-1": true, "SR-2": true, "SR-3": false, "SR-4": false, "SR-5": false}
	for _, r := range rs {
		if r.Delivered != want[r.ID] {
			t.Errorf("%s (files %d, %s): delivered whole %v after the migration, want %v", r.ID, r.Files, r.State, r.Delivered, want[r.ID])
		}
	}
}

// TestDeliveredWholeIsNeverUnsaid: a start that could not read the journal's requests saved
// them all as it knew them, and a request delivered whole lost its mark for good (its later
// files were then sent without a redelivery). Once set, it stays.
func TestDeliveredWholeIsNeverUnsaid(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	r := Request{ID: "SR-1", Fields: "{}", Status: "open", Files: 0, Folder: "/d", State: "delivered", Delivered: true}
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Delivered, r.State = false, "held"
	if err := s.SaveRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	rs, err := s.Requests(ctx)
	if err != nil || len(rs) != 1 || !rs[0].Delivered || rs[0].State != "held" {
		t.Errorf("requests = %+v, %v; want SR-1 held and still delivered whole", rs, err)
	}
}

// TestOpenReadOnlyWritesNothing: a command that only looks at the journal (explain) leaves it
// as it was, byte for byte, and does not migrate a journal of an older schema (the daemon of
// an older build may still be running on it).
func TestOpenReadOnlyWritesNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveFile(context.Background(), File{Path: "/r/a.exr", RequestID: "SR-1", State: "delivered"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(p)
	if err != nil {
		t.Fatal(err)
	}
	if files, err := ro.Files(context.Background()); err != nil || len(files) != 1 {
		t.Errorf("files read: %v, %v", files, err)
	}
	if _, err := ro.SaveFile(context.Background(), File{Path: "/r/b.exr"}); err == nil {
		t.Error("a journal opened to read took a write")
	}
	ro.Close()
	if after, err := os.ReadFile(p); err != nil || !bytes.Equal(before, after) {
		t.Errorf("the journal changed when only read (%v)", err)
	}

	// An older schema: refused, and left at its version.
	older := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(older, before, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+older)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", schemaVersion-1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := OpenReadOnly(older); !errors.Is(err, ErrOtherSchema) {
		t.Errorf("an older journal: %v, want ErrOtherSchema", err)
	}
	db, err = sql.Open("sqlite", "file:"+older)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion-1 {
		t.Errorf("the older journal is at version %d (%v), want it left at %d", v, err, schemaVersion-1)
	}
}
