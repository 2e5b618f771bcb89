package uploader

import (
	"path/filepath"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestSSHDDeadPooledConnection: a pooled connection that died while nobody
// used it (the server restarted, a cut seen by another upload) and that the
// pool has not yet noticed — under load its watch goroutine may not have run
// — costs the next Upload nothing: the first request fails with "connection
// lost" before any byte is written, the dead connection is closed so the pool
// never offers it again, and the Upload dials afresh and delivers.
//
// The stale state is built by hand so the test does not depend on goroutine
// timing: a connection whose transport is closed, placed in the slot without
// a watch goroutine, so nothing but the failed request can tell it is dead.
func TestSSHDDeadPooledConnection(t *testing.T) {
	s := sshdtest.Start(t)
	o := sshdOptions(s)
	o.Connections = 1
	u := newUploader(t, o)

	j1, data1 := localFile(t, 300<<10, "a/first.mov")
	if _, err := u.Upload(t.Context(), j1); err != nil {
		t.Fatalf("first Upload: %v", err)
	}
	live := u.firstConn()
	stale := &sftpConn{ssh: live.ssh, sftp: live.sftp, base: live.base, chunk: live.chunk, done: make(chan struct{})}
	live.close()
	<-live.done
	u.mu.Lock()
	u.slots[0].conn = stale
	u.mu.Unlock()

	j2, data2 := localFile(t, 700<<10, "a/second.mov")
	res, err := u.Upload(t.Context(), j2)
	if err != nil {
		t.Fatalf("Upload on a dead pooled connection = %v, want it redialled and delivered", err)
	}
	if res.SHA256 != sum(data2) {
		t.Errorf("sha256 = %s, want %s", res.SHA256, sum(data2))
	}
	assertFile(t, filepath.Join(s.Dir, "a", "first.mov"), data1)
	assertFile(t, filepath.Join(s.Dir, "a", "second.mov"), data2)
	assertNoPartial(t, s.Dir)
	if stale.alive() {
		t.Error("the dead connection still looks alive to the pool")
	}
	if c := u.firstConn(); c == stale || c == live || !c.alive() {
		t.Errorf("pool slot holds %p (stale %p, old %p), want a new live connection", c, stale, live)
	}

	// Stat, as the start-up reconciliation uses it, recovers the same way.
	next := u.firstConn()
	u.mu.Lock()
	u.slots[0].conn = &sftpConn{ssh: next.ssh, sftp: next.sftp, base: next.base, chunk: next.chunk, done: make(chan struct{})}
	u.mu.Unlock()
	next.close()
	<-next.done
	size, exists, err := u.Stat(t.Context(), "a/second.mov")
	if err != nil || !exists || size != int64(len(data2)) {
		t.Errorf("Stat on a dead pooled connection = %d, %v, %v; want %d, true, nil", size, exists, err, len(data2))
	}
}
