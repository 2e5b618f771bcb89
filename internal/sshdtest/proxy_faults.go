package sshdtest

import "net"

// Retarget sends the connections the proxy accepts from now on to addr, as a
// DNS change or a failover would: a server with another host key, say, or an
// address where nothing listens (the server is down: each new connection is
// accepted and closed at once). Connections open now keep their server; CutAll
// ends them.
func (p *Proxy) Retarget(addr string) {
	p.mu.Lock()
	p.target = addr
	p.mu.Unlock()
}

// CutAll closes every connection open now, both ways, as a link that drops
// does. Later connections are not affected.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// Accepted is how many client connections the proxy accepted so far: each one
// a dial, so a reconnect shows as an increase.
func (p *Proxy) Accepted() int64 { return p.accepted.Load() }

// DeadAddr is a loopback address where nothing listens: Retarget to it and
// every new connection fails, as when the server is down.
func DeadAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}
