package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/watcher"
)

// memStore is an in-memory journal: the state machine's tests care about decisions, and the
// real SQLite journal is exercised end to end in cmd/hotdrop.
type memStore struct {
	mu          sync.Mutex
	files       map[string]FileRecord
	reqs        map[string]RequestRecord
	checkpoints map[string]Checkpoint
	manifests   map[string]time.Time
	nextID      int64
	// beforeSave, when set, runs before each SaveFiles: it may wait (a slow disk) or refuse.
	beforeSave func([]FileRecord) error
}

func newMemStore() *memStore {
	return &memStore{files: map[string]FileRecord{}, reqs: map[string]RequestRecord{}}
}

func (s *memStore) SaveRequests(ctx context.Context, rs []RequestRecord) error {
	for _, r := range rs {
		_ = s.SaveRequest(ctx, r)
	}
	return nil
}

// RequestRecords lists the requests journaled (RequestLister).
func (s *memStore) RequestRecords(context.Context) ([]RequestRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RequestRecord, 0, len(s.reqs))
	for _, r := range s.reqs {
		out = append(out, r)
	}
	return out, nil
}

func (s *memStore) SaveRequest(_ context.Context, r RequestRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs[r.ID] = r
	return nil
}

func (s *memStore) SaveFiles(ctx context.Context, fs []FileRecord) ([]int64, error) {
	s.mu.Lock()
	before := s.beforeSave
	s.mu.Unlock()
	if before != nil {
		if err := before(fs); err != nil {
			return nil, err
		}
	}
	ids := make([]int64, len(fs))
	for i, f := range fs {
		ids[i], _ = s.SaveFile(ctx, f)
	}
	return ids, nil
}

func (s *memStore) SaveFile(_ context.Context, f FileRecord) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.files[f.Path]; ok {
		f.ID = old.ID
	} else {
		s.nextID++
		f.ID = s.nextID
	}
	s.files[f.Path] = f
	return f.ID, nil
}

func (s *memStore) setBeforeSave(fn func([]FileRecord) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.beforeSave = fn
}

func (s *memStore) record(p string) (FileRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[p]
	return f, ok
}

func (s *memStore) DeleteFile(_ context.Context, p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, p)
	return nil
}

func (s *memStore) Files(context.Context) ([]FileRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []FileRecord
	for _, f := range s.files {
		out = append(out, f)
	}
	return out, nil
}

// WriteTx runs fn on the store itself and, like the journal, keeps none of it when fn fails:
// the records and requests are put back as they were (a test can then see a batch that was
// half written).
func (s *memStore) WriteTx(_ context.Context, _ bool, fn func(JournalTx) error) error {
	s.mu.Lock()
	files, reqs, next := maps.Clone(s.files), maps.Clone(s.reqs), s.nextID
	s.mu.Unlock()
	if err := fn(s); err != nil {
		s.mu.Lock()
		s.files, s.reqs, s.nextID = files, reqs, next
		s.mu.Unlock()
		return err
	}
	return nil
}

func (s *memStore) MarkRenameIntents(ctx context.Context, in []RenameIntent) []error {
	errs := make([]error, len(in))
	for i, x := range in {
		errs[i] = s.MarkRenameIntent(ctx, x.Path, x.Remote, x.SHA256)
	}
	return errs
}

func (s *memStore) MarkRenameIntent(_ context.Context, p, remote, sha string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[p]
	if !ok {
		return fmt.Errorf("no file %s", p)
	}
	f.RenameIntent, f.RemotePath = true, remote
	s.files[p] = f
	return nil
}

func (s *memStore) Checkpoint(_ context.Context, p string) (Checkpoint, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.checkpoints[p]
	return c, ok, nil
}

func (s *memStore) SaveCheckpoint(_ context.Context, p string, c Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checkpoints == nil {
		s.checkpoints = map[string]Checkpoint{}
	}
	s.checkpoints[p] = c
	return nil
}

func (s *memStore) ManifestAt(_ context.Context, id string) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.manifests[id], nil
}

func (s *memStore) MarkManifest(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifests == nil {
		s.manifests = map[string]time.Time{}
	}
	s.manifests[id] = at
	return nil
}

