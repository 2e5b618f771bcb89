// Saving request records: only those the journal does not already hold.

package delivery

import (
	"context"
	"time"
)

// RequestLister is a Store that can list the request records it holds. SetRequests then saves
// only the records that differ from them: a restart with 10,000 unchanged requests otherwise
// rewrote all 10,000 rows before the daemon was ready.
type RequestLister interface {
	RequestRecords(ctx context.Context) ([]RequestRecord, error)
}

// heldRequests starts reading the request records the journal holds and returns the wait for
// them: nil records when the store cannot list them or failed to.
func (e *Engine) heldRequests(ctx context.Context) (wait func() []RequestRecord) {
	l, ok := e.st.(RequestLister)
	if !ok {
		return func() []RequestRecord { return nil }
	}
	ch := make(chan []RequestRecord, 1)
	go func() {
		held, err := l.RequestRecords(ctx)
		if err != nil {
			held = nil // saving them all is what was done before; SaveRequests says what fails
		}
		ch <- held
	}()
	return func() []RequestRecord { return <-ch }
}

// changedRequests returns the records of recs that held (the journal's) does not have as they
// are, UpdatedAt left out of the comparison (it is when the record was made, not part of what
// it says). A nil held keeps them all.
func changedRequests(recs, held []RequestRecord) []RequestRecord {
	if held == nil {
		return recs
	}
	byID := make(map[string]RequestRecord, len(held))
	for _, r := range held {
		byID[r.ID] = r
	}
	out := recs[:0:0]
	for _, r := range recs {
		if h, ok := byID[r.ID]; ok && sameRequestRecord(h, r) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// sameRequestRecord compares every field but UpdatedAt.
func sameRequestRecord(a, b RequestRecord) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return a == b
}
