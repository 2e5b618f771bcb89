package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// JournalChecker is a Store's optional ability to tell that its journal is still usable: the
// database file it opened is still there under its name and its folder takes writes. The
// Engine asks every Options.JournalCheckEvery.
type JournalChecker interface {
	// Check returns nil while the journal is usable, an error wrapping ErrJournalNotChecked
	// when it could not look (this process is out of file descriptors), and any other error
	// when the journal is lost.
	Check(ctx context.Context) error
}

// ErrJournalNotChecked: the journal could not be looked at, for want of this process's own
// resources. That says nothing of the journal: hotdrop says so and goes on.
var ErrJournalNotChecked = errors.New("the state database could not be checked")

// ErrJournalLost is returned by Run when the journal stopped being usable: deliveries
// recorded after that would be lost, and a file delivered meanwhile would look like someone
// else's on the next start. The process should exit non-zero so the service manager
// restarts it on a journal it can trust.
var ErrJournalLost = errors.New("hotdrop stopped: its state database (state_dir) is gone or read-only")

// defaultJournalCheckEvery bounds how long a deleted or read-only state_dir goes unnoticed.
const defaultJournalCheckEvery = 5 * time.Second

// journalCheck arms the next look at the journal; nil, which never fires, when the Store
// cannot be checked.
func (e *Engine) journalCheck() <-chan time.Time {
	if _, ok := e.st.(JournalChecker); !ok {
		return nil
	}
	return e.opt.Clock.After(e.opt.JournalCheckEvery)
}

// checkJournal looks at the journal. When it is lost it says so (ERROR log and event),
// drops the queued uploads so that no new work starts, and returns the error that makes Run
// stop; uploads in flight are cancelled by Run and resume after the restart.
func (e *Engine) checkJournal(ctx context.Context) error {
	err := e.st.(JournalChecker).Check(ctx)
	if err == nil || ctx.Err() != nil {
		return nil
	}
	if errors.Is(err, ErrJournalNotChecked) {
		if now := e.opt.Clock.Now(); now.Sub(e.notCheckedSaid) >= time.Minute {
			e.notCheckedSaid = now
			e.log.Warn("cannot check the journal: hotdrop is short of file descriptors or memory; raise the service's open file limit (LimitNOFILE) if this lasts", "err", err)
		}
		return nil
	}
	msg := fmt.Sprintf("%v; hotdrop takes no new work and exits so that the service manager restarts it", err)
	e.log.Error("the journal can no longer be trusted", "err", err)
	e.pending, e.resumable, e.parked = nil, nil, nil
	e.emit(Event{Type: EventJournalLost, Reason: &EventReason{Code: "state_dir_unavailable", Message: msg}})
	return fmt.Errorf("%w: %v", ErrJournalLost, err)
}
