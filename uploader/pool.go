package uploader

import (
	"context"
	"net"
	"sync"
)

// slot is one place in the connection pool. Its connection is dialled on
// first use and again after it died; mu is held while dialling so one slot
// never dials twice at once, while other slots go on working.
type slot struct {
	mu     sync.Mutex
	conn   *sftpConn // guarded by Uploader.mu
	active int       // uploads using this slot; guarded by Uploader.mu
}

// session returns a live connection from the pool, the slot with the fewest
// uploads first, and the func that gives it back.
func (u *Uploader) session(ctx context.Context) (*sftpConn, func(), error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, nil, &Error{Code: CodeTransient, Transient: true, Msg: "uploader is closed", Err: net.ErrClosed}
	}
	s := u.slots[0]
	for _, c := range u.slots[1:] {
		if c.active < s.active {
			s = c
		}
	}
	s.active++
	u.mu.Unlock()
	release := func() {
		u.mu.Lock()
		s.active--
		u.mu.Unlock()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	u.mu.Lock()
	old := s.conn
	u.mu.Unlock()
	if old != nil {
		if old.alive() {
			return old, release, nil
		}
		old.wg.Wait()
	}
	c, err := u.dial(ctx)
	if err != nil {
		release()
		return nil, nil, err
	}
	u.mu.Lock()
	closed := u.closed
	if !closed {
		s.conn = c
	}
	u.mu.Unlock()
	if closed {
		c.close()
		c.wg.Wait()
		release()
		return nil, nil, &Error{Code: CodeTransient, Transient: true, Msg: "uploader is closed", Err: net.ErrClosed}
	}
	return c, release, nil
}

// Close ends every connection and waits for their goroutines. Uploads in
// flight fail with a transient error.
func (u *Uploader) Close() error {
	u.mu.Lock()
	u.closed = true
	slots := u.slots
	u.mu.Unlock()
	for _, s := range slots {
		// Not s.mu: a dial in progress holds it; session closes what it
		// dials after Close.
		u.mu.Lock()
		c := s.conn
		s.conn = nil
		u.mu.Unlock()
		if c != nil {
			c.close()
			c.wg.Wait()
		}
	}
	return nil
}
