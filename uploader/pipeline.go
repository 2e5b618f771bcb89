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
	inflight int   // write requests in flight on dst
	// join brings further streams while the copy runs (striping): each is
	// another handle on the same partial, through another SFTP session, and
	// gets perStream writers of its own that take chunks from the same
	// in-order queue as dst's. nil: dst alone.
	join      <-chan io.WriterAt
	perStream int
	// present are ranges past start that the partial already holds (read
	// back equal to the local file): they are read and hashed like the
	// rest, but not sent again. Sorted, not overlapping.
	present []span
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
	// acked, when set, is given the bytes acknowledged so far in this copy
	// (in any order: the striping's meter) and the contiguous acknowledged
	// offset (what the server may hash already) as they grow, from the pump
	// goroutine; it must not block.
	acked     func(sent, contiguous int64)
	clock     clock.Clock
	readBytes func(int) // counts local reads (tests)
}

// span is a byte range [off, end) of a file.
type span struct{ off, end int64 }

// pumpResult says how far the copy came and why it stopped.
type pumpResult struct {
	read    int64 // next offset to read: start + bytes read and hashed
	acked   int64 // contiguous acknowledged offset
	readErr error // the local file or ctx; io.ErrUnexpectedEOF when it shrank
	sendErr error // the first write error, at the lowest offset seen
	skipped int64 // bytes of present ranges not sent again
	again   int64 // bytes sent again over other streams after theirs was lost
}

type writeDone struct {
	off     int64
	n       int
	err     error
	present bool   // not sent: the partial held it already
	redo    []byte // the chunk, when its stream was lost: to be sent over another
}

// seqBufferMax bounds one in-order burst: what a sequential upload has in
// flight at once, and each of its two buffers.
const seqBufferMax = 4 << 20

// maxJoinedStreams bounds the streams a pump takes in through join.
const maxJoinedStreams = MaxStreams

// errStreamLost marks a write that failed because its stream's connection
// was lost: a stream that joined (never dst) says so, and the pump sends the
// chunk again over the others.
var errStreamLost = errors.New("the stream's connection was lost")