func (s *memStore) DeleteCheckpoint(_ context.Context, p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.checkpoints, p)
	return nil
}

// fakeUploader records uploads into a map; fail, when set, decides an attempt's error.
type fakeUploader struct {
	mu      sync.Mutex
	remote  map[string]int64
	uploads []string
	fail    func(attempt int, j Job) error
	attempt map[string]int
	// during, when set, runs inside each upload with its context (after fail).
	during func(ctx context.Context, j Job) error
	// after, when set, is told how each upload ended, once it has.
	after func(j Job, err error)
	// lostReply, when set and true for an attempt, loses the answer to its rename: the file
	// is renamed into place and the upload fails as a dropped link would.
	lostReply func(attempt int, j Job) bool
	// refuseExisting refuses a file whose final name is taken (and Replace not set), as the
	// real uploader does: remote_exists.
	refuseExisting bool
	// hashes: a delivered file's Result.SHA256 is the local file's (else "sum").
	hashes    bool
	discarded []string // remote paths whose partial Discard was asked to remove
}

func (u *fakeUploader) Discard(_ context.Context, rel string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.discarded = append(u.discarded, rel)
	return nil
}

func newFakeUploader() *fakeUploader {
	return &fakeUploader{remote: map[string]int64{}, attempt: map[string]int{}}
}

func (u *fakeUploader) Upload(ctx context.Context, j Job) (res Result, err error) {
	u.mu.Lock()
	u.attempt[j.LocalPath]++
	n := u.attempt[j.LocalPath]
	fail, during, after := u.fail, u.during, u.after
	u.mu.Unlock()
	if after != nil {
		defer func() { after(j, err) }()
	}
	if fail != nil {
		if err := fail(n, j); err != nil {
			return Result{}, err
		}
	}
	if during != nil {
		if err := during(ctx, j); err != nil {
			return Result{}, err
		}
	}
	u.mu.Lock()
	_, taken := u.remote[j.RemoteRel]
	refuse, lost := u.refuseExisting && taken && !j.Replace, u.lostReply
	u.mu.Unlock()
	if refuse {
		return Result{}, &TransferError{Code: ReasonRemoteExists, Msg: "remote file " + j.RemoteRel + " already exists and hotdrop did not deliver it"}
	}
	if err := j.BeforeRename(ctx); err != nil {
		return Result{}, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.remote[j.RemoteRel] = j.Size
	u.uploads = append(u.uploads, j.RemoteRel)
	if lost != nil && lost(n, j) {
		return Result{}, &TransferError{Code: "transient", Transient: true, Msg: "rename " + j.RemoteRel + ": connection lost"}
	}
	sum := "sum"
	if u.hashes {
		b, err := os.ReadFile(j.LocalPath)
		if err != nil {
			return Result{}, err
		}
		h := sha256.Sum256(b)
		sum = hex.EncodeToString(h[:])
	}
	return Result{Remote: "/in/" + j.RemoteRel, Size: j.Size, SHA256: sum}, nil
}

func (u *fakeUploader) Stat(_ context.Context, rel string) (int64, bool, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n, ok := u.remote[rel]
	return n, ok, nil
}

func (u *fakeUploader) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.uploads)
}

// viewLog keeps the latest view of each request.
type viewLog struct {
	mu    sync.Mutex
	views map[string]RequestView
}

func (l *viewLog) RequestChanged(v RequestView) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.views == nil {
		l.views = map[string]RequestView{}
	}
	l.views[v.ID] = v
}

func (l *viewLog) get(id string) RequestView {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.views[id]
}

type harness struct {
	t      *testing.T
	root   string
	eng    *Engine
	up     *fakeUploader
	st     *memStore
	views  *viewLog
	events chan watcher.Event
	cancel context.CancelFunc
	done   chan error
}

func newHarness(t *testing.T, st *memStore, up *fakeUploader, reqs ...Request) *harness {
	return newHarnessAt(t, t.TempDir(), st, up, reqs...)
}

func newHarnessAt(t *testing.T, root string, st *memStore, up *fakeUploader, reqs ...Request) *harness {
	return newHarnessWith(t, root, st, up, nil, reqs...)
}

