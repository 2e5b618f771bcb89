package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrJournalLost is wrapped by Check's errors: the journal can no longer be trusted to keep
// what is written to it.
var ErrJournalLost = errors.New("the state database is no longer usable")

// ErrNotChecked is wrapped by Check's errors when it could not look at all, for want of
// this process's own resources (too many open files): that says nothing of the journal, and
// taking it for a lost one let a flood of connections stop the daemon.
var ErrNotChecked = errors.New("the state database could not be checked")

// Check reports whether the journal is still usable where Open found it: the database file
// at Path is the one Open opened (same device and inode: not deleted, not replaced) and its
// folder takes new files. A state_dir deleted or made read-only under a running process is
// otherwise silent: SQLite goes on writing into the deleted file through its open descriptor,
// and everything recorded is gone at the next start. Check is cheap (two stats and an empty
// file created and removed) and safe to call from any goroutine.
func (s *Store) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	now, err := os.Stat(s.path)
	switch {
	case outOfResources(err):
		return fmt.Errorf("%w: %v", ErrNotChecked, err)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s was deleted while hotdrop was running (is state_dir %s still there?)", ErrJournalLost, s.path, dir)
	case err != nil:
		return fmt.Errorf("%w: cannot look at %s: %v", ErrJournalLost, s.path, err)
	case s.opened != nil && !os.SameFile(s.opened, now):
		return fmt.Errorf("%w: %s was replaced by another file while hotdrop was running", ErrJournalLost, s.path)
	}
	f, err := os.CreateTemp(dir, ".hotdrop-writable-*")
	if outOfResources(err) {
		return fmt.Errorf("%w: %v", ErrNotChecked, err)
	}
	if err != nil {
		return fmt.Errorf("%w: state_dir %s no longer takes new files (read-only?): %v", ErrJournalLost, dir, err)
	}
	name := f.Name()
	cerr := f.Close()
	if rerr := os.Remove(name); cerr == nil {
		cerr = rerr
	}
	if cerr != nil {
		return fmt.Errorf("%w: state_dir %s: %v", ErrJournalLost, dir, cerr)
	}
	return nil
}

// outOfResources reports an error that is this process's or the system's want of file
// descriptors or memory, not a fault of what was looked at.
func outOfResources(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOMEM)
}
