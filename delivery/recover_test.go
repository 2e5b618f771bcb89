package delivery

import (
	"context"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

func TestRestartNeverResends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, up := newMemStore(), newFakeUploader()
		h := newHarness(t, st, up, req("SR-10", 1))
		h.drop("SR-10", "a.ttml", watcher.Ready, 5)
		h.waitState("SR-10", Delivered)
		h.stop()

		h2 := newHarnessAt(t, h.root, st, up, req("SR-10", 1))
		h2.drop("SR-10", "a.ttml", watcher.Settling, 5)
		h2.drop("SR-10", "a.ttml", watcher.Ready, 5)
		synctest.Wait() // an upload started for it would be over by now
		if n := up.count(); n != 1 {
			t.Fatalf("uploads after restart = %d, want 1", n)
		}
		// A changed file for a delivered request is held, not sent twice.
		h2.drop("SR-10", "a.ttml", watcher.Ready, 6)
		v := h2.waitState("SR-10", Held)
		if v.Files[0].Reason != ReasonAlreadyDelivered {
			t.Errorf("reason = %q, want %s", v.Files[0].Reason, ReasonAlreadyDelivered)
		}
		h2.stop()

		// Nor after another restart: the journal still knows it was delivered once. (The file
		// is on disk, as it would be; a changed file removed while hotdrop is down is not.)
		writeReal(t, filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-10]", "a.ttml"), "changed")
		h3 := newHarnessAt(t, h.root, st, up, req("SR-10", 1))
		h3.drop("SR-10", "a.ttml", watcher.Ready, 6)
		v = h3.waitState("SR-10", Held)
		if v.Files[0].Reason != ReasonAlreadyDelivered || up.count() != 1 {
			t.Errorf("after a second restart: reason %q, uploads %d; want %s and 1", v.Files[0].Reason, up.count(), ReasonAlreadyDelivered)
		}
	})
}

func TestRenameIntentReconciled(t *testing.T) {
	st, up := newMemStore(), newFakeUploader()
	root := t.TempDir()
	p := filepath.Join(root, "Wednesday", "Subtitle fr-FR [SR-11]", "a.ttml")
	// A crash between the journaled intent and the delivered record: the rename happened.
	st.files[p] = FileRecord{Path: p, RequestID: "SR-11", Size: 5, ModTime: time.Unix(1000, 0), Inode: 7,
		State: Uploading, RemotePath: "SR-11/a.ttml", RenameIntent: true}
	up.remote["SR-11/a.ttml"] = 5
	h := newHarnessAt(t, root, st, up, req("SR-11", 1))
	rel := "Wednesday/Subtitle fr-FR [SR-11]/a.ttml"
	h.events <- watcher.Event{Kind: watcher.Ready, Path: p, Rel: rel, Info: watcher.FileInfo{Size: 5, ModTime: time.Unix(1000, 0), Inode: 7}}
	h.waitState("SR-11", Delivered)
	if n := up.count(); n != 0 {
		t.Errorf("uploads = %d, want 0: the file was already on the server", n)
	}
}

func TestRenameIntentReconciledAtStart(t *testing.T) {
	st, up := newMemStore(), newFakeUploader()
	root := t.TempDir()
	p := filepath.Join(root, "Wednesday", "Subtitle fr-FR [SR-12]", "a.ttml")
	st.files[p] = FileRecord{Path: p, RequestID: "SR-12", Size: 5, ModTime: time.Unix(1000, 0), Inode: 7,
		State: Uploading, RemotePath: "SR-12/a.ttml", RenameIntent: true}
	up.remote["SR-12/a.ttml"] = 5
	newHarnessAt(t, root, st, up, req("SR-12", 1)).waitState("SR-12", Delivered)
	if n := up.count(); n != 0 {
		t.Errorf("uploads = %d, want 0", n)
	}
	if f := st.files[p]; f.RenameIntent || f.State != Delivered {
		t.Errorf("journal after reconcile = %+v, want delivered without intent", f)
	}

	// The rename had not happened (no final file): the intent is cleared, nothing delivered.
	st2, up2 := newMemStore(), newFakeUploader()
	root2 := t.TempDir()
	p2 := filepath.Join(root2, "Wednesday", "Subtitle fr-FR [SR-13]", "a.ttml")
	st2.files[p2] = FileRecord{Path: p2, RequestID: "SR-13", Size: 5, ModTime: time.Unix(1000, 0), Inode: 7,
		State: Uploading, RemotePath: "SR-13/a.ttml", RenameIntent: true}
	newHarnessAt(t, root2, st2, up2, req("SR-13", 1))
	var f FileRecord
	if !eventually(func() bool {
		st2.mu.Lock()
		defer st2.mu.Unlock()
		f = st2.files[p2]
		return !f.RenameIntent
	}) {
		t.Fatal("intent never cleared")
	}
	if f.State == Delivered {
		t.Fatalf("delivered with no remote file")
	}
}