func newHarnessWith(t *testing.T, root string, st *memStore, up *fakeUploader, mutate func(*Options), reqs ...Request) *harness {
	t.Helper()
	return newHarnessFor(t, root, st, up, up, mutate, reqs...)
}

// newHarnessFor is newHarnessWith with the engine's uploader apart: one that wraps fake.
func newHarnessFor(t *testing.T, root string, st *memStore, up Uploader, fake *fakeUploader, mutate func(*Options), reqs ...Request) *harness {
	t.Helper()
	h := &harness{t: t, root: root, up: fake, st: st, views: &viewLog{}, events: make(chan watcher.Event)}
	opt := Options{
		Root: h.root, Bin: "_bin", FolderTemplate: "{title}/{source_type} {language} [{id}]", FolderMode: 0o2775,
		ReadyMarker: "_READY", Concurrency: 2, AutoDeliver: true, Names: "portable",
		RemotePath: func(r Request, name string) (string, error) { return r.ID + "/" + name, nil },
		Clock:      clock.NewSkipping(time.Unix(0, 0)), // a retry waits for no one
	}
	if mutate != nil {
		mutate(&opt)
	}
	h.eng = New(opt, up, st, h.views)
	if err := h.eng.SetRequests(context.Background(), reqs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.eng.Run(ctx, h.events) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

// drop reports a file in request id's folder with the given kind.
func (h *harness) drop(id, name string, kind watcher.Kind, size int64) string {
	h.t.Helper()
	var folder string
	for _, v := range h.eng.Requests() {
		if v.ID == id {
			folder = v.Folder
		}
	}
	if id == "" {
		folder = filepath.Join(h.root, "_bin")
	}
	p := filepath.Join(folder, filepath.FromSlash(name))
	rel, _ := filepath.Rel(h.root, p)
	info := watcher.FileInfo{Size: size, ModTime: time.Unix(1000, 0), Inode: 7}
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		// A real file: report what the watcher would, since the engine opens it by identity.
		info = watcher.FileInfo{Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi), Dev: devOf(fi)}
	}
	h.events <- watcher.Event{Kind: kind, Path: p, Rel: filepath.ToSlash(rel), Info: info}
	return p
}

func inodeOf(fi os.FileInfo) uint64 { return safefs.Inode(fi) }
func devOf(fi os.FileInfo) uint64   { return safefs.Device(fi) }

// eventually polls cond until it holds, for at most 5 s, and reports whether it did: the
// engine's loop is asynchronous, so a test waits for what it expects and fails when that does
// not come. Inside a testing/synctest bubble the 5 s are the bubble's, which pass at once
// while the engine is idle.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// waitAttempts waits until up was asked to upload n times in all.
func (h *harness) waitAttempts(up *fakeUploader, n int) {
	h.t.Helper()
	got := 0
	if !eventually(func() bool {
		up.mu.Lock()
		defer up.mu.Unlock()
		got = 0
		for _, a := range up.attempt {
			got += a
		}
		return got >= n
	}) {
		h.t.Fatalf("%d upload attempts, want %d", got, n)
	}
}

// waitState waits until request id reaches state.
func (h *harness) waitState(id string, want State) RequestView {
	h.t.Helper()
	var v RequestView
	if !eventually(func() bool { v = h.views.get(id); return v.State == want }) {
		h.t.Fatalf("request %s state = %s, want %s; files: %+v", id, v.State, want, v.Files)
	}
	return v
}

func req(id string, files int, extra ...string) Request {
	f := map[string]string{"id": id, "title": "Wednesday", "source_type": "Subtitle", "language": "fr-FR"}
	for i := 0; i+1 < len(extra); i += 2 {
		f[extra[i]] = extra[i+1]
	}
	status := f["status"]
	if status == "" {
		status = StatusOpen
	}
	return Request{ID: id, Status: status, Files: files, Fields: f}
}

