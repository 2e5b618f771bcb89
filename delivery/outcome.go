// Outcomes: what the upload goroutines report back, and what the Engine makes of it.

package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// result handles one message from outside the loop: a control call, a reachability note, or
// news of one file's upload.
func (e *Engine) result(ctx context.Context, m msg) {
	switch m.kind {
	case msgCall:
		m.call()
		return
	case msgBack:
		e.noteBack()
		if fs := e.files[m.path]; fs != nil && fs.retrying { // logged in again: no longer retrying
			fs.retrying = false
			if r := e.reqs[fs.req()]; r != nil {
				e.report(r)
			}
		}
		return
	case msgTrouble:
		e.noteTrouble(m.err, m.at)
		return
	}
	fs := e.files[m.path]
	if fs == nil {
		if m.reply != nil {
			err := fmt.Errorf("file %s: no longer known", m.path)
			if m.kind == msgIntent {
				e.jw.answer(m.reply, err)
			} else {
				m.reply <- err
			}
		}
		if m.kind == msgDone {
			e.active--
			e.releaseRemote(m.path, m.remote)
			e.dispatch(ctx)
		}
		return
	}
	switch m.kind {
	case msgProgress:
		e.progress(fs, m.done)
	case msgReconciled:
		e.reconciled(ctx, fs, m)
	case msgIntent:
		fs.rec.RenameIntent = true
		e.intents = append(e.intents, pendingIntent{fs: fs, reply: m.reply}) // written at the end of the batch
	case msgRetrying:
		fs.retrying = true
		x := fs.setMore()
		x.attempt, x.nextTry, x.retryWhy = m.attempt, m.next, asTransferError(m.err).Msg
		e.noteTrouble(m.err, m.at)
		if r := e.reqs[fs.req()]; r != nil {
			e.report(r)
		}
	default:
		e.uploadDone(ctx, fs, m)
	}
}

// progress notes how far an upload is, and announces it at most once a second (and at the
// end), with its rate and the time left.
func (e *Engine) progress(fs *fileState, done int64) {
	fs.done = done
	if fs.up == nil {
		fs.up = &uploadRun{} // not from dispatch: a file's upload always is
	}
	u := fs.up
	now := time.Now() // a rate in real time, as the bytes moved
	if u.progressAt0.IsZero() {
		u.progressAt0 = now
	}
	if now.Sub(u.progressAt) < time.Second && done != fs.rec.Size {
		return
	}
	u.progressAt = now
	p := &Progress{Bytes: done, Total: fs.rec.Size}
	if el := now.Sub(u.progressAt0).Seconds(); el > 0 {
		p.Rate = float64(done) / el
		if p.Rate > 0 {
			p.ETA = float64(fs.rec.Size-done) / p.Rate
		}
	}
	ev := e.fileEvent(EventFileProgress, fs)
	ev.Progress = p
	e.emit(ev)
}

// reconciled is what the server said about a rename a crash left unknown (recover.go): the
// file is delivered if it is there, failed if asking failed, and forgotten if neither the
// remote file nor its source is left.
func (e *Engine) reconciled(ctx context.Context, fs *fileState, m msg) {
	if fs.rec.State == Uploading || fs.rec.State == Delivered || !fs.rec.RenameIntent {
		return // an upload worker got there first and checks the server itself
	}
	fs.rec.RenameIntent = false
	switch {
	case m.exists && m.err != nil:
		te := asTransferError(m.err)
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Failed, te.Code, te.Msg
		e.log.Error("upload failed", "file", fs.rec.Path, "reason", te.Code, "message", te.Msg)
	case m.exists:
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Delivered, "", ""
		fs.rec.DeliveredAt = e.opt.Clock.Now()
		if m.res.SHA256 != "" {
			fs.rec.SHA256 = m.res.SHA256
		}
		fs.verified = m.res.Verified
		e.log.Info("delivered (the rename had happened before hotdrop stopped)", "file", fs.rec.Path, "remote", fs.rec.RemotePath,
			"sha256", fs.rec.SHA256, "verified", fs.verified, "checksum_file", m.res.ChecksumFile)
	default:
		if _, err := e.lstat(fs.rec.Path); err != nil && fs.rec.DeliveredAt.IsZero() {
			e.forgetFile(ctx, fs) // not delivered, and the source is gone: nothing is left to send or to show
			return
		}
	}
	e.save(ctx, fs)
	e.refreshOwner(ctx, fs)
}

// forgetFile drops a file that is neither delivered nor present any more, from the Engine and
// the journal.
func (e *Engine) forgetFile(ctx context.Context, fs *fileState) {
	e.dropFile(fs)
	e.deleteRecord(fs.rec.Path)
	e.refreshOwner(ctx, fs)
}

