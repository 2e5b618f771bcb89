//go:build unix

package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// The journal names every file, request and remote path: whatever the umask, a new state
// database is 0600 (and so are SQLite's -wal and -shm, which copy its mode) and a folder made
// for it 0750 (issue 10). Not parallel: the umask belongs to the whole process.
func TestNewDatabaseModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0, 0o077} {
		t.Run(fmt.Sprintf("umask %03o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			dir := filepath.Join(t.TempDir(), "state")
			s, err := Open(filepath.Join(dir, "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.SaveFile(context.Background(), File{Path: "/srv/a", State: "settling", UpdatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string]os.FileMode{"": 0o750 | os.ModeDir, "state.db": 0o600, "state.db-wal": 0o600} {
				fi, err := os.Stat(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode() & (os.ModeDir | os.ModePerm); got != want {
					t.Errorf("%s: mode %v, want %v", filepath.Join("state", name), got, want)
				}
			}
		})
	}
}
