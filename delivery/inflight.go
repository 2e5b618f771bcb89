package delivery

import (
	"context"
	"slices"
	"sync"
)

// InFlighter is an Uploader's optional advice on how many uploads to keep going at once. A
// small file on a long link waits on round trips, not on bytes, so many of them in flight
// keep the link busy, where as many large ones would only share it and hold buffers. The
// engine keeps up to FilesInFlight(Concurrency) uploads going (never fewer than twice
// Concurrency: see inFlight), of which those of SmallFileMax() bytes or more at most
// Concurrency.
type InFlighter interface {
	FilesInFlight(concurrency int) int
	SmallFileMax() int64
}

// inFlight is how many uploads the engine keeps going now, and the size from which a file
// counts as large (0: every file is counted alike). Small files are twice Concurrency at
// least: each also waits at its rename for the journal's group commit (journalGather), which
// `hotdrop send` does not, and with only Concurrency of them the link and the CPU idled
// meanwhile. On 20,000 frames of 4 KiB to a local sshd, 16 rather than 8 in flight took the
// daemon from 0.63-0.69 to 0.87-0.95 of send's files a second, and its CPU a frame from
// 0.55-0.65 to 0.46-0.48 ms (bigger commits); send itself gained nothing from 16 (issue 11).
//
// A Concurrency of 1 is kept as it is: one file at a time is what such a setting asks for
// (a server that allows one upload at a time, deliveries that must arrive in order).
func (e *Engine) inFlight() (int, int64) {
	if f, ok := e.up.(InFlighter); ok {
		small := 2 * e.opt.Concurrency
		if e.opt.Concurrency <= 1 {
			small = 1
		}
		return max(f.FilesInFlight(e.opt.Concurrency), small, e.opt.Concurrency), f.SmallFileMax()
	}
	return e.opt.Concurrency, 0
}

// bigSlots are the places of large uploads: Concurrency of them, while more small files may
// be in flight. An upload dispatched beyond them waits in its goroutine for one, in the order
// the loop dispatched them (its ticket): the loop starts files with a partial on the server
// first, and places handed out in whatever order goroutines woke let a file never begun
// overtake them and leave one more partial behind at each kill.
type bigSlots struct {
	mu      sync.Mutex
	limit   int           // set by the loop at each dispatch (a reload may change it)
	n       int           // large uploads going
	waiting int           // large uploads waiting for a place
	issued  uint64        // tickets handed out (ticket)
	order   []uint64      // tickets not served yet, in the order they were handed out
	changed chan struct{} // closed and replaced when one ends or the limit changes
}

// ticket is the loop's: the place in line of a large upload it dispatches now.
func (b *bigSlots) ticket() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.issued
	b.issued++
	b.order = append(b.order, t)
	return t
}

func (b *bigSlots) setLimit(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n != b.limit {
		b.limit = n
		b.wake()
	}
}

func (b *bigSlots) wake() {
	if b.changed != nil {
		close(b.changed)
	}
	b.changed = make(chan struct{})
}

// take waits for a place, and for every ticket before t to have one; false when ctx ended
// first (t then leaves the line).
func (b *bigSlots) take(ctx context.Context, t uint64) bool {
	for {
		b.mu.Lock()
		if b.n < b.limit && len(b.order) > 0 && b.order[0] == t {
			b.order = b.order[1:]
			b.n++
			b.wake() // the next in line may fit too
			b.mu.Unlock()
			return true
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.waiting++
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		b.mu.Lock()
		b.waiting--
		if ctx.Err() != nil {
			if i := slices.Index(b.order, t); i >= 0 {
				b.order = slices.Delete(b.order, i, i+1)
				b.wake()
			}
			b.mu.Unlock()
			return false
		}
		b.mu.Unlock()
	}
}

func (b *bigSlots) give() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n--
	b.wake()
}

// claimRemote reserves fs's remote path for its upload, or parks fs behind the upload that
// holds it, to be queued again when that one ends (releaseRemote). Two different files reach
// one remote path when, say, a drop folder's file and a File Bin file of the same request have
// the same name: at once they would write one partial over the other, and the file published
// could mix both. One after the other, the second finds the name taken (remote_exists). A
// file already being sent (a second entry of it in the queues) is not sent again.
func (e *Engine) claimRemote(fs *fileState) bool {
	rel := fs.rec.RemotePath
	if rel == "" {
		return true
	}
	switch holder, held := e.sending[rel]; {
	case held && holder == fs.rec.Path:
		return false
	case held:
		if e.parked == nil {
			e.parked = map[string][]*fileState{}
		}
		e.parked[rel] = append(e.parked[rel], fs)
		fs.setMore().parkedBehind = holder
		return false
	}
	if e.sending == nil {
		e.sending = map[string]string{}
	}
	e.sending[rel] = fs.rec.Path
	if fs.more != nil {
		fs.more.parkedBehind = ""
	}
	return true
}

// releaseRemote frees the remote path rel that the upload of the file at path held (the file
// may be forgotten by now), and queues the files parked behind it again, first in line (they
// were ready before the files queued since).
func (e *Engine) releaseRemote(path, rel string) {
	if holder, held := e.sending[rel]; !held || holder != path {
		return
	}
	delete(e.sending, rel)
	if waiting := e.parked[rel]; len(waiting) > 0 {
		delete(e.parked, rel)
		e.pending = append(waiting, e.pending...)
	}
}