func TestSingleFileDelivered(t *testing.T) {
	h := newHarness(t, newMemStore(), newFakeUploader(), req("SR-1", 1))
	if _, err := os.Stat(filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-1]")); err != nil {
		t.Fatalf("drop folder not created: %v", err)
	}
	h.drop("SR-1", "a.ttml", watcher.Settling, 10)
	h.waitState("SR-1", Settling)
	if n := h.up.count(); n != 0 {
		t.Fatalf("uploaded %d files while settling, want 0", n)
	}
	h.drop("SR-1", "a.ttml", watcher.Ready, 10)
	v := h.waitState("SR-1", Delivered)
	if len(v.Files) != 1 || v.Files[0].RemotePath != "/in/SR-1/a.ttml" || v.Files[0].SHA256 != "sum" {
		t.Errorf("delivered view files = %+v", v.Files)
	}
	if h.up.count() != 1 {
		t.Errorf("uploads = %d, want 1", h.up.count())
	}
}

func TestMultiFileWaitsForAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, newMemStore(), newFakeUploader(), req("SR-2", 2))
		h.drop("SR-2", "a.wav", watcher.Ready, 10)
		h.waitState("SR-2", Waiting)
		synctest.Wait() // the engine has done all it would with that file
		if n := h.up.count(); n != 0 {
			t.Fatalf("uploaded %d of an incomplete request, want 0", n)
		}
		h.drop("SR-2", "sub/b.wav", watcher.Ready, 10)
		h.waitState("SR-2", Delivered)
		if n := h.up.count(); n != 2 {
			t.Errorf("uploads = %d, want 2", n)
		}
	})
}

func TestMarkerCompletesAnyNumber(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, newMemStore(), newFakeUploader(), req("SR-3", 0))
		h.drop("SR-3", "a.mxf", watcher.Ready, 10)
		h.drop("SR-3", "b.mxf", watcher.Ready, 10)
		synctest.Wait() // the engine has done all it would with both files
		if n := h.up.count(); n != 0 {
			t.Fatalf("uploaded %d before the ready marker, want 0", n)
		}
		h.drop("SR-3", "_READY", watcher.Ready, 0)
		h.waitState("SR-3", Delivered)
		if n := h.up.count(); n != 2 {
			t.Errorf("uploads = %d, want 2 (the marker itself is never sent)", n)
		}
	})
}

func TestHolds(t *testing.T) {
	h := newHarness(t, newMemStore(), newFakeUploader(),
		req("SR-4", 1, "status", "closed"), req("SR-5", 1), req("SR-6", 1, "title", "Other"))
	// The closed request gets no folder of its own; pretend one was left from before.
	if err := h.eng.do(context.Background(), func() {
		h.eng.reqs["SR-4"].Folder = filepath.Join(h.root, "closed")
		h.eng.byFolder["closed"] = "SR-4"
	}); err != nil {
		t.Fatal(err)
	}
	h.drop("SR-4", "a.ttml", watcher.Ready, 1)
	v := h.waitState("SR-4", Held)
	if v.Files[0].Reason != ReasonRequestNotOpen {
		t.Errorf("closed request: reason %q, want %s", v.Files[0].Reason, ReasonRequestNotOpen)
	}

	h.drop("SR-5", "a.ttml", watcher.Settling, 1)
	h.drop("SR-5", "b.ttml", watcher.Ready, 1)
	v = h.waitState("SR-5", Held)
	if v.Files[1].Reason != ReasonTooManyFiles {
		t.Errorf("two files for one: %+v, want %s", v.Files, ReasonTooManyFiles)
	}

	h.drop("SR-6", "has space.ttml", watcher.Ready, 1)
	v = h.waitState("SR-6", Held)
	if v.Files[0].Reason != ReasonInvalidName {
		t.Errorf("name with a space: %+v, want %s", v.Files, ReasonInvalidName)
	}

	h.drop("SR-6", "link.ttml", watcher.Unsafe, 0)
	if h.up.count() != 0 {
		t.Errorf("uploads = %d, want 0", h.up.count())
	}
}

