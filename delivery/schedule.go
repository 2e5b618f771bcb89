package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// start moves a ready file to uploading and queues it; the caller dispatches once it has
// queued every file it starts, so the queue's order, not the caller's, decides which goes
// first: a file with a resumable partial on the server before the others.
func (e *Engine) start(ctx context.Context, r *reqState, fs *fileState) {
	if e.opt.RemotePath == nil {
		e.hold(fs, ReasonInvalidName, "no destination.path to make the remote path from")
		return
	}
	rel, err := e.opt.RemotePath(r.Request, fs.name)
	if err != nil {
		e.hold(fs, ReasonInvalidName, err.Error())
		return
	}
	// A redelivery may replace only what hotdrop put at this very path before; a path that
	// moved (destination.path or a field changed) is not ours to overwrite.
	prev := fs.rec.RemotePath
	fs.replace = !fs.rec.DeliveredAt.IsZero() && (prev == rel || strings.HasSuffix(prev, "/"+rel)) || fs.replaceAsked
	fs.replaceAsked = false
	fs.rec.State, fs.rec.Reason, fs.rec.Message = Uploading, "", ""
	fs.rec.RemotePath = rel
	fs.retrying, fs.done = false, 0
	if fs.more != nil {
		fs.more.attempt, fs.more.resume = 0, nil
	}
	if e.noCheckpoint(fs) {
		e.pending = append(e.pending, fs)
		return
	}
	if c, ok, err := e.st.Checkpoint(ctx, fs.rec.Path); err != nil {
		e.log.Warn("journal: cannot read the upload checkpoint; starting from the beginning", "file", fs.rec.Path, "err", err)
	} else if ok {
		fs.setMore().resume = &c
		e.resumable = append(e.resumable, fs)
		return
	}
	e.pending = append(e.pending, fs)
}

// noCheckpoint says the journal surely holds no resume point for fs: none at the start, and no
// upload of it began since.
func (e *Engine) noCheckpoint(fs *fileState) bool {
	return e.checkpointed != nil && !e.checkpointed[fs.rec.Path] && !fs.began
}

// next takes the file to upload next off the queues: resumable partials first.
func (e *Engine) next() *fileState {
	if len(e.resumable) > 0 {
		fs := e.resumable[0]
		e.resumable = e.resumable[1:]
		return fs
	}
	fs := e.pending[0]
	e.pending = e.pending[1:]
	return fs
}

func (e *Engine) dispatch(_ context.Context) {
	// Uploads live as long as Run, not as long as whoever caused them (an HTTP request's
	// context ends when its handler returns).
	ctx := e.runCtx
	limit, bigFrom := e.inFlight()
	e.big.setLimit(e.opt.Concurrency)
	for e.active < limit && len(e.pending)+len(e.resumable) > 0 {
		fs := e.next()
		if fs.rec.State != Uploading || !e.claimRemote(fs) {
			continue
		}
		e.active++
		fs.began = true // it may leave a resume point from now on
		job := e.job(fs)
		job.Resume = fs.x().resume
		if fs.more != nil {
			fs.more.resume = nil
		}
		rt := e.newRetrier()
		intent := fs.rec.RenameIntent
		sums := append([]Checksum(nil), fs.x().verify...)
		gone := fs.gone
		big := bigFrom > 0 && job.Size >= bigFrom
		var ticket uint64
		if big {
			ticket = e.big.ticket()
		}
		// Each upload has its own context, so that the removal of its source stops it
		// (abandonUpload) without touching the others.
		uctx, release, abandoned := e.uploadContext(fs)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer release()
			if big {
				// Beyond Concurrency only small files go at once (InFlighter).
				if e.big.take(uctx, ticket) {
					defer e.big.give()
				}
			}
			rt.pre = func(ctx context.Context) error { return verifyChecksums(ctx, job.LocalPath, job.Open, sums) }
			var res Result
			var err error
			if gone && !intent {
				// Removed while it waited for a slot: whatever is at its path now never settled.
				err = &TransferError{Code: ReasonChangedDuringUpload, Source: true, Msg: fmt.Sprintf("%s is gone", job.LocalPath)}
			} else {
				res, err = e.transfer(uctx, &rt, job, intent)
			}
			gaveUp := err != nil && abandoned()
			exists := job.Resume != nil || rt.checkpointed
			switch {
			case gaveUp:
				e.discard(ctx, rt.up, job, "the source was removed during upload, but its partial upload could not be removed from the server")
			case exists && err != nil && !errors.Is(err, errCancelled) && ctx.Err() == nil && !loginRefused[asTransferError(err).Code]:
				// Failed for good (held or failed): its resume point is dropped when the loop
				// hears of it, so nothing would ever resume the partial an earlier attempt kept
				// (the uploader removes its own attempt's, not one it never reached).
				e.discard(ctx, rt.up, job, "the upload failed, and the partial an earlier attempt kept could not be removed from the server")
			}
			// Sent on Run's context: the upload's own may be cancelled, and the loop must hear
			// that the upload is over.
			e.send(ctx, msg{kind: msgDone, path: job.LocalPath, remote: job.RemoteRel, res: res, err: err, exists: exists, abandoned: gaveUp})
		}()
	}
}

