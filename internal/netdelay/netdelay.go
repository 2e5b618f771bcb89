// Package netdelay is a TCP proxy that delays every byte by half a round trip
// in each direction: a long-distance link between a client and a server on
// one machine, so benchmarks and tests can see what latency does to a
// protocol without root or tc netem.
//
// It delays without serialising: per connection and direction a reader
// timestamps what it reads into a queue and a writer releases each chunk at
// its due time, so a stream of bytes arrives RTT/2 later at the rate it was
// sent. The queue holds Options.QueueBytes (64 MiB by default), more than
// bandwidth × delay on loopback, so the proxy is never the window.
//
// It does not model TCP. The proxy ends each TCP connection on both sides, so
// the client's kernel sees loopback acknowledgements: slow start, congestion
// control and window autotuning at the real RTT are not reproduced, nor is
// loss. What it reproduces are the application's round trips: a request
// waits RTT for its answer, and a window of W bytes (an SSH channel window,
// an SFTP request queue) moves W bytes per RTT.
//
// The core API takes no testing.TB: bench commands and tests use the same
// Proxy. internal/sshdtest wraps it for tests.
package netdelay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultQueueBytes is the queue per direction of a connection when
// Options.QueueBytes is 0 and there is no rate cap.
const DefaultQueueBytes = 64 << 20

// Options shape the link the proxy plays.
type Options struct {
	// Listen is the address to listen on; "" is 127.0.0.1:0.
	Listen string
	// RTT is the round trip added; each direction is delayed by RTT/2.
	RTT time.Duration
	// Rate caps each direction of the link, all connections together, in
	// bytes per second; 0 is no cap. Bytes wait for the link in the queue of
	// their connection, so a full queue is the bottleneck's buffer.
	Rate int64
	// QueueBytes bounds the bytes waiting in each direction of each
	// connection; a reader stops reading (the sender's kernel then holds
	// back) while its queue is full. 0 is DefaultQueueBytes, or with a Rate,
	// Rate × RTT with at least 1 MiB, so a capped link does not buffer
	// seconds of data.
	QueueBytes int
	// CutAfter arms a cut at start; see Proxy.CutAfter. 0 is none.
	CutAfter int64
	// DialTimeout bounds the dial to the target; 0 is 10 s.
	DialTimeout time.Duration
}

// Proxy forwards each connection it accepts to a target, delayed. It is safe
// for concurrent use.
type Proxy struct {
	target string
	opt    Options
	half   time.Duration // delay each way
	ln     net.Listener
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup
	upLink link
	dnLink link

	accepted atomic.Int64
	down     atomic.Int64 // server → client bytes written to clients
	cuts     atomic.Int64

	cutMu sync.Mutex
	up    int64 // client → server bytes written to servers; guarded by cutMu
	cutAt int64 // up at which to cut; 0 = none; guarded by cutMu

	mu     sync.Mutex
	closed bool
	conns  map[*pconn]struct{}
}

// Listen starts a proxy to target. Close it to stop it.
func Listen(target string, opt Options) (*Proxy, error) {
	if opt.RTT < 0 || opt.Rate < 0 || opt.QueueBytes < 0 || opt.CutAfter < 0 {
		return nil, fmt.Errorf("netdelay: negative option in %+v", opt)
	}
	if opt.Listen == "" {
		opt.Listen = "127.0.0.1:0"
	}
	if opt.QueueBytes == 0 {
		opt.QueueBytes = DefaultQueueBytes
		if opt.Rate > 0 {
			opt.QueueBytes = int(max(1<<20, min(int64(DefaultQueueBytes), opt.Rate*int64(opt.RTT)/int64(time.Second))))
		}
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 10 * time.Second
	}
	ln, err := net.Listen("tcp", opt.Listen)
	if err != nil {
		return nil, fmt.Errorf("netdelay: listen: %w", err)
	}
	p := &Proxy{
		target: target,
		opt:    opt,
		half:   opt.RTT / 2,
		ln:     ln,
		done:   make(chan struct{}),
		upLink: link{rate: opt.Rate},
		dnLink: link{rate: opt.Rate},
		conns:  map[*pconn]struct{}{},
	}
	if opt.CutAfter > 0 {
		p.cutAt = opt.CutAfter
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Up is the number of bytes written to the target, all connections together.
func (p *Proxy) Up() int64 {
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	return p.up
}

// Down is the number of bytes written back to clients.
func (p *Proxy) Down() int64 { return p.down.Load() }

// Accepted is how many client connections the proxy accepted.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// Cuts is how many times an armed cut fired.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

// CutAfter arms a cut: once n more bytes have gone to the target, counted
// over all connections from now, the proxy delivers exactly those and then
// closes every open connection both ways, as a link that drops does. Bytes
// still in flight are lost. Later connections pass untouched. n ≤ 0 disarms.
func (p *Proxy) CutAfter(n int64) {
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	if n <= 0 {
		p.cutAt = 0
		return
	}
	p.cutAt = p.up + n
}

// CutAll closes every connection open now, both ways. Later connections are
// not affected.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.abort()
	}
}

