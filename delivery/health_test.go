package delivery

import (
	"context"
	"fmt"
	"testing"
)

// notCheckedStore is a journal that cannot be looked at: this process is out of descriptors.
type notCheckedStore struct{ *memStore }

func (notCheckedStore) Check(context.Context) error {
	return fmt.Errorf("%w: open state/.hotdrop-writable-1: too many open files", ErrJournalNotChecked)
}

// TestJournalNotCheckedIsNoLoss: a look at the journal that could not be made (hotdrop is
// short of descriptors: a flood of connections to the dashboard did it) says so and goes on;
// taking it for a lost journal stopped the daemon and cancelled its uploads.
func TestJournalNotCheckedIsNoLoss(t *testing.T) {
	e := New(Options{Root: t.TempDir()}, newFakeUploader(), notCheckedStore{newMemStore()}, &viewLog{})
	if err := e.checkJournal(context.Background()); err != nil {
		t.Fatalf("checkJournal: %v; want nil, the journal is not known lost", err)
	}
}
