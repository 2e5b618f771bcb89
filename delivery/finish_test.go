package delivery

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

func TestManifestAfterLastFile(t *testing.T) {
	up := newFakeUploader()
	h, _ := withEvents(t, up, func(o *Options) { o.Manifest = true }, req("SR-40", 2))
	h.drop("SR-40", "a.wav", watcher.Ready, 4)
	h.drop("SR-40", "sub/b.wav", watcher.Ready, 5)
	h.waitState("SR-40", Delivered)
	waitUntil(t, func() bool { _, ok := up.sizeOf("SR-40/SR-40.hotdrop.json"); return ok })
	if n := up.count(); n != 3 {
		t.Errorf("uploads = %d, want 2 files and 1 manifest", n)
	}
}

func TestAfterMoveAndDelete(t *testing.T) {
	for _, after := range []string{"move", "delete", "keep"} {
		t.Run(after, func(t *testing.T) {
			h, _ := withEvents(t, newFakeUploader(), func(o *Options) { o.After = after }, req("SR-41", 1))
			p := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-41]", "a.ttml")
			if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
				t.Fatal(err)
			}
			h.drop("SR-41", "a.ttml", watcher.Ready, 4)
			h.waitState("SR-41", Delivered)
			moved := filepath.Join(h.root, DeliveredDir, "Wednesday", "Subtitle fr-FR [SR-41]", "a.ttml")
			_, srcErr := os.Stat(p)
			_, movedErr := os.Stat(moved)
			switch after {
			case "move":
				if srcErr == nil || movedErr != nil {
					t.Errorf("after move: source err %v, moved err %v", srcErr, movedErr)
				}
			case "delete":
				if srcErr == nil || movedErr == nil {
					t.Errorf("after delete: source still there (%v) or moved (%v)", srcErr, movedErr)
				}
			case "keep":
				if srcErr != nil || movedErr == nil {
					t.Errorf("after keep: source err %v, moved err %v", srcErr, movedErr)
				}
			}
		})
	}
}

// A transient failure mid-file: the retry resumes from the journaled checkpoint, and the
// checkpoint is forgotten once the file is delivered.
func TestRetryResumesFromCheckpoint(t *testing.T) {
	up := newFakeUploader()
	var resumedFrom int64 = -1
	up.fail = func(n int, j Job) error {
		if n == 1 {
			j.Checkpoint(Checkpoint{Partial: "/in/.a.partial", Offset: 4096, Size: j.Size})
			return &TransferError{Code: "transient", Msg: "connection lost", Transient: true}
		}
		if j.Resume != nil {
			resumedFrom = j.Resume.Offset
		}
		return nil
	}
	st := newMemStore()
	h := newHarnessWith(t, t.TempDir(), st, up, nil, req("SR-42", 1))
	p := h.drop("SR-42", "a.ttml", watcher.Ready, 10000)
	h.waitState("SR-42", Delivered)
	if resumedFrom != 4096 {
		t.Errorf("second attempt resumed from %d, want 4096", resumedFrom)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.checkpoints[p]; ok {
		t.Errorf("checkpoint still journaled after delivery")
	}
}

// A crash after a request's last file but before its manifest: the next start sends it.
func TestManifestOwedAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, up := newMemStore(), newFakeUploader()
		root := t.TempDir()
		p := filepath.Join(root, "Wednesday", "Subtitle fr-FR [SR-43]", "a.ttml")
		st.files[p] = FileRecord{Path: p, RequestID: "SR-43", Size: 5, ModTime: time.Unix(1000, 0), Inode: 7,
			State: Delivered, RemotePath: "/in/SR-43/a.ttml", SHA256: "abc", DeliveredAt: time.Now()}
		newHarnessWith(t, root, st, up, func(o *Options) { o.Manifest = true }, req("SR-43", 1))
		waitUntil(t, func() bool { _, ok := up.sizeOf("SR-43/SR-43.hotdrop.json"); return ok })
		// Recorded as written (not merely as intended: that is what a crash behind the rename
		// leaves, and it is sent again).
		waitUntil(t, func() bool {
			at, _ := st.ManifestAt(context.Background(), "SR-43")
			return !at.IsZero() && !at.Equal(manifestIntent)
		})

		// Once recorded, a later start sends nothing.
		up2 := newFakeUploader()
		newHarnessWith(t, root, st, up2, func(o *Options) { o.Manifest = true }, req("SR-43", 1)).waitState("SR-43", Delivered)
		synctest.Wait() // a manifest started at Run would be uploaded by now
		if up2.count() != 0 {
			t.Errorf("manifest sent again after it was recorded")
		}
	})
}

