package delivery

import (
	"context"
	"sync/atomic"
	"time"
)

// A file whose source is removed while it is being sent is given up at once (issue 14): the
// upload is cancelled, the partial it left on the server for a resume is removed (nothing will
// ever resume it: the file is gone), and the file is forgotten once the upload goroutine has
// stopped (result). Before, the upload read on from the deleted file's open descriptor and
// published it to the end.

// discardTimeout bounds the removal of an abandoned upload's partial.
const discardTimeout = time.Minute

// uploadContext makes the context of fs's upload, a child of Run's, and keeps in fs how to
// abandon it. release frees the context once the upload is over; abandoned reports, from the
// upload goroutine, whether abandonUpload was called.
func (e *Engine) uploadContext(fs *fileState) (ctx context.Context, release func(), abandoned func() bool) {
	ctx, cancel := context.WithCancel(e.runCtx)
	var gaveUp atomic.Bool
	fs.up = &uploadRun{abandon: func() {
		gaveUp.Store(true)
		cancel()
	}}
	return ctx, cancel, gaveUp.Load
}

// abandonUpload stops fs's upload in flight because its source was removed. An upload whose
// rename intent is journaled is left to finish: every byte was sent and verified, and
// stopping between the intent and the rename would only leave the journal unsure which side
// of it the server is on.
func (e *Engine) abandonUpload(fs *fileState) {
	if fs.up == nil || fs.up.abandon == nil || fs.rec.RenameIntent {
		return
	}
	fs.up.abandon()
}

// discard removes what an abandoned or failed upload left on the server, from its upload
// goroutine; failed is the warning logged when it cannot.
func (e *Engine) discard(ctx context.Context, up Uploader, j Job, failed string) {
	d, ok := up.(Discarder)
	if !ok || ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, discardTimeout)
	defer cancel()
	if err := d.Discard(ctx, j.RemoteRel); err != nil {
		e.log.Warn(failed, "file", j.LocalPath, "remote", j.RemoteRel, "err", err)
	}
}

// afterAbandon settles a file whose upload stopped because its source was removed (or whose
// upload failed after it was). A source still gone is forgotten by result; one made again
// meanwhile is a new file, settling, or judged at once when the watcher already reported it
// ready (no other event would come for it).
func (e *Engine) afterAbandon(ctx context.Context, fs *fileState) {
	fs.rec.RenameIntent = false
	if fs.gone {
		e.log.Info("source removed during upload: the upload stopped and the file is forgotten",
			"file", fs.rec.Path, "request", fs.req(), "sent", fs.done)
		return
	}
	e.log.Info("source removed during upload and made again: the upload of the removed file stopped; the new one is settling",
		"file", fs.rec.Path, "request", fs.req(), "sent", fs.done)
	fs.rec.State, fs.rec.Reason, fs.rec.Message = Settling, "", ""
	if fs.latestReady {
		e.setIdentity(fs, fs.latest)
		fs.rec.State = Ready
		var r *reqState
		if !fs.inBin {
			r = e.reqs[fs.req()]
		}
		e.judge(ctx, fs, r)
	}
}
