package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/report"
	"github.com/hotdrop/hotdrop/store"
	"github.com/hotdrop/hotdrop/uploader"
)

// uploaderAdapter lets the engine use the concrete uploader: the engine declares what it
// needs and does not import the uploader package.
type uploaderAdapter struct {
	u    *uploader.Uploader
	next nextSteps // what a person does about a permanent failure
}

var (
	_ delivery.Finisher   = uploaderAdapter{}
	_ delivery.Reacher    = uploaderAdapter{}
	_ delivery.Discarder  = uploaderAdapter{}
	_ delivery.InFlighter = uploaderAdapter{}
)

func (a uploaderAdapter) Reachable(ctx context.Context) error { return a.u.Reachable(ctx) }

func (a uploaderAdapter) FilesInFlight(concurrency int) int { return a.u.FilesInFlight(concurrency) }
func (a uploaderAdapter) SmallFileMax() int64               { return uploader.SmallFileMax }

func (a uploaderAdapter) Discard(ctx context.Context, rel string) error {
	if err := a.u.Discard(ctx, rel); err != nil {
		return transferError(err)
	}
	return nil
}

func (a uploaderAdapter) Upload(ctx context.Context, j delivery.Job) (delivery.Result, error) {
	uj := uploader.Job{LocalPath: j.LocalPath, Open: j.Open, RemoteRel: j.RemoteRel, Size: j.Size,
		ModTime: j.ModTime, Replace: j.Replace, BeforeRename: j.BeforeRename, IntendRename: j.IntendRename, Progress: j.Progress,
		Connected: j.Connected, NoChecksumFile: j.NoChecksumFile}
	if j.Resume != nil {
		c := uploader.Checkpoint(*j.Resume)
		uj.Resume = &c
	}
	if j.Checkpoint != nil {
		uj.Checkpoint = func(c uploader.Checkpoint) { j.Checkpoint(delivery.Checkpoint(c)) }
	}
	res, err := a.u.Upload(ctx, uj)
	if err != nil {
		te := transferError(err)
		a.next.advise(te, j.RemoteRel)
		return delivery.Result{}, te
	}
	return deliveryResult(res), nil
}

// transferError hands the engine an uploader failure; its message is the uploader's sentence
// with the server's own words beside it, so the status file, events, dashboard and log all
// show what the server said.
func transferError(err error) *delivery.TransferError {
	var te *delivery.TransferError
	if errors.As(err, &te) {
		return te // the engine's own opener refused the source
	}
	ue := uploader.Classify(err)
	return &delivery.TransferError{Code: ue.Code, Msg: ue.Reason(), Transient: ue.Transient, Source: ue.Source, Err: err}
}

func deliveryResult(res uploader.Result) delivery.Result {
	r := delivery.Result{Remote: res.Remote, Size: res.Size, SHA256: res.SHA256, Resumed: res.Resumed,
		Verified: res.Verified, ChecksumFile: res.ChecksumFile}
	if res.ChecksumErr != nil {
		r.ChecksumErr = transferError(res.ChecksumErr) // classified: a transient one is tried again
	}
	return r
}

func (a uploaderAdapter) FinishPublish(ctx context.Context, j delivery.Job) (delivery.Result, error) {
	res, err := a.u.FinishPublish(ctx, uploader.Job{LocalPath: j.LocalPath, Open: j.Open, RemoteRel: j.RemoteRel, Size: j.Size,
		ModTime: j.ModTime, Replace: j.Replace, NoChecksumFile: j.NoChecksumFile})
	if err != nil {
		return delivery.Result{}, transferError(err)
	}
	return deliveryResult(res), nil
}

// PartialOf says where the uploader writes rel before its rename (delivery.Partialer).
func (a uploaderAdapter) PartialOf(rel string) string { return a.u.PartialOf(rel) }

func (a uploaderAdapter) Stat(ctx context.Context, rel string) (int64, bool, error) {
	n, ok, err := a.u.Stat(ctx, rel)
	if err != nil {
		return 0, false, transferError(err)
	}
	return n, ok, nil
}

// storeAdapter lets the engine use the SQLite journal; the record types have the same fields,
// and are copied field by field (the engine's state is typed).
type storeAdapter struct{ s *store.Store }

func (a storeAdapter) SaveRequests(ctx context.Context, rs []delivery.RequestRecord) error {
	return a.s.SaveRequests(ctx, storeRequests(rs))
}

func storeRequests(rs []delivery.RequestRecord) []store.Request {
	recs := make([]store.Request, len(rs))
	for i, r := range rs {
		recs[i] = store.Request{ID: r.ID, Fields: r.Fields, Status: r.Status, Files: r.Files, Folder: r.Folder,
			State: string(r.State), UpdatedAt: r.UpdatedAt, Delivered: r.Delivered}
	}
	return recs
}

// RequestRecords lets the engine save only the requests that changed (delivery.RequestLister).
func (a storeAdapter) RequestRecords(ctx context.Context) ([]delivery.RequestRecord, error) {
	rs, err := a.s.Requests(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]delivery.RequestRecord, len(rs))
	for i, r := range rs {
		out[i] = delivery.RequestRecord{ID: r.ID, Fields: r.Fields, Status: r.Status, Files: r.Files, Folder: r.Folder,
			State: delivery.State(r.State), UpdatedAt: r.UpdatedAt, Delivered: r.Delivered}
	}
	return out, nil
}