func TestChangedDuringUploadThenKeepsChanging(t *testing.T) {
	up := newFakeUploader()
	up.fail = func(n int, j Job) error {
		return &TransferError{Code: ReasonChangedDuringUpload, Msg: "changed"}
	}
	h := newHarness(t, newMemStore(), up, req("SR-9", 1))
	for i := 0; i < 2; i++ {
		// Each version is dropped once the previous one's upload was tried: versions that
		// arrive together are judged together, as one.
		h.drop("SR-9", "a.ttml", watcher.Ready, int64(10+i))
		h.waitAttempts(up, i+1)
		h.waitState("SR-9", Settling)
	}
	h.drop("SR-9", "a.ttml", watcher.Ready, 20)
	v := h.waitState("SR-9", Held)
	if v.Files[0].Reason != ReasonKeepsChanging {
		t.Errorf("reason = %q, want %s", v.Files[0].Reason, ReasonKeepsChanging)
	}
}

func TestFolderName(t *testing.T) {
	tmpl := "{title}/{source_type} {language} [{id}]"
	for _, tc := range []struct {
		fields map[string]string
		want   string
	}{
		{map[string]string{"title": "Wednesday", "source_type": "Subtitle", "language": "fr-FR", "id": "SR-1"}, "Wednesday/Subtitle fr-FR [SR-1]"},
		{map[string]string{"title": "Wednesday", "source_type": "SDH/CC", "id": "SR-2"}, "Wednesday/SDH_CC [SR-2]"},
		{map[string]string{"title": "..", "source_type": "IMF", "id": "SR-3"}, "__/IMF [SR-3]"},
		{map[string]string{"title": "", "source_type": "AV (Muxed)", "id": "SR-4"}, "AV (Muxed) [SR-4]"},
		{map[string]string{"title": "What? Now: \"Yes\"", "source_type": "IMF", "id": ""}, "What_ Now_ _Yes_/IMF"},
		{map[string]string{"title": "CON", "source_type": "IMF", "id": "SR-5"}, "_CON/IMF [SR-5]"},
		// Folders hotdrop itself would hide or reserve (issue 10).
		{map[string]string{"title": ".hack//Sign", "source_type": "IMF", "id": "SR-6"}, "_hack__Sign/IMF [SR-6]"},
		{map[string]string{"title": "_bin", "source_type": "IMF", "id": "SR-7"}, "__bin/IMF [SR-7]"},
		{map[string]string{"title": "_Delivered", "source_type": "IMF", "id": "SR-8"}, "__Delivered/IMF [SR-8]"},
		{map[string]string{"title": "Wednesday", "source_type": ".IMF", "id": "SR-9"}, "Wednesday/_IMF [SR-9]"},
	} {
		got, err := FolderName(tmpl, tc.fields)
		if err != nil || got != tc.want {
			t.Errorf("FolderName(%v) = %q, %v; want %q", tc.fields, got, err, tc.want)
		}
	}
}

func TestUnknownErrorIsTransient(t *testing.T) {
	if te := asTransferError(errors.New("boom")); !te.Transient || te.Source {
		t.Errorf("asTransferError(plain error) = %+v, want transient, the destination's", te)
	}
}

// A crash after the journaled intent and the rename, before the delivered record: on start the
// server is asked, and the file is delivered without any event or upload.
// A reload opens a request the studio reopened, retries failed files with the new uploader,
// and leaves delivered files alone.
func TestReload(t *testing.T) {
	st, bad := newMemStore(), newFakeUploader()
	bad.fail = func(int, Job) error { return &TransferError{Code: "auth_failed", Msg: "refused"} }
	h := newHarness(t, st, bad, req("SR-20", 1), req("SR-21", 1, "title", "B", "status", "closed"))
	h.drop("SR-20", "a.ttml", watcher.Ready, 3)
	h.waitState("SR-20", Failed)

	good := newFakeUploader()
	opt := h.eng.opt
	if err := h.eng.Reload(context.Background(), opt, good, []Request{req("SR-20", 1), req("SR-21", 1, "title", "B")}); err != nil {
		t.Fatal(err)
	}
	h.waitState("SR-20", Delivered)
	if good.count() != 1 {
		t.Errorf("uploads with the new uploader = %d, want 1", good.count())
	}
	if _, err := os.Stat(filepath.Join(h.root, "B", "Subtitle fr-FR [SR-21]")); err != nil {
		t.Errorf("reopened request got no drop folder: %v", err)
	}
	h.drop("SR-21", "b.ttml", watcher.Ready, 3)
	h.waitState("SR-21", Delivered)
}