// TestManifestRetried: a manifest that could not be written is tried again until it is on the
// server and recorded: here the server refuses it twice, and the local temp folder (state_dir's,
// which may have turned read-only) cannot hold it at all. Before, one failure was logged and the
// package was never announced.
func TestManifestRetried(t *testing.T) {
	up := newFakeUploader()
	var tries atomic.Int32 // the temp file differs each time: count by the remote name
	up.fail = func(_ int, j Job) error {
		if filepath.Base(j.RemoteRel) == "SR-44.hotdrop.json" && tries.Add(1) <= 2 {
			return &TransferError{Code: "permission_denied", Msg: "write SR-44/SR-44.hotdrop.json: permission denied"}
		}
		return nil
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st := newMemStore()
	h := newHarnessWith(t, t.TempDir(), st, up, func(o *Options) {
		o.Manifest, o.TempDir = true, filepath.Join(notDir, "tmp")
	}, req("SR-44", 1))
	h.drop("SR-44", "a.ttml", watcher.Ready, 4)
	h.waitState("SR-44", Delivered)
	waitUntil(t, func() bool {
		at, _ := st.ManifestAt(context.Background(), "SR-44")
		return !at.IsZero() && !at.Equal(manifestIntent)
	})
	if _, ok := up.sizeOf("SR-44/SR-44.hotdrop.json"); !ok {
		t.Errorf("manifest recorded as written but not on the server")
	}
	if n := tries.Load(); n != 3 {
		t.Errorf("manifest attempts = %d, want 3 (two refusals, then written)", n)
	}
}

// TestManifestNeverReplacesWhatIsNotOurs: a request's first manifest may not replace a file
// of its name (one hotdrop did not write); its intent is journaled before the rename, so after
// a crash right behind the rename the manifest there is known as hotdrop's own and replaced.
func TestManifestNeverReplacesWhatIsNotOurs(t *testing.T) {
	up := newFakeUploader()
	var mu sync.Mutex
	var replaces []bool
	foreign := atomic.Bool{}
	foreign.Store(true)
	up.fail = func(_ int, j Job) error {
		if filepath.Base(j.RemoteRel) != "SR-45.hotdrop.json" {
			return nil
		}
		mu.Lock()
		replaces = append(replaces, j.Replace)
		mu.Unlock()
		if foreign.Load() && !j.Replace {
			return &TransferError{Code: ReasonRemoteExists, Msg: "remote file SR-45/SR-45.hotdrop.json already exists and hotdrop did not deliver it"}
		}
		return nil
	}
	st := newMemStore()
	h := newHarnessWith(t, t.TempDir(), st, up, func(o *Options) { o.Manifest = true }, req("SR-45", 1))
	h.drop("SR-45", "a.ttml", watcher.Ready, 4)
	h.waitState("SR-45", Delivered)
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(replaces) >= 2 })
	if at, _ := st.ManifestAt(context.Background(), "SR-45"); !at.IsZero() {
		t.Errorf("manifest recorded at %v while a foreign file holds its name", at)
	}
	mu.Lock()
	for i, r := range replaces {
		if r {
			t.Errorf("manifest try %d may replace a file hotdrop did not write", i+1)
		}
	}
	mu.Unlock()
	foreign.Store(false) // the studio moved its file away: the next try writes the manifest
	waitUntil(t, func() bool {
		at, _ := st.ManifestAt(context.Background(), "SR-45")
		return !at.IsZero() && !at.Equal(manifestIntent)
	})

	// A crash between the rename and its record: the journal holds the intent, so the next
	// start sends the manifest again and may replace the one there (its own).
	st2, up2 := newMemStore(), newFakeUploader()
	root := t.TempDir()
	p := filepath.Join(root, "Wednesday", "Subtitle fr-FR [SR-46]", "a.ttml")
	st2.files[p] = FileRecord{Path: p, RequestID: "SR-46", Size: 5, ModTime: time.Unix(1000, 0), Inode: 7,
		State: Delivered, RemotePath: "SR-46/a.ttml", SHA256: "abc", DeliveredAt: time.Now()}
	st2.MarkManifest(context.Background(), "SR-46", manifestIntent)
	var replaced atomic.Bool
	up2.fail = func(_ int, j Job) error {
		if filepath.Base(j.RemoteRel) == "SR-46.hotdrop.json" {
			replaced.Store(j.Replace)
		}
		return nil
	}
	newHarnessWith(t, root, st2, up2, func(o *Options) { o.Manifest = true }, req("SR-46", 1))
	waitUntil(t, func() bool {
		at, _ := st2.ManifestAt(context.Background(), "SR-46")
		return !at.IsZero() && !at.Equal(manifestIntent)
	})
	if !replaced.Load() {
		t.Error("the manifest owed after a crash behind its rename was sent without leave to replace its own copy")
	}
}

