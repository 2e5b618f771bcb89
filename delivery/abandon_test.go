package delivery

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A source removed while it is being sent stops its upload at once (issue 14): the upload's
// context is cancelled, the partial it kept for a resume is discarded on the server, its
// resume point is dropped and the file is forgotten. Before, the upload read on to the end.
func TestRemovedMidUploadStopsUpload(t *testing.T) {
	up := newFakeUploader()
	started := make(chan struct{})
	stopped := make(chan error, 1)
	otherGo := make(chan struct{})
	up.during = func(ctx context.Context, j Job) error {
		if filepath.Base(j.LocalPath) == "other.mxf" {
			<-otherGo // still running when big.mxf is removed
			return ctx.Err()
		}
		j.Checkpoint(Checkpoint{Partial: "/in/SR-61/.big.mxf.partial", Offset: 2, Size: 4})
		close(started)
		select {
		case <-ctx.Done():
			stopped <- ctx.Err()
			return &TransferError{Code: "transient", Msg: "cancelled", Transient: true, Err: ctx.Err()}
		case <-time.After(10 * time.Second):
			stopped <- nil
			return nil // the upload ran to its end
		}
	}
	logs := &syncBuffer{}
	st := newMemStore()
	h := newHarnessWith(t, t.TempDir(), st, up, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}, req("SR-61", 1), req("SR-64", 1))
	var letOther sync.Once
	release := func() { letOther.Do(func() { close(otherGo) }) }
	t.Cleanup(release) // before the harness stops, which waits for the uploads
	// Another request's upload runs beside it and must not be stopped.
	h.drop("SR-64", "other.mxf", watcher.Ready, 4)
	h.waitAttempts(up, 1)
	p := h.drop("SR-61", "big.mxf", watcher.Ready, 4)
	<-started
	rel, _ := filepath.Rel(h.root, p)
	h.events <- watcher.Event{Kind: watcher.Removed, Path: p, Rel: filepath.ToSlash(rel)}
	select {
	case err := <-stopped:
		if err == nil {
			t.Fatal("the upload of a removed source ran to its end; its context was never cancelled")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upload of a removed source was not stopped within 5s")
	}
	waitUntil(t, func() bool {
		v := h.views.get("SR-61")
		return len(v.Files) == 0 && v.State == Waiting
	})
	release()
	h.waitState("SR-64", Delivered)
	waitUntil(t, func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		return slices.Equal(up.discarded, []string{"SR-61/big.mxf"})
	})
	waitUntil(t, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		_, rec := st.files[p]
		_, cp := st.checkpoints[p]
		return !rec && !cp
	})
	if up.count() != 1 {
		t.Errorf("%d uploads published, want 1 (other.mxf only)", up.count())
	}
	if !strings.Contains(logs.String(), "source removed during upload") {
		t.Errorf("no log line says the upload stopped because its source was removed:\n%s", logs.String())
	}
}

// A shutdown still stops uploads at a resumable point: the partial is not discarded and the
// resume point stays.
func TestShutdownKeepsPartial(t *testing.T) {
	up := newFakeUploader()
	started := make(chan struct{})
	up.during = func(ctx context.Context, j Job) error {
		j.Checkpoint(Checkpoint{Partial: "/in/SR-63/.big.mxf.partial", Offset: 2, Size: 4})
		close(started)
		<-ctx.Done()
		return &TransferError{Code: "transient", Msg: "cancelled", Transient: true, Err: ctx.Err()}
	}
	st := newMemStore()
	h := newHarness(t, st, up, req("SR-63", 1))
	p := h.drop("SR-63", "big.mxf", watcher.Ready, 4)
	<-started
	h.stop()
	st.mu.Lock()
	_, cp := st.checkpoints[p]
	st.mu.Unlock()
	up.mu.Lock()
	discarded := len(up.discarded)
	up.mu.Unlock()
	if !cp || discarded != 0 {
		t.Errorf("after a shutdown: checkpoint kept %v, discards %d; want the checkpoint kept and nothing discarded", cp, discarded)
	}
}

