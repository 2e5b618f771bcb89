package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckNoticesLostJournal: a real SQLite file whose state_dir is deleted, whose database
// file is replaced, or whose folder turns read-only under the open Store fails Check with a
// sentence naming the path; an intact one passes.
func TestCheckNoticesLostJournal(t *testing.T) {
	ctx := context.Background()
	t.Run("intact", func(t *testing.T) {
		s, _ := openTemp(t)
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check() on an intact journal = %v", err)
		}
	})
	t.Run("state_dir deleted", func(t *testing.T) {
		s, path := openTemp(t)
		if err := os.RemoveAll(filepath.Dir(path)); err != nil {
			t.Fatal(err)
		}
		// SQLite still writes happily into the deleted file: that is the danger.
		if _, err := s.SaveFile(ctx, File{Path: "/drop/a", State: "ready"}); err != nil {
			t.Fatalf("SaveFile after the delete = %v (the test expects SQLite not to notice)", err)
		}
		wantLost(t, s.Check(ctx), path)
	})
	t.Run("database replaced", func(t *testing.T) {
		s, path := openTemp(t)
		if err := os.Rename(path, path+".old"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		wantLost(t, s.Check(ctx), path)
	})
	t.Run("read-only", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "state.db")
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Check(ctx); err != nil {
			t.Fatalf("Check() before = %v", err)
		}
		how := "chmod 0555"
		if os.Geteuid() == 0 {
			// Root writes through a folder's mode, and a mount with the database open for
			// writing cannot be remounted read-only: the immutable attribute stops root.
			if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
				t.Skipf("as root only chattr +i makes a folder refuse new files, and it failed here: %v: %s", err, out)
			}
			t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
			how = "chattr +i"
		} else if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		} else {
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
		}
		t.Logf("state_dir made read-only with %s", how)
		wantLost(t, s.Check(ctx), dir)
	})
}

func wantLost(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrJournalLost) {
		t.Fatalf("Check() = %v, want ErrJournalLost", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Check() = %q, want it to name %s", err, path)
	}
}
