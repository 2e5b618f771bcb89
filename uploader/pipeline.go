package uploader

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
)

// Checkpoint is how far an upload has safely come: the server acknowledged
// every byte of Partial below Offset. The caller journals it and hands the
// last one back as Job.Resume after an interruption. Size, ModTime and Inode
// identify the local file it belongs to; a different file starts over.
type Checkpoint struct {
	Partial string // full remote path of the partial file
	Offset  int64  // contiguous bytes acknowledged from the start of the file
	Size    int64
	ModTime time.Time
	Inode   uint64
}

// Checkpoints are throttled: one per this many acknowledged bytes or this
// much time, whichever comes first, and one more when a transient error
// stops the upload. A crash re-sends what was acknowledged since the last
// checkpoint: at one a second and 64 MiB that was up to a second of every
// upload (the fault suite's kill9, 12 files at 1 MiB/s through 5 kills:
// 1.095 wire/delivered; at 250 ms: 1.015). A journal write (no fsync) four
// times a second per file is cheap, and the checkpointer drops offsets the
// journal has no time for.
const (
	checkpointBytes    = 16 << 20
	checkpointInterval = 250 * time.Millisecond
)

// ackTracker follows which byte ranges the server acknowledged, in any
// order, and keeps the end of the contiguous acknowledged prefix. Concurrent
// writes complete out of order and a lost connection can leave holes, so only
// this prefix is safe to resume from.
type ackTracker struct {
	contiguous int64
	above      map[int64]int64 // start → end of acknowledged ranges past contiguous
}

func newAckTracker(start int64) *ackTracker {
	return &ackTracker{contiguous: start, above: map[int64]int64{}}
}

// ack records [off, off+n) and returns the contiguous offset.
func (a *ackTracker) ack(off, n int64) int64 {
	if off != a.contiguous {
		a.above[off] = off + n
		return a.contiguous
	}
	a.contiguous += n
	for {
		end, ok := a.above[a.contiguous]
		if !ok {
			return a.contiguous
		}
		delete(a.above, a.contiguous)
		a.contiguous = end
	}
}

// pumpConfig is one file's pipelined copy from the local file to the partial.
type pumpConfig struct {
	src      io.Reader // positioned at start
	dst      io.WriterAt
	start    int64 // first offset to send (the resume point)
	end      int64 // the file's size
	chunk    int   // bytes per write request
	inflight int   // write requests in flight
	// sequential sends the writes strictly in order, for servers that refuse
	// any other (object-store gateways, rclone serve sftp without a cache):
	// one writer hands each buffer of inflight chunks to one WriteAt, which
	// pkg/sftp splits into requests it sends in order and waits for together.
	sequential bool
	hashes     *hashes
	limit      *limiter
	progress   func(int64) // bytes read so far, from the pump goroutine
	// checkpoint receives the contiguous acknowledged offset, throttled; it
	// runs on its own goroutine so a slow journal never stalls the writes.
	checkpoint func(int64)
	clock      clock.Clock
	readBytes  func(int) // counts local reads (tests)
}

// pumpResult says how far the copy came and why it stopped.
type pumpResult struct {
	read    int64 // next offset to read: start + bytes read and hashed
	acked   int64 // contiguous acknowledged offset
	readErr error // the local file or ctx; io.ErrUnexpectedEOF when it shrank
	sendErr error // the first write error, at the lowest offset seen
}

type writeDone struct {
	off int64
	n   int
	err error
}

// seqBufferMax bounds one in-order burst: what a sequential upload has in
// flight at once, and each of its two buffers.
const seqBufferMax = 4 << 20

