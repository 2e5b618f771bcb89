package sshdtest

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"
)

// Proxy forwards TCP connections to a server and can cut one after a given
// number of bytes from the client: a dropped link in the middle of a file,
// at a byte offset a test chooses.
type Proxy struct {
	Addr string // 127.0.0.1:PORT to dial instead of the server

	ln       net.Listener
	wg       sync.WaitGroup
	up       atomic.Int64 // client → server bytes forwarded, every connection
	cutAt    atomic.Int64 // armed cut: connection bytes after which to cut; 0 = none
	cuts     atomic.Int64
	accepted atomic.Int64 // client connections accepted, whether or not the server answered
	down     atomic.Bool  // SetDown: the server is away

	mu     sync.Mutex
	target string // guarded by mu: Retarget changes it for later connections
	conns  []net.Conn
	frozen []*atomic.Bool // one per connection: Freeze sets those open now
}

// StartProxy listens on 127.0.0.1 and forwards every connection to target
// until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// CutAfter arms a cut: the first connection (live or future) that has
// carried n bytes from the client is closed at exactly that byte, both ways.
// Connections after it pass untouched.
func (p *Proxy) CutAfter(n int64) { p.cutAt.Store(n) }

// Up is the number of bytes the proxy forwarded from clients to the server.
func (p *Proxy) Up() int64 { return p.up.Load() }

// Cuts is how many connections the proxy cut.
func (p *Proxy) Cuts() int64 { return p.cuts.Load() }

func (p *Proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if p.down.Load() {
			a.Close() // as a host whose sshd is gone: the connection ends at once
			continue
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		b, err := net.Dial("tcp", target)
		if err != nil {
			a.Close()
			continue
		}
		fz := new(atomic.Bool)
		p.mu.Lock()
		p.conns = append(p.conns, a, b)
		p.frozen = append(p.frozen, fz)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			p.pipe(b, a, true, fz)
		}()
		go func() {
			defer p.wg.Done()
			p.pipe(a, b, false, fz)
		}()
	}
}

// pipe copies src to dst; upstream it counts and may cut. Either side ending
// closes both, as a real dropped link would end both directions.
func (p *Proxy) pipe(dst, src net.Conn, upstream bool, frozen *atomic.Bool) {
	defer dst.Close()
	defer src.Close()
	var carried int64
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && frozen.Load() {
			n = 0 // a link that went silent: bytes vanish, nothing closes
		}
		if n > 0 {
			if upstream {
				if at := p.cutAt.Load(); at > 0 && carried+int64(n) >= at {
					n = int(at - carried)
					if p.cutAt.CompareAndSwap(at, 0) {
						_, _ = dst.Write(buf[:n])
						p.up.Add(int64(n))
						p.cuts.Add(1)
						return
					}
				}
				carried += int64(n)
				p.up.Add(int64(n))
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// SetDown(true) makes the server look gone: the connections open now are closed and new
// ones are closed as soon as they are accepted, before any byte of the server's. SetDown(false)
// brings it back.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if !down {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// Cut closes the connections open now, as a link that drops does; new connections pass.
// SetDown(true) then SetDown(false) is not the same: a client that notices the drop
// between the two and dials again is refused.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// Freeze makes the connections open now go silent without closing, as a dead
// link does (a NAT that forgot the flow): only a keepalive notices. New
// connections are not affected.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, fz := range p.frozen {
		fz.Store(true)
	}
}

// Pin adds addr (a Proxy's, say) to the server's known_hosts, so a client
// dialling it checks the same host key.
func (s *Server) Pin(t testing.TB, addr string) {
	t.Helper()
	f, err := os.OpenFile(s.KnownHosts, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	defer f.Close()
	_, err = f.WriteString(knownhosts.Line([]string{knownhosts.Normalize(addr)}, s.HostKey) + "\n")
	must(t, err)
}
