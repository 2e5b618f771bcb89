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
	p := newPumping(ctx, c)
	defer p.putBufs()
	for range p.writers {
		p.wg.Add(1)
		go p.write(c.dst)
	}
	p.readAll()
	p.drain()
	close(p.jobs)
	p.wg.Wait()
	p.ck.stop()
	return p.res
}

// pumpWork is one chunk to write at off.
type pumpWork struct {
	buf []byte
	off int64
}

// pumping is one pump's state. Only pump's goroutine touches it, except the writers, which
// only use the channels.
type pumping struct {
	ctx     context.Context
	c       pumpConfig
	chunk   int // bytes a buffer holds
	writers int // on dst
	bufs    int // buffers made, all back in free at the end
	join    <-chan io.WriterAt
	joined  int

	jobs chan pumpWork
	done chan writeDone
	free chan []byte
	wg   sync.WaitGroup

	ck          *checkpointer
	tr          *ackTracker
	res         pumpResult
	lastOff     int64
	lastAt      time.Time
	sent        int64
	outstanding int        // chunks read and not yet acknowledged or failed
	redo        []pumpWork // chunks of lost streams, to send again first
}

func newPumping(ctx context.Context, c pumpConfig) *pumping {
	// A small file needs few buffers and writers: 4 KiB files must not pay
	// for megabytes of buffers each.
	remain := c.end - c.start
	chunk := int(min(int64(c.chunk), max(remain, 1)))
	writers := int(min(int64(c.inflight), max((remain+int64(chunk)-1)/int64(chunk), 1)))
	bufs := writers
	join := c.join
	if c.sequential {
		// One writer, so nothing overtakes; a second buffer is read and
		// hashed while the first is on the wire.
		per := max(min(c.inflight, seqBufferMax/c.chunk), 1)
		chunk = int(min(int64(c.chunk*per), max(remain, 1)))
		writers, bufs = 1, 1
		if remain > int64(chunk) {
			bufs = 2
		}
		join = nil
	}
	most := bufs
	if join != nil {
		most += maxJoinedStreams * c.perStream
	}
	p := &pumping{ctx: ctx, c: c, chunk: chunk, writers: writers, bufs: bufs, join: join,
		jobs: make(chan pumpWork), done: make(chan writeDone, most), free: make(chan []byte, most),
		ck: newCheckpointer(c.checkpoint), tr: newAckTracker(c.start),
		res: pumpResult{read: c.start, acked: c.start}, lastOff: c.start, lastAt: c.clock.Now()}
	for range bufs {
		p.free <- getBuf(chunk)
	}
	return p
}

// putBufs returns every buffer to the pool once the writers are done.
func (p *pumping) putBufs() {
	for range p.bufs {
		putBuf(<-p.free)
	}
}

// write is one writer: it writes the chunks it is handed to dst until jobs closes, or until
// dst's stream is lost (then the chunk goes back to be sent over another).
func (p *pumping) write(dst io.WriterAt) {
	defer p.wg.Done()
	for w := range p.jobs {
		n, err := dst.WriteAt(w.buf, w.off)
		if err == nil && n != len(w.buf) {
			err = io.ErrShortWrite
		}
		if errors.Is(err, errStreamLost) {
			p.done <- writeDone{off: w.off, n: len(w.buf), err: err, redo: w.buf}
			return
		}
		p.done <- writeDone{off: w.off, n: len(w.buf), err: err}
		p.free <- w.buf[:p.chunk] // not cap: a pooled buffer may be larger than this file's chunks
	}
}

// take starts the writers of a stream that joined, with their buffers.
func (p *pumping) take(dst io.WriterAt) {
	if p.joined == maxJoinedStreams {
		return
	}
	p.joined++
	for range p.c.perStream {
		p.wg.Add(1)
		go p.write(dst)
		p.free <- getBuf(p.chunk)
		p.bufs++
	}
}