// pump reads the local file once, in order, hashing each chunk before it
// is handed to one of inflight writers; every write is one SFTP request, so
// inflight requests are on the wire at once. It returns after every writer
// has finished, so no buffer or goroutine outlives it.
func pump(ctx context.Context, c pumpConfig) pumpResult {
	type work struct {
		buf []byte
		off int64
	}
	// A small file needs few buffers and writers: 4 KiB files must not pay
	// for megabytes of buffers each.
	remain := c.end - c.start
	chunk := int(min(int64(c.chunk), max(remain, 1)))
	writers := int(min(int64(c.inflight), max((remain+int64(chunk)-1)/int64(chunk), 1)))
	bufs := writers
	if c.sequential {
		// One writer, so nothing overtakes; a second buffer is read and
		// hashed while the first is on the wire.
		per := max(min(c.inflight, seqBufferMax/c.chunk), 1)
		chunk = int(min(int64(c.chunk*per), max(remain, 1)))
		writers, bufs = 1, 1
		if remain > int64(chunk) {
			bufs = 2
		}
	}
	jobs := make(chan work)
	done := make(chan writeDone, bufs)
	free := make(chan []byte, bufs)
	for range bufs {
		free <- getBuf(chunk)
	}
	defer func() {
		for range bufs {
			putBuf(<-free)
		}
	}()
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range jobs {
				n, err := c.dst.WriteAt(w.buf, w.off)
				if err == nil && n != len(w.buf) {
					err = io.ErrShortWrite
				}
				done <- writeDone{off: w.off, n: len(w.buf), err: err}
				free <- w.buf[:chunk] // not cap: a pooled buffer may be larger than this file's chunks
			}
		}()
	}

	ck := newCheckpointer(c.checkpoint)
	tr := newAckTracker(c.start)
	res := pumpResult{read: c.start, acked: c.start}
	lastOff, lastAt := c.start, c.clock.Now()
	outstanding := 0
	handle := func(d writeDone) {
		outstanding--
		if d.err != nil {
			if res.sendErr == nil || errors.Is(res.sendErr, context.Canceled) {
				res.sendErr = d.err
			}
			return
		}
		res.acked = tr.ack(d.off, int64(d.n))
		if res.acked-lastOff >= checkpointBytes || c.clock.Now().Sub(lastAt) >= checkpointInterval {
			lastOff, lastAt = res.acked, c.clock.Now()
			ck.offer(res.acked)
		}
	}

	off := c.start
loop:
	for off < c.end && res.sendErr == nil {
		var buf []byte
		select {
		case buf = <-free:
		case d := <-done:
			handle(d)
			continue
		case <-ctx.Done():
			res.readErr = ctx.Err()
			break loop
		}
		buf = buf[:min(int64(len(buf)), c.end-off)]
		n, err := io.ReadFull(c.src, buf)
		if c.readBytes != nil {
			c.readBytes(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			res.readErr = err
			free <- buf
			break
		}
		c.hashes.Write(buf)
		off += int64(n)
		res.read = off
		if c.progress != nil {
			c.progress(off)
		}
		if c.limit != nil {
			if err := c.limit.wait(ctx, n, done, handle); err != nil {
				res.readErr = err
				free <- buf
				break
			}
		}
		outstanding++
		// While the writers are busy, their results are taken in: a writer
		// that has two buffers' worth of results to report (the sequential
		// mode's one writer) must never wait on us while we wait on it.
	send:
		for {
			select {
			case jobs <- work{buf: buf, off: off - int64(n)}:
				break send
			case d := <-done:
				handle(d)
			case <-ctx.Done():
				// Not sent: the next read offset stays honest for the caller,
				// which drops the partial or resumes from acked, never from read.
				outstanding--
				free <- buf
				res.readErr = ctx.Err()
				break loop
			}
		}
	}
	close(jobs)
	for outstanding > 0 {
		handle(<-done)
	}
	wg.Wait()
	ck.stop()
	return res
}

// checkpointer hands the newest offset to the caller's callback on its own
// goroutine, dropping stale ones: only the latest matters.
type checkpointer struct {
	fn   func(int64)
	next chan int64
	wg   sync.WaitGroup
}

func newCheckpointer(fn func(int64)) *checkpointer {
	c := &checkpointer{fn: fn, next: make(chan int64, 1)}
	if fn == nil {
		return c
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for off := range c.next {
			fn(off)
		}
	}()
	return c
}

func (c *checkpointer) offer(off int64) {
	if c.fn == nil {
		return
	}
	for {
		select {
		case c.next <- off:
			return
		default:
		}
		select {
		case <-c.next: // drop the stale one
		default:
		}
	}
}

// stop delivers the last offer and waits for the callback to return.
func (c *checkpointer) stop() {
	close(c.next)
	c.wg.Wait()
}

// bufPool recycles full-size write buffers between files.
var bufPool sync.Pool

func getBuf(n int) []byte {
	if b, ok := bufPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

func putBuf(b []byte) {
	if cap(b) >= 32<<10 {
		bufPool.Put(&b)
	}
}
