package delivery

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// load restores the journal: delivered files stay delivered (and are never sent again while
// their identity holds); anything else is re-derived from what the watcher reports now.
func (e *Engine) load(ctx context.Context) error {
	recs, err := e.st.Files(ctx)
	if err != nil {
		return err
	}
	binDir := filepath.Join(e.opt.Root, filepath.FromSlash(e.opt.Bin)) + string(filepath.Separator)
	for _, rec := range recs {
		if rec.State != Delivered && !rec.RenameIntent && rec.DeliveredAt.IsZero() {
			// Re-derived from what the watcher reports now; a file that vanished while
			// hotdrop was down must not linger as "settling".
			continue
		}
		if s := allStates[stateIndex(rec.State)]; s == rec.State {
			rec.State = s // the constant, not a string per row read
		}
		fs := &fileState{rec: rec, emitted: idxOf(rec.State)}
		fs.inBin = e.opt.Bin != "" && strings.HasPrefix(rec.Path, binDir)
		if r := e.reqs[rec.RequestID]; r != nil {
			fs.rec.RequestID = r.ID // one string for all its files, not one per row read
		}
		if r := e.reqs[rec.RequestID]; r != nil && !fs.inBin {
			fs.name = relName(r.Folder, rec.Path)
		} else if fs.inBin {
			fs.name = relName(strings.TrimSuffix(binDir, string(filepath.Separator)), rec.Path)
		} else {
			fs.name = filepath.Base(rec.Path)
		}
		if rec.State != Delivered {
			fs.rec.State = Settling
			fs.rec.Reason, fs.rec.Message = "", ""
			if _, err := e.lstat(rec.Path); err != nil && !rec.RenameIntent {
				// Delivered once, changed, then removed while hotdrop was down: the
				// delivered version stands.
				fs.rec.State = Delivered
			}
			// Otherwise: a changed version of a delivered file (the watcher reports it again
			// and it is held already_delivered unless a redelivery is asked), or a file
			// caught between its journaled rename intent and its delivered record, for which
			// reconcile asks the server which side of the rename the crash fell on.
			fs.emitted = idxOf(fs.rec.State)
		}
		e.putFile(fs)
	}
	return nil
}

// pendingRename is a file the journal shows between its rename intent and its delivery, with
// the way to open its source beneath watch.root.
type pendingRename struct {
	rec  FileRecord
	open func() (*os.File, error)
}

// reconcile runs once at start, from its own goroutine: for each file whose rename intent was
// journaled but not its delivery, a final remote file of the expected size means the rename
// happened before the crash, so the file is delivered and never sent again. Errors (server
// down) leave it to the upload worker, which checks again before sending.
func (e *Engine) reconcile(ctx context.Context, up Uploader, log *slog.Logger, pending []pendingRename) {
	for _, p := range pending {
		rec := p.rec
		renamed, err := renameHappened(ctx, up, rec.RemotePath, rec.Size)
		var res Result
		if err == nil && renamed {
			// A file delivered before is a redelivery: the checksum file beside it is the
			// earlier version's, hotdrop's own, and now wrong (as schedule's fs.replace).
			j := Job{LocalPath: rec.Path, Open: p.open, RemoteRel: rec.RemotePath, Size: rec.Size, ModTime: rec.ModTime,
				Replace: !rec.DeliveredAt.IsZero()}
			res, err = finishPublish(ctx, up, j, log)
			if err != nil && !asTransferError(err).Transient {
				e.send(ctx, msg{kind: msgReconciled, path: rec.Path, exists: true, err: err})
				continue
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot check the server for a file interrupted at rename; will check before sending it again", "file", rec.Path, "err", err)
			}
			continue
		}
		e.send(ctx, msg{kind: msgReconciled, path: rec.Path, exists: renamed, res: res})
	}
}

// finishPublish completes the publish of a file whose rename into place happened before
// hotdrop stopped: everything after the rename (the checksum file, the sha256 the manifest
// lists) was lost with the process. Without an uploader that can, or when the source changed
// since, the file is delivered as it is, without them; a final file the server's hash proves
// wrong is an error.
func finishPublish(ctx context.Context, up Uploader, j Job, log *slog.Logger) (Result, error) {
	res := Result{Remote: j.RemoteRel, Size: j.Size}
	f, ok := up.(Finisher)
	if !ok {
		return res, nil
	}
	r, err := f.FinishPublish(ctx, j)
	var te *TransferError
	if errors.As(err, &te) && (te.Code == ReasonChangedDuringUpload || te.Code == ReasonUnsafePath) {
		log.Warn("delivered before hotdrop stopped, but the source changed since: no checksum file is written for it",
			"file", j.LocalPath, "err", err)
		return res, nil
	}
	if err != nil {
		return Result{}, err
	}
	if r.ChecksumErr != nil {
		log.Warn("delivered before hotdrop stopped, but the checksum file could not be written", "file", j.LocalPath, "err", r.ChecksumErr)
	}
	return r, nil
}

// renameHappened tells, for a file whose rename intent was journaled, whether the rename into
// place happened: the partial is gone and the final file has the expected size. The partial
// check matters for a redelivery, where an older final file of the same size is already
// there: while the partial exists, the rename did not happen.
func renameHappened(ctx context.Context, up Uploader, rel string, size int64) (bool, error) {
	partial := path.Join(path.Dir(rel), "."+path.Base(rel)+".partial")
	if p, ok := up.(Partialer); ok {
		// destination.temp_name: a partial looked for under the default name is never there,
		// and a redelivery of the same size would pass for renamed.
		partial = p.PartialOf(rel)
	}
	if _, exists, err := up.Stat(ctx, partial); err != nil || exists {
		return false, err
	}
	n, exists, err := up.Stat(ctx, rel)
	return err == nil && exists && n == size, err
}