// handle takes in one writer's result: an acknowledgement (the contiguous offset, the
// meter, a checkpoint now and then), a failure, or a chunk to send again.
func (p *pumping) handle(d writeDone) {
	if d.redo != nil {
		if p.res.sendErr == nil {
			p.redo = append(p.redo, pumpWork{buf: d.redo, off: d.off})
			return // still outstanding
		}
		p.free <- d.redo[:p.chunk]
	}
	p.outstanding--
	if d.err != nil {
		if p.res.sendErr == nil || errors.Is(p.res.sendErr, context.Canceled) {
			p.res.sendErr = d.err
		}
		return
	}
	p.res.acked = p.tr.ack(d.off, int64(d.n))
	if !d.present {
		p.sent += int64(d.n)
	}
	if p.c.acked != nil {
		p.c.acked(p.sent, p.res.acked)
	}
	if p.res.acked-p.lastOff >= checkpointBytes || p.c.clock.Now().Sub(p.lastAt) >= checkpointInterval {
		p.lastOff, p.lastAt = p.res.acked, p.c.clock.Now()
		p.ck.offer(p.res.acked)
	}
}

// dispatch hands w to a writer, taking in results and streams meanwhile:
// a writer that has two buffers' worth of results to report (the
// sequential mode's one writer) must never wait on us while we wait on
// it. false: ctx ended first, and w is back among the free buffers.
func (p *pumping) dispatch(w pumpWork) bool {
	for {
		select {
		case p.jobs <- w:
			return true
		case d := <-p.done:
			p.handle(d)
		case s := <-p.join:
			p.take(s)
		case <-p.ctx.Done():
			// Not sent: the next read offset stays honest for the caller,
			// which drops the partial or resumes from acked, never from read.
			p.outstanding--
			p.free <- w.buf[:p.chunk]
			p.res.readErr = p.ctx.Err()
			return false
		}
	}
}

// resend sends the chunks of lost streams again, over the streams left.
func (p *pumping) resend() bool {
	for len(p.redo) > 0 && p.res.sendErr == nil {
		w := p.redo[0]
		p.redo = p.redo[1:]
		p.res.again += int64(len(w.buf))
		if !p.dispatch(w) {
			return false
		}
	}
	return true
}

// readAll reads the file once, in order, hashing each chunk and handing it to a writer,
// until the end, a failure or ctx.
func (p *pumping) readAll() {
	c := p.c
	present := c.present
	off := c.start
	for off < c.end && p.res.sendErr == nil {
		if !p.resend() {
			return
		}
		var buf []byte
		select {
		case buf = <-p.free:
		case d := <-p.done:
			p.handle(d)
			continue
		case s := <-p.join:
			p.take(s)
			continue
		case <-p.ctx.Done():
			p.res.readErr = p.ctx.Err()
			return
		}
		buf = buf[:min(int64(len(buf)), c.end-off)]
		// A range the partial holds already is read and hashed up to its
		// end, and not sent; a chunk that would run into one stops short.
		for len(present) > 0 && present[0].end <= off {
			present = present[1:]
		}
		there := false
		if len(present) > 0 {
			switch r := present[0]; {
			case r.off <= off:
				there = true
				buf = buf[:min(int64(len(buf)), r.end-off)]
			case r.off < off+int64(len(buf)):
				buf = buf[:r.off-off]
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
			p.res.readErr = err
			p.free <- buf[:p.chunk]
			return
		}
		c.hashes.Write(buf)
		off += int64(n)
		p.res.read = off
		if c.progress != nil {
			c.progress(off)
		}
		p.outstanding++
		if there {
			p.res.skipped += int64(n)
			p.free <- buf[:p.chunk]
			p.handle(writeDone{off: off - int64(n), n: n, present: true})
			continue
		}
		if c.limit != nil {
			if err := c.limit.wait(p.ctx, n, p.done, p.handle); err != nil {
				p.outstanding--
				p.res.readErr = err
				p.free <- buf[:p.chunk]
				return
			}
		}
		if !p.dispatch(pumpWork{buf: buf, off: off - int64(n)}) {
			return
		}
	}
}

// drain waits for every chunk in flight; chunks of lost streams go again while the copy
// can still succeed.
func (p *pumping) drain() {
	for p.outstanding > 0 {
		if len(p.redo) > 0 && p.res.sendErr == nil && p.res.readErr == nil {
			if !p.resend() {
				continue
			}
		}
		if len(p.redo) > 0 {
			// The copy stops: nothing is sent again.
			for _, w := range p.redo {
				p.free <- w.buf[:p.chunk]
				p.outstanding--
			}
			p.redo = nil
			continue
		}
		p.handle(<-p.done)
	}
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