func TestIntentWithPartialNotDelivered(t *testing.T) {
	up := newFakeUploader()
	up.remote["SR-61/a.ttml"] = 5          // the old delivery, same size
	up.remote["SR-61/.a.ttml.partial"] = 5 // the rename never happened
	ok, err := renameHappened(context.Background(), up, "SR-61/a.ttml", 5)
	if err != nil || ok {
		t.Errorf("renameHappened with the partial present = %v, %v; want false", ok, err)
	}
	delete(up.remote, "SR-61/.a.ttml.partial")
	if ok, _ := renameHappened(context.Background(), up, "SR-61/a.ttml", 5); !ok {
		t.Errorf("renameHappened with the partial gone = false, want true")
	}

	// destination.temp_name = "_partial/{name}": the partial is looked for where the
	// uploader writes it, not under the default name.
	named := partialNamed{up, "_partial/{name}"}
	up.remote["SR-61/_partial/a.ttml"] = 5
	if ok, err := renameHappened(context.Background(), named, "SR-61/a.ttml", 5); err != nil || ok {
		t.Errorf("renameHappened with temp_name's partial present = %v, %v; want false", ok, err)
	}
	delete(up.remote, "SR-61/_partial/a.ttml")
	if ok, _ := renameHappened(context.Background(), named, "SR-61/a.ttml", 5); !ok {
		t.Errorf("renameHappened with temp_name's partial gone = false, want true")
	}
}

// partialNamed is a fakeUploader whose partials follow a temp_name template.
type partialNamed struct {
	*fakeUploader
	tmpl string
}

func (p partialNamed) PartialOf(rel string) string {
	return path.Join(path.Dir(rel), strings.Replace(p.tmpl, "{name}", path.Base(rel), 1))
}

// finishRecorder is a fakeUploader that finishes publishes, keeping the jobs it was given.
type finishRecorder struct {
	*fakeUploader
	mu   sync.Mutex
	jobs []Job
}

func (f *finishRecorder) FinishPublish(_ context.Context, j Job) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jobs = append(f.jobs, j)
	return Result{Remote: "/in/" + j.RemoteRel, Size: j.Size, SHA256: "sum"}, nil
}

// A redelivery whose rename happened before a crash is finished at start as a replace: the
// checksum file beside it is its earlier version's, which the new one must take the place of.
// A first delivery's is not.
func TestRedeliveryReconciledAtStartReplaces(t *testing.T) {
	for _, tc := range []struct {
		name        string
		deliveredAt time.Time
	}{{"first delivery", time.Time{}}, {"redelivery", time.Unix(900, 0)}} {
		t.Run(tc.name, func(t *testing.T) {
			st, up := newMemStore(), &finishRecorder{fakeUploader: newFakeUploader()}
			root := t.TempDir()
			p := filepath.Join(root, "Wednesday", "Subtitle fr-FR [SR-14]", "a.ttml")
			st.files[p] = FileRecord{Path: p, RequestID: "SR-14", Size: 5, ModTime: time.Unix(1000, 0), Inode: 7,
				State: Uploading, RemotePath: "SR-14/a.ttml", RenameIntent: true, DeliveredAt: tc.deliveredAt}
			up.remote["SR-14/a.ttml"] = 5
			newHarnessFor(t, root, st, up, up.fakeUploader, nil, req("SR-14", 1)).waitState("SR-14", Delivered)
			up.mu.Lock()
			defer up.mu.Unlock()
			if len(up.jobs) != 1 || up.jobs[0].Replace != !tc.deliveredAt.IsZero() {
				t.Errorf("FinishPublish jobs %+v, want one with Replace %v", up.jobs, !tc.deliveredAt.IsZero())
			}
		})
	}
}