// pump reads the local file once, in order, hashing each chunk before it
// is handed to one of the writers; every write is one SFTP request, so
// there are as many requests on the wire as writers. Streams that join
// while it runs add writers of their own, which take chunks from the same
// queue: one read pass, the chunks spread over every stream in the order
// they were read. A joined stream whose connection is lost leaves; what it
// had in flight goes over the others. It returns after every writer has
// finished, so no buffer or goroutine outlives it.
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
	join := c.join
	if c.sequential {
		join = nil
	}
	most := bufs
	if join != nil {
		most += maxJoinedStreams * c.perStream
	}
	jobs := make(chan work)
	done := make(chan writeDone, most)
	free := make(chan []byte, most)
	for range bufs {
		free <- getBuf(chunk)
	}
	defer func() {
		for range bufs {
			putBuf(<-free)
		}
	}()
	var wg sync.WaitGroup
	write := func(dst io.WriterAt) {
		defer wg.Done()
		for w := range jobs {
			n, err := dst.WriteAt(w.buf, w.off)
			if err == nil && n != len(w.buf) {
				err = io.ErrShortWrite
			}
			if errors.Is(err, errStreamLost) {
				// This stream is gone: the chunk goes back, the writer leaves.
				done <- writeDone{off: w.off, n: len(w.buf), err: err, redo: w.buf}
				return
			}
			done <- writeDone{off: w.off, n: len(w.buf), err: err}
			free <- w.buf[:chunk] // not cap: a pooled buffer may be larger than this file's chunks
		}
	}
	for range writers {
		wg.Add(1)
		go write(c.dst)
	}
	joined := 0
	// take starts the writers of a stream that joined, with their buffers.
	take := func(dst io.WriterAt) {
		if joined == maxJoinedStreams {
			return
		}
		joined++
		for range c.perStream {
			wg.Add(1)
			go write(dst)
			free <- getBuf(chunk)
			bufs++
		}
	}

	ck := newCheckpointer(c.checkpoint)
	tr := newAckTracker(c.start)
	res := pumpResult{read: c.start, acked: c.start}
	lastOff, lastAt := c.start, c.clock.Now()
	var sent int64
	outstanding := 0
	var redo []work // chunks of lost streams, to send again first
	handle := func(d writeDone) {
		if d.redo != nil {
			if res.sendErr == nil {
				redo = append(redo, work{buf: d.redo, off: d.off})
				return // still outstanding
			}
			free <- d.redo[:chunk]
		}
		outstanding--
		if d.err != nil {
			if res.sendErr == nil || errors.Is(res.sendErr, context.Canceled) {
				res.sendErr = d.err
			}
			return
		}
		res.acked = tr.ack(d.off, int64(d.n))
		if !d.present {
			sent += int64(d.n)
		}
		if c.acked != nil {
			c.acked(sent, res.acked)
		}
		if res.acked-lastOff >= checkpointBytes || c.clock.Now().Sub(lastAt) >= checkpointInterval {
			lastOff, lastAt = res.acked, c.clock.Now()
			ck.offer(res.acked)
		}
	}
	// dispatch hands w to a writer, taking in results and streams meanwhile:
	// a writer that has two buffers' worth of results to report (the
	// sequential mode's one writer) must never wait on us while we wait on
	// it. false: ctx ended first, and w is back among the free buffers.
	dispatch := func(w work) bool {
		for {
			select {
			case jobs <- w:
				return true
			case d := <-done:
				handle(d)
			case s := <-join:
				take(s)
			case <-ctx.Done():
				// Not sent: the next read offset stays honest for the caller,
				// which drops the partial or resumes from acked, never from read.
				outstanding--
				free <- w.buf[:chunk]
				res.readErr = ctx.Err()
				return false
			}
		}
	}
	// resend sends the chunks of lost streams again, over the streams left.
	resend := func() bool {
		for len(redo) > 0 && res.sendErr == nil {
			w := redo[0]
			redo = redo[1:]
			res.again += int64(len(w.buf))
			if !dispatch(w) {
				return false
			}
		}
		return true
	}

	present := c.present
	off := c.start
loop:
	for off < c.end && res.sendErr == nil {
		if !resend() {
			break
		}
		var buf []byte
		select {
		case buf = <-free:
		case d := <-done:
			handle(d)
			continue
		case s := <-join:
			take(s)
			continue
		case <-ctx.Done():
			res.readErr = ctx.Err()
			break loop
		}
		buf = buf[:min(int64(len(buf)), c.end-off)]
		// A range the partial holds already is read and hashed up to its
		// end, and not sent; a chunk that would run into one stops short.
		for len(present) > 0 && present[0].end <= off {
			present = present[1:]
		}
		there := false
		if len(present) > 0 {
			switch p := present[0]; {
			case p.off <= off:
				there = true
				buf = buf[:min(int64(len(buf)), p.end-off)]
			case p.off < off+int64(len(buf)):
				buf = buf[:p.off-off]
			}
		}
		n, err := io.ReadFull(c.src, buf)
		if c.readBytes != nil {
			c.readBytes(n)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			res.readErr = err
			free <- buf[:chunk]
			break
		}
		c.hashes.Write(buf)
		off += int64(n)
		res.read = off
		if c.progress != nil {
			c.progress(off)
		}
		outstanding++
		if there {
			res.skipped += int64(n)
			free <- buf[:chunk]
			handle(writeDone{off: off - int64(n), n: n, present: true})
			continue
		}
		if c.limit != nil {
			if err := c.limit.wait(ctx, n, done, handle); err != nil {
				outstanding--
				res.readErr = err
				free <- buf[:chunk]
				break
			}
		}
		if !dispatch(work{buf: buf, off: off - int64(n)}) {
			break
		}
	}
	for outstanding > 0 {
		if len(redo) > 0 && res.sendErr == nil && res.readErr == nil {
			if !resend() {
				continue
			}
		}
		if len(redo) > 0 {
			// The copy stops: nothing is sent again.
			for _, w := range redo {
				free <- w.buf[:chunk]
				outstanding--
			}
			redo = nil
			continue
		}
		handle(<-done)
	}
	close(jobs)
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