// loginRefused are the failures of the login itself: a server that cannot be trusted or will
// not let hotdrop in is not dialled again just to remove a partial (each try would be one more
// refused login in its log, and an untrusted one is not told anything).
var loginRefused = map[string]bool{"host_key_unknown": true, "host_key_changed": true, "auth_failed": true}

// earlyIntentMax is the size up to which a file's rename intent is journaled while the file
// is sent (Job.IntendRename) rather than after: the whole upload of such a file is a few
// round trips, so the intent's window stays as short as the transfer, and the full sync no
// longer waits in line behind it (a fifth of the daemon's time on 4 KiB frames). A large
// file's intent still waits for its last byte: a window of hours is not worth a sync.
const earlyIntentMax = 1 << 20

// intend asks the loop, which owns the record (a concurrent save of the same row must not
// wipe the intent), to journal the rename intent of the file at p, and returns the wait for
// it to be durable. An upload that has to wait shortens the journal writer's pause to
// journalGather at most, and ends it once every intent pending has its upload waiting: a
// file that travels faster than the pace (file://, a small file on a LAN) is not held.
func (e *Engine) intend(ctx context.Context, p string) func(context.Context) error {
	reply := make(chan error, 1)
	e.jw.asked() // before the loop can answer it
	select {
	case e.msgs <- msg{kind: msgIntent, path: p, reply: reply}:
	case <-ctx.Done():
		e.jw.pending.Add(-1)
		return func(context.Context) error { return ctx.Err() }
	}
	return func(ctx context.Context) error { return e.jw.waitFor(ctx, reply) }
}

func (e *Engine) job(fs *fileState) Job {
	p := fs.rec.Path
	rel := fs.rec.RemotePath
	var early func(context.Context) func(context.Context) error
	if fs.rec.Size <= earlyIntentMax {
		early = func(ctx context.Context) func(context.Context) error { return e.intend(ctx, p) }
	}
	return Job{
		IntendRename: early,
		LocalPath:    p, RemoteRel: rel, Size: fs.rec.Size, ModTime: fs.rec.ModTime,
		Open: e.sourceOpener(fs),
		// The remote file may be replaced only when this very file was delivered there
		// before (a redelivery); anything else there is not ours to overwrite.
		Replace:      fs.replace,
		BeforeRename: func(ctx context.Context) error { return e.intend(ctx, p)(ctx) },
		Progress: func(done int64) {
			select {
			case e.msgs <- msg{kind: msgProgress, path: p, done: done}:
			default: // progress is advisory; never block an upload on it
			}
		},
	}
}
