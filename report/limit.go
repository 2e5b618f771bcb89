package report

import (
	"net"
	"sync"
	"time"
)

// readTimeout bounds reading a whole request, body included (a variable for tests).
var readTimeout = 30 * time.Second

// maxConns bounds the connections a listener serves at once (a variable for tests). Each
// holds a file descriptor: a flood of connections that never finish their request ran the
// process out of them, and the journal's next check took "too many open files" for a lost
// state_dir and stopped the daemon. Beyond it, new connections wait in the kernel's backlog
// until one ends; the dashboard is slower then, deliveries are not touched.
var maxConns = 256

// limitConns is ln serving at most n connections at once.
func limitConns(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