func (a storeAdapter) CheckpointPaths(ctx context.Context) (map[string]bool, error) {
	return a.s.CheckpointPaths(ctx)
}

func (a storeAdapter) SaveFiles(ctx context.Context, fs []delivery.FileRecord) ([]int64, error) {
	return a.s.SaveFiles(ctx, storeFiles(fs))
}

func storeFiles(fs []delivery.FileRecord) []store.File {
	recs := make([]store.File, len(fs))
	for i, f := range fs {
		recs[i] = storeFile(f)
	}
	return recs
}

func (a storeAdapter) DeleteFile(ctx context.Context, path string) error {
	return a.s.DeleteFile(ctx, path)
}

func (a storeAdapter) Files(ctx context.Context) ([]delivery.FileRecord, error) {
	fs, err := a.s.Files(ctx)
	out := make([]delivery.FileRecord, 0, len(fs))
	for _, f := range fs {
		out = append(out, deliveryFile(f))
	}
	return out, err
}

// storeFile and deliveryFile copy a record between the journal's plain strings and the
// engine's typed state; the other fields match one to one.
func storeFile(f delivery.FileRecord) store.File {
	return store.File{ID: f.ID, Path: f.Path, RequestID: f.RequestID, Size: f.Size, ModTime: f.ModTime, Inode: f.Inode,
		State: string(f.State), Reason: f.Reason, Message: f.Message, SHA256: f.SHA256, RemotePath: f.RemotePath,
		RenameIntent: f.RenameIntent, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, DeliveredAt: f.DeliveredAt}
}

func deliveryFile(f store.File) delivery.FileRecord {
	return delivery.FileRecord{ID: f.ID, Path: f.Path, RequestID: f.RequestID, Size: f.Size, ModTime: f.ModTime, Inode: f.Inode,
		State: delivery.State(f.State), Reason: f.Reason, Message: f.Message, SHA256: f.SHA256, RemotePath: f.RemotePath,
		RenameIntent: f.RenameIntent, CreatedAt: f.CreatedAt, UpdatedAt: f.UpdatedAt, DeliveredAt: f.DeliveredAt}
}

func (a storeAdapter) Checkpoint(ctx context.Context, path string) (delivery.Checkpoint, bool, error) {
	c, err := a.s.Checkpoint(ctx, path)
	if errors.Is(err, store.ErrNotFound) {
		return delivery.Checkpoint{}, false, nil
	}
	return delivery.Checkpoint(c), err == nil, err
}

func (a storeAdapter) SaveCheckpoint(ctx context.Context, path string, c delivery.Checkpoint) error {
	return a.s.SaveCheckpoint(ctx, path, store.Checkpoint(c))
}

func (a storeAdapter) DeleteCheckpoint(ctx context.Context, path string) error {
	return a.s.DeleteCheckpoint(ctx, path)
}

func (a storeAdapter) ManifestAt(ctx context.Context, id string) (time.Time, error) {
	return a.s.ManifestAt(ctx, id)
}

func (a storeAdapter) MarkManifest(ctx context.Context, id string, at time.Time) error {
	return a.s.MarkManifest(ctx, id, at)
}

// Check passes the journal's health check through (delivery.JournalChecker).
func (a storeAdapter) Check(ctx context.Context) error {
	err := a.s.Check(ctx)
	if errors.Is(err, store.ErrNotChecked) {
		return fmt.Errorf("%w: %v", delivery.ErrJournalNotChecked, err)
	}
	return err
}

var _ delivery.JournalChecker = storeAdapter{}

func (a storeAdapter) MarkRenameIntents(ctx context.Context, intents []delivery.RenameIntent) []error {
	return a.s.MarkRenameIntents(ctx, storeIntents(intents))
}

func storeIntents(intents []delivery.RenameIntent) []store.RenameIntent {
	in := make([]store.RenameIntent, len(intents))
	for i, x := range intents {
		in[i] = store.RenameIntent(x)
	}
	return in
}

func (a storeAdapter) WriteTx(ctx context.Context, durable bool, fn func(delivery.JournalTx) error) error {
	return a.s.Write(ctx, durable, func(t *store.Tx) error { return fn(txAdapter{t}) })
}

// txAdapter is one transaction of the journal for the engine's writer; the event hub
// journals the batch's events in it too (report.EventTx).
type txAdapter struct{ t *store.Tx }

var _ report.EventTx = txAdapter{} // else the hub journals a batch's events after it, apart

func (a txAdapter) SaveRequests(_ context.Context, rs []delivery.RequestRecord) error {
	return a.t.SaveRequests(storeRequests(rs))
}

func (a txAdapter) DeleteFile(_ context.Context, path string) error { return a.t.DeleteFile(path) }

func (a txAdapter) SaveFiles(_ context.Context, fs []delivery.FileRecord) ([]int64, error) {
	return a.t.SaveFiles(storeFiles(fs))
}

func (a txAdapter) MarkRenameIntents(_ context.Context, intents []delivery.RenameIntent) []error {
	return a.t.MarkRenameIntents(storeIntents(intents))
}

func (a txAdapter) AppendEvents(evs []store.Event, targets [][]string) ([]int64, error) {
	return a.t.AppendEvents(evs, targets)
}
