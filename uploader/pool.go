package uploader

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/pkg/sftp"
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
// uploads first, and the func that gives it back. Only the first leaseSlots
// slots take uploads; the rest carry striped writes (see stripe).
func (u *Uploader) session(ctx context.Context) (*sftpConn, func(), error) {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil, nil, errClosed()
	}
	s := u.slots[0]
	for _, c := range u.slots[1:u.leaseSlots] {
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
	c, err := u.slotConn(ctx, s)
	if err != nil {
		release()
		return nil, nil, err
	}
	return c, release, nil
}

func errClosed() *Error {
	return &Error{Code: CodeTransient, Transient: true, Msg: "uploader is closed", Err: net.ErrClosed}
}

// slotConn returns the slot's connection, dialling it when it has none or
// its connection died.
func (u *Uploader) slotConn(ctx context.Context, s *slot) (*sftpConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.mu.Lock()
	old := s.conn
	u.mu.Unlock()
	if old != nil {
		if old.alive() {
			return old, nil
		}
		old.wg.Wait()
	}
	c, err := u.dial(ctx)
	if err != nil {
		return nil, err
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
		return nil, errClosed()
	}
	return c, nil
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

// lease is one use of the destination: the local folder, or a pooled SFTP
// connection seen through leasedConn, which notes whether any write of the
// lease was acknowledged.
type lease struct {
	t       target
	conn    *sftpConn // nil for file://
	release func()
	wrote   atomic.Bool
}

// withTarget runs op on the destination. When op fails because the SFTP
// connection is gone, the connection is closed at once, so the pool never
// hands it out again; and when the loss cost op nothing on the server (no
// write of its was acknowledged: the connection was dead before op used it,
// as after an idle night or a cut that another upload saw first), op runs
// once more on a freshly dialled connection instead of reporting a failure
// that only the retry loop would hide. op must be safe to run twice.
func (u *Uploader) withTarget(ctx context.Context, op func(t target) error) error {
	for try := 0; ; try++ {
		l, err := u.lease(ctx)
		if err != nil {
			return err
		}
		err = op(l.t)
		lost := l.conn != nil && err != nil && ctx.Err() == nil && connectionLost(err)
		if lost {
			l.conn.close()
		}
		l.release()
		if !lost || l.wrote.Load() || try > 0 {
			return err
		}
		u.log.Info("the pooled connection to the destination was gone; dialling again", "addr", u.addr, "err", err)
	}
}

func (u *Uploader) lease(ctx context.Context) (*lease, error) {
	if u.local {
		t, err := openLocalTarget(u.base, u.tempName)
		if err != nil {
			return nil, err
		}
		return &lease{t: t, release: t.close}, nil
	}
	c, release, err := u.session(ctx)
	if err != nil {
		return nil, err
	}
	l := &lease{conn: c, release: release}
	l.t = leasedConn{sftpConn: c, wrote: &l.wrote}
	return l, nil
}

// connectionLost reports the errors that mean the SSH connection itself is
// finished, as opposed to the server refusing one request or a slow link.
func connectionLost(err error) bool {
	return errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// leasedConn is a pooled connection as one lease sees it: every file it
// opens records an acknowledged write in wrote.
type leasedConn struct {
	*sftpConn
	wrote *atomic.Bool
}

func (c leasedConn) create(p string) (remoteFile, error) {
	f, err := c.sftpConn.create(p)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.wrote}, nil
}

func (c leasedConn) openPartial(p string) (remoteFile, error) {
	f, err := c.sftpConn.openPartial(p)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.wrote}, nil
}

// rename counts as a write before it is asked for: the server may do it and the answer be
// lost with the link, and an op run again from the start would then find its own file under
// the final name and take it for someone else's.
func (c leasedConn) rename(from, to string, replace bool) (string, error) {
	c.wrote.Store(true)
	return c.sftpConn.rename(from, to, replace)
}

type countingFile struct {
	remoteFile
	wrote *atomic.Bool
}

// Truncate changes the partial on the server like a write: an op that asked for it is not
// run again from the start.
func (f countingFile) Truncate(size int64) error {
	f.wrote.Store(true)
	return f.remoteFile.Truncate(size)
}

func (f countingFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.remoteFile.WriteAt(b, off)
	if n > 0 && err == nil {
		f.wrote.Store(true)
	}
	return n, err
}