func (u *fakeUploader) sizeOf(rel string) (int64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n, ok := u.remote[rel]
	return n, ok
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	if !eventually(cond) {
		t.Fatal("condition never met")
	}
}

// Review findings, each with the scenario that showed it.

// A file removed while it is being sent leaves no ghost behind: it would block its request
// (too_many_files for the file that replaces it).
func TestRemovedDuringUploadForgotten(t *testing.T) {
	up := newFakeUploader()
	release := make(chan struct{})
	up.fail = func(_ int, j Job) error {
		if filepath.Base(j.LocalPath) == "wrong.ttml" {
			<-release
			return &TransferError{Code: ReasonChangedDuringUpload, Msg: "gone"}
		}
		return nil
	}
	h := newHarness(t, newMemStore(), up, req("SR-60", 1))
	p := h.drop("SR-60", "wrong.ttml", watcher.Ready, 4)
	h.waitState("SR-60", Uploading)
	rel, _ := filepath.Rel(h.root, p)
	h.events <- watcher.Event{Kind: watcher.Removed, Path: p, Rel: filepath.ToSlash(rel)}
	close(release)
	h.drop("SR-60", "right.ttml", watcher.Ready, 5)
	v := h.waitState("SR-60", Delivered)
	if len(v.Files) != 1 || v.Files[0].Name != "right.ttml" {
		t.Errorf("files = %+v, want only right.ttml", v.Files)
	}
}

// A journaled intent does not make a file delivered while its partial is still on the
// server: in a redelivery an older final file of the same size is already there.
// `hotdrop deliver` releases one package: after it is delivered, the next files of a files=0
// request wait for the marker again.
func TestDeliverIsOneShot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, newMemStore(), newFakeUploader(), req("SR-62", 0, "status", StatusRedeliveryRequested))
		h.drop("SR-62", "a.mxf", watcher.Ready, 4)
		if err := h.eng.Deliver(context.Background(), "SR-62"); err != nil {
			t.Fatal(err)
		}
		h.waitState("SR-62", Delivered)
		h.drop("SR-62", "b.mxf", watcher.Ready, 4)
		synctest.Wait() // the engine has done all it would with the second file
		if n := h.up.count(); n != 1 {
			t.Errorf("uploads = %d, want 1: the second file waits for the marker or another deliver", n)
		}
	})
}

// Control characters, backslashes and ".." parts are refused under every destination.names
// policy (issue 10): with names = "any", a newline injected lines into NAME.sha256 and "..\"
// passed, which escapes the folder on a Windows server.
func TestUnsafeNamesHeldUnderEveryPolicy(t *testing.T) {
	for _, names := range []string{"any", "portable"} {
		for i, name := range []string{"a\nb.ttml", "..\\evil.ttml", "sub\\x.ttml", "tab\there.ttml"} {
			t.Run(fmt.Sprintf("%s/%q", names, name), func(t *testing.T) {
				up := newFakeUploader()
				id := fmt.Sprintf("SR-%d", 70+i)
				h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Names = names }, req(id, 1))
				h.drop(id, name, watcher.Ready, 4)
				v := h.waitState(id, Held)
				if len(v.Files) != 1 || v.Files[0].Reason != ReasonInvalidName || up.count() != 0 {
					t.Fatalf("files = %+v, uploads %d; want held %s and nothing sent", v.Files, up.count(), ReasonInvalidName)
				}
			})
		}
	}
}

// A title equal to a watch.bin other than _bin gets a drop folder of its own, not the bin.
func TestDropFolderNeverTheBin(t *testing.T) {
	h := newHarnessWith(t, t.TempDir(), newMemStore(), newFakeUploader(), func(o *Options) { o.Bin = "Inbox" },
		req("SR-90", 1, "title", "inbox"))
	v := h.eng.Requests()
	want := filepath.Join(h.root, "_inbox", "Subtitle fr-FR [SR-90]")
	if len(v) != 1 || v[0].Folder != want {
		t.Fatalf("drop folder = %q, want %q", v[0].Folder, want)
	}
	if fi, err := os.Stat(want); err != nil || !fi.IsDir() {
		t.Fatalf("drop folder not made: %v", err)
	}
}