// A manifest upload stopped by hotdrop's own stop leaves no partial on the server: it is
// never resumed (the next start sends it whole), so the partial would only be litter.
func TestStoppedManifestLeavesNoPartial(t *testing.T) {
	up := newFakeUploader()
	inside := make(chan struct{})
	var once sync.Once
	up.during = func(ctx context.Context, j Job) error {
		if !strings.HasSuffix(j.RemoteRel, ".hotdrop.json") {
			return nil
		}
		once.Do(func() { close(inside) })
		<-ctx.Done() // the manifest is on its way when hotdrop stops
		return ctx.Err()
	}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Manifest = true }, req("SR-8", 1))
	h.drop("SR-8", "a.ttml", watcher.Ready, 10)
	<-inside
	h.stop()
	up.mu.Lock()
	defer up.mu.Unlock()
	if len(up.discarded) != 1 || up.discarded[0] != "SR-8/SR-8.hotdrop.json" {
		t.Fatalf("partials removed = %v, want the manifest's (SR-8/SR-8.hotdrop.json)", up.discarded)
	}
}

// TestNewerManifestSupersedesOneStillTrying: a request delivered again (a redelivery with a
// file added) while its first manifest still waits on the server ends with the newer
// manifest there: the older upload is stopped before the newer starts, so it can never land
// last and announce a package without the file added.
func TestNewerManifestSupersedesOneStillTrying(t *testing.T) {
	const rel = "SR-47/SR-47.hotdrop.json"
	up := newFakeUploader()
	release := make(chan struct{})
	firstEnded := make(chan error, 1)
	var mu sync.Mutex
	var sizes []int64 // of each manifest sent, in order
	up.during = func(ctx context.Context, j Job) error {
		if j.RemoteRel != rel {
			return nil
		}
		mu.Lock()
		sizes = append(sizes, j.Size)
		first := len(sizes) == 1
		mu.Unlock()
		if !first {
			return nil
		}
		select { // the server sits on the first manifest
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var ended atomic.Int32
	up.after = func(j Job, err error) {
		if j.RemoteRel == rel && ended.Add(1) == 1 {
			firstEnded <- err
		}
	}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Manifest = true }, req("SR-47", 0))
	h.drop("SR-47", "a.wav", watcher.Ready, 4)
	h.drop("SR-47", "_READY", watcher.Ready, 0)
	h.waitState("SR-47", Delivered)
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })

	if err := h.eng.Reload(context.Background(), h.eng.opt, nil, []Request{req("SR-47", 0, "status", StatusRedeliveryRequested)}); err != nil {
		t.Fatal(err)
	}
	h.drop("SR-47", "b.wav", watcher.Ready, 5)
	waitUntil(t, func() bool { _, ok := up.sizeOf("SR-47/b.wav"); return ok })
	h.waitState("SR-47", Delivered)
	waitUntil(t, func() bool { // the newer manifest is on the server
		mu.Lock()
		defer mu.Unlock()
		got, ok := up.sizeOf(rel)
		return len(sizes) == 2 && ok && got == sizes[1]
	})
	close(release) // had the first manifest not been stopped, it would land now, last
	<-firstEnded
	h.stop()

	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 2 {
		t.Fatalf("manifests sent: %d, want the second delivery's too", len(sizes))
	}
	got, ok := up.sizeOf(rel)
	if want := sizes[len(sizes)-1]; !ok || got != want || want == sizes[0] {
		t.Errorf("manifest on the server: %d bytes (there: %v), want the newer one's %d (the first was %d)", got, ok, want, sizes[0])
	}
}