// Close stops listening, closes every connection and returns once every
// goroutine of the proxy has ended.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	err := p.ln.Close()
	for c := range p.conns {
		c.abort()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select { // EMFILE and the like: let the system breathe, then go on
			case <-p.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go p.serve(a)
	}
}

// serve dials the target for one accepted connection and runs its two
// directions; a dial that fails closes the client's connection, as a host
// whose server is down does.
func (p *Proxy) serve(a net.Conn) {
	defer p.wg.Done()
	b, err := net.DialTimeout("tcp", p.target, p.opt.DialTimeout)
	if err != nil {
		a.Close()
		return
	}
	c := &pconn{client: a, server: b, dead: make(chan struct{})}
	c.up = newQueue(p.opt.QueueBytes)
	c.dn = newQueue(p.opt.QueueBytes)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		a.Close()
		b.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.mu.Unlock()

	var dirs sync.WaitGroup
	dirs.Add(4)
	go func() { defer dirs.Done(); p.read(c, a, c.up, &p.upLink) }()
	go func() { defer dirs.Done(); p.write(c, b, c.up, true) }()
	go func() { defer dirs.Done(); p.read(c, b, c.dn, &p.dnLink) }()
	go func() { defer dirs.Done(); p.write(c, a, c.dn, false) }()
	dirs.Wait()

	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// pconn is one proxied connection: the client's side, the server's side and
// a queue each way.
type pconn struct {
	client, server net.Conn
	up, dn         *queue
	halfClosed     atomic.Int32  // directions whose end of stream was delivered
	dead           chan struct{} // closed by abort
	once           sync.Once
}

// abort ends the connection now, both ways: queued bytes are dropped.
func (c *pconn) abort() {
	c.once.Do(func() {
		close(c.dead)
		c.up.stop()
		c.dn.stop()
		c.client.Close()
		c.server.Close()
	})
}

// read moves what src sends into q, each chunk stamped with the time it is
// due at the other side.
func (p *Proxy) read(c *pconn, src net.Conn, q *queue, l *link) {
	for {
		buf := getBuf()
		n, err := src.Read(*buf)
		if n > 0 {
			ch := chunk{due: l.due(time.Now(), n, p.half)}
			if n < smallRead {
				ch.b = append([]byte(nil), (*buf)[:n]...)
				putBuf(buf)
			} else {
				ch.b, ch.pool = (*buf)[:n], buf
			}
			if !q.push(ch) {
				ch.free()
				return
			}
		} else {
			putBuf(buf)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The end of the stream travels as late as its last byte would.
				q.push(chunk{due: l.due(time.Now(), 0, p.half), eof: true})
				return
			}
			c.abort()
			return
		}
	}
}

// write releases q's chunks to dst at their due times. Upstream, it counts
// bytes and fires an armed cut at its exact byte.
func (p *Proxy) write(c *pconn, dst net.Conn, q *queue, upstream bool) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		ch, ok := q.pop()
		if !ok {
			return // stopped
		}
		if wait := time.Until(ch.due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-c.dead:
			}
		}
		select {
		case <-c.dead:
			ch.free()
			return
		default:
		}
		if ch.eof {
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			if c.halfClosed.Add(1) == 2 {
				c.abort() // both ways ended: the connection is over
			}
			return
		}
		b, cut := ch.b, false
		if upstream {
			b, cut = p.admit(b)
		}
		if !upstream {
			p.down.Add(int64(len(b))) // before the write: a client that got the bytes sees them counted
		}
		_, err := dst.Write(b)
		n := len(ch.b)
		ch.free()
		q.release(n)
		if cut {
			p.cuts.Add(1)
			p.CutAll()
			return
		}
		if err != nil {
			c.abort()
			return
		}
	}
}

// admit counts b towards Up and trims it at an armed cut; cut reports that
// the cut fires after b.
func (p *Proxy) admit(b []byte) (_ []byte, cut bool) {
	p.cutMu.Lock()
	defer p.cutMu.Unlock()
	if p.cutAt > 0 && p.up+int64(len(b)) >= p.cutAt {
		b = b[:p.cutAt-p.up]
		p.cutAt = 0
		cut = true
	}
	p.up += int64(len(b))
	return b, cut
}

// link is one direction of the path: with a rate, chunks leave it one after
// the other, each taking len/rate, then travel the delay.
type link struct {
	rate int64
	mu   sync.Mutex
	free time.Time // when the link has sent everything queued so far
}

func (l *link) due(now time.Time, n int, delay time.Duration) time.Time {
	if l.rate <= 0 {
		return now.Add(delay)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	start := maxTime(now, l.free)
	l.free = start.Add(time.Duration(int64(n) * int64(time.Second) / l.rate))
	return l.free.Add(delay)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