// A source removed and made again while its upload runs: the upload of the removed file
// stops, its partial is discarded, and the new file is sent once it is ready, not left
// "uploading" for good.
func TestRemovedAndRemadeMidUpload(t *testing.T) {
	up := newFakeUploader()
	first := make(chan struct{})
	var calls atomic.Int32
	up.during = func(ctx context.Context, j Job) error {
		if calls.Add(1) > 1 {
			return nil
		}
		close(first)
		select {
		case <-ctx.Done():
			return &TransferError{Code: "transient", Msg: "cancelled", Transient: true, Err: ctx.Err()}
		case <-time.After(10 * time.Second):
			return nil
		}
	}
	h := newHarness(t, newMemStore(), up, req("SR-65", 1))
	p := h.drop("SR-65", "a.mxf", watcher.Ready, 4)
	<-first
	rel, _ := filepath.Rel(h.root, p)
	h.events <- watcher.Event{Kind: watcher.Removed, Path: p, Rel: filepath.ToSlash(rel)}
	h.events <- watcher.Event{Kind: watcher.Ready, Path: p, Rel: filepath.ToSlash(rel), Info: watcher.FileInfo{Size: 5, ModTime: time.Unix(2000, 0), Inode: 8}}
	v := h.waitState("SR-65", Delivered)
	if len(v.Files) != 1 || v.Files[0].Size != 5 || up.count() != 1 || calls.Load() != 2 {
		t.Errorf("files %+v, %d published of %d attempts; want the new a.mxf (5 bytes) published by the second", v.Files, up.count(), calls.Load())
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if !slices.Equal(up.discarded, []string{"SR-65/a.mxf"}) {
		t.Errorf("discarded %v, want the removed file's partial", up.discarded)
	}
}

// A file whose upload fails for good after an earlier attempt kept a partial for a resume:
// the partial is removed from the server along with the resume point. Before, only the
// resume point was dropped, and the partial stayed on the server for good (the attempt that
// failed never reached it: a source it could no longer read, a final name taken since).
// A file delivered after such a cut asks for no removal: its partial became the file.
func TestFailedForGoodDiscardsKeptPartial(t *testing.T) {
	up := newFakeUploader()
	up.refuseExisting = true
	up.fail = func(attempt int, j Job) error {
		if attempt == 1 {
			j.Checkpoint(Checkpoint{Partial: "/in/" + j.RemoteRel[:strings.LastIndex(j.RemoteRel, "/")+1] + "." + filepath.Base(j.RemoteRel) + ".partial", Offset: 2, Size: 4})
			return &TransferError{Code: "transient", Transient: true, Msg: "connection lost"}
		}
		return nil
	}
	up.remote["SR-65/taken.mxf"] = 9 // someone else's file; the second attempt is refused
	st := newMemStore()
	h := newHarness(t, st, up, req("SR-65", 1), req("SR-66", 1))
	taken := h.drop("SR-65", "taken.mxf", watcher.Ready, 4)
	waitUntil(t, func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		return slices.Equal(up.discarded, []string{"SR-65/taken.mxf"})
	})
	waitUntil(t, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		_, cp := st.checkpoints[taken]
		return !cp && st.files[taken].Reason == ReasonRemoteExists
	})

	h.drop("SR-66", "fine.mxf", watcher.Ready, 4)
	h.waitState("SR-66", Delivered)
	up.mu.Lock()
	defer up.mu.Unlock()
	if !slices.Equal(up.discarded, []string{"SR-65/taken.mxf"}) {
		t.Errorf("partials removed: %v, want SR-65/taken.mxf only (fine.mxf was delivered from its partial)", up.discarded)
	}
}

// A file whose upload fails for good because the server will not be logged in to (its host
// key changed, the login refused) keeps its partial: the server is not dialled again for it.
func TestLoginRefusedDiscardsNothing(t *testing.T) {
	up := newFakeUploader()
	var ended atomic.Int32
	up.fail = func(attempt int, j Job) error {
		if attempt == 1 {
			j.Checkpoint(Checkpoint{Partial: "/in/SR-67/.key.mxf.partial", Offset: 2, Size: 4})
			return &TransferError{Code: "transient", Transient: true, Msg: "connection lost"}
		}
		return &TransferError{Code: "host_key_changed", Msg: "the server's host key changed"}
	}
	up.after = func(j Job, err error) {
		if err != nil && !asTransferError(err).Transient {
			ended.Add(1)
		}
	}
	st := newMemStore()
	h := newHarness(t, st, up, req("SR-67", 1))
	p := h.drop("SR-67", "key.mxf", watcher.Ready, 4)
	waitUntil(t, func() bool {
		st.mu.Lock()
		defer st.mu.Unlock()
		return ended.Load() == 1 && st.files[p].State == Failed
	})
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.discarded) != 0 {
		t.Errorf("partials removed after a refused login: %v, want none", up.discarded)
	}
}

// Two files that map to one remote path are never sent at once: they would write the same
// partial, and the file published could hold both's bytes. The second waits for the first
// to end, then finds the name taken (remote_exists) as any file does.
func TestOneUploadPerRemotePath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := newFakeUploader()
		up.refuseExisting = true
		release := make(chan struct{})
		var mu sync.Mutex
		inflight, entered := map[string]int{}, map[string]int{}
		up.during = func(ctx context.Context, j Job) error {
			mu.Lock()
			inflight[j.RemoteRel]++
			entered[j.RemoteRel]++
			first := entered[j.RemoteRel] == 1
			mu.Unlock()
			defer func() {
				mu.Lock()
				inflight[j.RemoteRel]--
				mu.Unlock()
			}()
			if first {
				<-release
			}
			return nil
		}
		st := newMemStore()
		h := newHarnessWith(t, t.TempDir(), st, up, func(o *Options) {
			o.RemotePath = func(r Request, name string) (string, error) { return "same/" + name, nil }
		}, req("SR-70", 1), req("SR-71", 1))
		a := h.drop("SR-70", "x.wav", watcher.Ready, 4)
		b := h.drop("SR-71", "x.wav", watcher.Ready, 4)
		synctest.Wait() // the engine has started all it would, with the first upload held
		mu.Lock()
		n := entered["same/x.wav"]
		mu.Unlock()
		if n != 1 {
			t.Errorf("%d uploads to same/x.wav at once, want 1", n)
		}
		// The views are published at their own pace: wait for the one that says it.
		var why []string
		said := eventually(func() bool {
			why = why[:0]
			for _, v := range h.eng.Requests() {
				for _, f := range v.Files {
					if f.Why != "" {
						why = append(why, f.Why)
					}
				}
			}
			return len(why) == 1 && strings.Contains(why[0], "waits for the upload of "+a+", which goes to the same remote path")
		})
		if !said {
			t.Errorf("the waiting file says %q, want that it waits for %s", why, a)
		}
		close(release)
		synctest.Wait()
		mu.Lock()
		n = entered["same/x.wav"]
		mu.Unlock()
		if n != 2 {
			t.Errorf("%d uploads to same/x.wav once the first ended, want 2", n)
		}
		// The engine journals what it decided through its paced writer: wait for that.
		waitUntil(t, func() bool {
			st.mu.Lock()
			defer st.mu.Unlock()
			held := 0
			for _, p := range []string{a, b} {
				if st.files[p].Reason == ReasonRemoteExists {
					held++
				}
			}
			return held == 1
		})
		if up.count() != 1 {
			t.Errorf("%d published, want 1", up.count())
		}
	})
}
