package netdelay

import (
	"sync"
	"time"
)

const (
	readSize  = 64 << 10
	smallRead = 8 << 10 // reads under this are copied out, so a queue of small chunks does not pin 64 KiB each
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { *b = (*b)[:readSize]; bufPool.Put(b) }

// chunk is what one read returned, due at the other side at due; eof marks
// the end of the stream instead of bytes.
type chunk struct {
	b    []byte
	pool *[]byte // the pooled buffer b lives in, nil when b was copied out
	due  time.Time
	eof  bool
}

func (c *chunk) free() {
	if c.pool != nil {
		putBuf(c.pool)
		c.pool = nil
	}
}

// queue carries one direction of one connection from its reader to its
// writer, bounded in bytes. Chunks leave in order: every chunk of a
// direction has the same delay, so due times never go backwards.
type queue struct {
	mu      sync.Mutex
	cond    sync.Cond
	items   []chunk
	head    int
	bytes   int // pushed and not yet released
	limit   int
	stopped bool
}

func newQueue(limit int) *queue {
	q := &queue{limit: limit}
	q.cond.L = &q.mu
	return q
}

// push adds c, waiting while the queue is full; a chunk larger than the
// limit still goes through an empty queue. It reports false once stopped.
func (q *queue) push(c chunk) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.stopped && q.bytes > 0 && q.bytes+len(c.b) > q.limit {
		q.cond.Wait()
	}
	if q.stopped {
		return false
	}
	q.items = append(q.items, c)
	q.bytes += len(c.b)
	q.cond.Broadcast()
	return true
}

// pop takes the oldest chunk, waiting for one; false once stopped. Its bytes
// count against the limit until release.
func (q *queue) pop() (chunk, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.stopped && q.head == len(q.items) {
		q.cond.Wait()
	}
	if q.stopped {
		return chunk{}, false
	}
	c := q.items[q.head]
	q.items[q.head] = chunk{}
	q.head++
	if q.head == len(q.items) {
		q.items, q.head = q.items[:0], 0
	} else if q.head >= 1024 && 2*q.head >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return c, true
}

func (q *queue) release(n int) {
	q.mu.Lock()
	q.bytes -= n
	q.cond.Broadcast()
	q.mu.Unlock()
}

// stop wakes both ends for good and drops what is queued.
func (q *queue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.stopped = true
	for i := q.head; i < len(q.items); i++ {
		q.items[i].free()
	}
	q.items, q.head = nil, 0
	q.cond.Broadcast()
}