// uploadDone is the end of one upload: delivered, stopped, changed, held or failed.
func (e *Engine) uploadDone(ctx context.Context, fs *fileState, m msg) {
	e.active--
	e.releaseRemote(m.path, m.remote)
	defer e.dispatch(ctx)
	fs.up = nil // its abandon and progress pacing end with it
	// Stopped by a shutdown: resumed on the next start. Stopped because its source is gone:
	// forgotten below, resume point and all.
	cancelled := errors.Is(m.err, errCancelled) && !m.abandoned && !fs.gone
	if m.exists && !cancelled {
		// Delivered, failed or changed: the partial is gone and so is its resume point.
		if err := e.st.DeleteCheckpoint(ctx, fs.rec.Path); err != nil {
			e.log.Warn("journal", "err", err)
		}
	}
	fs.retrying = false
	if m.err == nil {
		e.noteBack()
	}
	if cancelled {
		return // the journal keeps it uploading; the next start re-derives it
	}
	e.judgeOutcome(ctx, fs, m)
	if fs.gone && fs.rec.State != Delivered {
		e.forgetFile(ctx, fs) // removed while it was being sent: nothing is left to send or to show
		return
	}
	if fs.latestReady && !sameIdentity(fs.rec, fs.latest) && fs.rec.State != Settling && fs.rec.State != Ready {
		// A newer version settled while the upload ran (its Ready came and was set aside):
		// judge it now, or it would wait for a watcher event that never comes.
		e.setIdentity(fs, fs.latest)
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Ready, "", ""
		fs.changes = 0
		var r *reqState
		if !fs.inBin {
			r = e.reqs[fs.req()]
		}
		e.judge(ctx, fs, r)
	}
	e.save(ctx, fs)
	e.refreshOwner(ctx, fs)
}

// judgeOutcome sets a file's state from how its upload (not cancelled) ended.
func (e *Engine) judgeOutcome(ctx context.Context, fs *fileState, m msg) {
	var te *TransferError
	switch {
	case m.err == nil:
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Delivered, "", ""
		fs.rec.SHA256 = m.res.SHA256
		fs.verified = m.res.Verified
		if m.res.Remote != "" {
			fs.rec.RemotePath = m.res.Remote
		}
		fs.rec.RenameIntent = false
		fs.rec.DeliveredAt = e.opt.Clock.Now()
		fs.changes = 0
		level := slog.LevelInfo
		if _, ok := fs.frameOf(); ok && fs.req() != "" {
			// A frame of a request: the log gets its sequence's milestones at INFO
			// (sequenceMilestones), not 100,000 lines a shot; each frame stays in the
			// journal's events, and here at DEBUG.
			level = slog.LevelDebug
		}
		e.log.Log(ctx, level, "delivered", "file", fs.rec.Path, "request", fs.req(), "remote", fs.rec.RemotePath, "sha256", fs.rec.SHA256,
			"resumed_from", m.res.Resumed, "verified", m.res.Verified)
		e.afters = append(e.afters, fs) // once its delivered record is journaled (flushJournal)
	case m.abandoned || fs.gone && m.err != nil:
		e.afterAbandon(ctx, fs) // its source was removed: forgotten, or judged anew if it is back
	case errors.As(m.err, &te) && te.Code == ReasonChangedDuringUpload:
		e.changedDuringUpload(fs)
	case errors.As(m.err, &te) && holdCodes[te.Code]:
		fs.rec.RenameIntent = false // no rename followed: the intent must not vouch for a delivery
		e.hold(fs, te.Code, te.Msg)
		e.log.Warn("file held", "file", fs.rec.Path, "reason", te.Code, "message", te.Msg)
	default:
		fs.rec.RenameIntent = false
		te = asTransferError(m.err)
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Failed, te.Code, te.Msg
		e.log.Error("upload failed", "file", fs.rec.Path, "reason", te.Code, "message", te.Msg)
	}
}

// changedDuringUpload settles a file again after its upload saw it change, and holds it
// keeps_changing the third time in a row.
func (e *Engine) changedDuringUpload(fs *fileState) {
	fs.changes = min(fs.changes+1, 255)
	fs.rec.RenameIntent = false
	if fs.changes >= 3 {
		e.hold(fs, ReasonKeepsChanging, fmt.Sprintf("%s changed during upload %d times in a row; hotdrop will try again when it stops changing", fs.name, fs.changes))
	} else {
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Settling, ReasonChangedDuringUpload,
			"the file changed while it was being sent; the partial upload was discarded and it is settling again"
		if fs.latestReady && !sameIdentity(fs.rec, fs.latest) {
			e.setIdentity(fs, fs.latest)
			fs.rec.State = Ready
		}
	}
	e.log.Warn("file changed during upload; partial discarded", "file", fs.rec.Path)
}
