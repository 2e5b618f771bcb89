package uploader

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/pkg/sftp"
)

// cutRenameFS renames, then drops every connection before the answer can go back; or,
// with first set, drops them before it renames, and does not.
type cutRenameFS struct {
	sftp.Handlers
	armed atomic.Bool
	first bool
	p     *sshdtest.Proxy
}

// cutRenameServer is an in-memory SFTP server whose renames cutRenameFS watches, reached
// through a test proxy it cuts; o reaches it through the proxy.
func cutRenameServer(t *testing.T, first bool) (*cutRenameFS, *sshdtest.Proxy, Options) {
	t.Helper()
	mem := sftp.InMemHandler()
	fs := &cutRenameFS{Handlers: mem, first: first}
	ts := startServerWith(t, "", &sftp.Handlers{FileGet: mem.FileGet, FilePut: mem.FilePut, FileCmd: fs, FileList: mem.FileList})
	fs.p = sshdtest.StartProxy(t, ts.Addr)
	ts.pin(t, fs.p.Addr, ts.HostKey)
	o := ts.options()
	o.URL = "sftp://ingest@" + fs.p.Addr + "/"
	return fs, fs.p, o
}

func (c *cutRenameFS) Filecmd(r *sftp.Request) error {
	if r.Method == "Rename" && c.first && c.armed.CompareAndSwap(true, false) {
		c.p.Cut()
		return sftp.ErrSSHFxConnectionLost
	}
	err := c.Handlers.FileCmd.Filecmd(r)
	if r.Method == "Rename" && err == nil && c.armed.CompareAndSwap(true, false) {
		c.p.Cut() // the answer is lost
	}
	return err
}

// TestRenameAnswerLostIsNotRunAgain: a file resumed at its end writes nothing on its
// connection, so when the link dropped after the server renamed it, the pool ran the whole
// transfer again on a new connection as if nothing had happened, which found the final name
// taken: remote_exists, for hotdrop's own file. A rename now counts as a write: the attempt
// fails as transient, and its caller asks the server which side of the rename it is on.
func TestRenameAnswerLostIsNotRunAgain(t *testing.T) {
	fs, _, o := cutRenameServer(t, false)
	o.Checksum = ChecksumNone
	u := newUploader(t, o)
	j, _ := localFile(t, 300<<10, "SR-1/a.bin")
	var ck checkpoints
	j.Checkpoint = ck.save
	var opens atomic.Int32
	j.Open = func() (*os.File, error) {
		if opens.Add(1) == 2 {
			return nil, &os.PathError{Op: "open", Path: j.LocalPath, Err: syscall.EIO}
		}
		return os.Open(j.LocalPath)
	}
	if _, err := u.Upload(t.Context(), j); err == nil || !Classify(err).Transient {
		t.Fatalf("first Upload = %v, want transient", err)
	}
	last := ck.last()
	if last == nil || last.Offset != j.Size {
		t.Fatalf("no checkpoint at the end: %+v", ck.list)
	}
	j.Resume = last
	renames := 0
	j.BeforeRename = func(context.Context) error { renames++; fs.armed.Store(true); return nil }
	_, err := u.Upload(t.Context(), j)
	if err == nil || !Classify(err).Transient || renames != 1 {
		t.Fatalf("second Upload = %v after %d renames, want a transient failure after one (the link dropped with the rename's answer)", err, renames)
	}
}

// TestRenameLostBeforeItHappenedKeepsThePartial: the link drops with the rename asked for
// and not done. The partial stays (removing it would leave an older final file of the same
// size looking renamed), with a checkpoint at its end, so the next attempt publishes it
// without sending it again.
func TestRenameLostBeforeItHappenedKeepsThePartial(t *testing.T) {
	fs, p, o := cutRenameServer(t, true)
	u := newUploader(t, o)
	j, data := localFile(t, 300<<10, "SR-1/b.bin")
	var ck checkpoints
	j.Checkpoint = ck.save
	j.BeforeRename = func(context.Context) error { fs.armed.Store(true); return nil }
	if _, err := u.Upload(t.Context(), j); err == nil || !Classify(err).Transient {
		t.Fatalf("first Upload = %v, want a transient failure (the link dropped at the rename)", err)
	}
	last := ck.last()
	if last == nil || last.Offset != j.Size {
		t.Fatalf("checkpoints after a rename lost before it happened: %+v, want one at %d (the end)", ck.list, j.Size)
	}
	if n, ok, err := u.Stat(t.Context(), "SR-1/.b.bin.partial"); err != nil || !ok || n != j.Size {
		t.Fatalf("partial after the lost rename: %d bytes, there %v, %v; want it kept whole", n, ok, err)
	}

	up := p.Up()
	j.Resume = last
	j.BeforeRename = nil
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	if res.Resumed != j.Size || res.SHA256 != sum(data) {
		t.Errorf("second Upload() = %+v, want Resumed %d (nothing sent again)", res, j.Size)
	}
	if sent := p.Up() - up; sent > j.Size/4 {
		t.Errorf("second Upload sent %d bytes for a %d-byte file that was whole on the server", sent, j.Size)
	}
}
