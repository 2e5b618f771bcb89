package delivery

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// noteTrouble records a transient failure; failures lasting AlertAfter make one
// destination.unreachable event.
func (e *Engine) noteTrouble(err error) {
	now := time.Now()
	if e.downSince.IsZero() {
		e.downSince = now
	}
	if !e.unreachable.Load() && e.opt.AlertAfter > 0 && now.Sub(e.downSince) >= e.opt.AlertAfter {
		e.unreachable.Store(true)
		msg := "the destination has been failing since " + e.downSince.UTC().Format(time.RFC3339)
		if err != nil {
			msg += ": " + err.Error()
		}
		e.log.Error("destination unreachable", "since", e.downSince, "err", err)
		e.emit(Event{Type: EventDestinationDown, Reason: &EventReason{Code: "destination_unreachable", Message: msg}})
	}
}

func (e *Engine) noteBack() {
	e.downSince = time.Time{}
	if e.unreachable.Swap(false) {
		e.log.Info("destination reachable again")
		e.emit(Event{Type: EventDestinationBack})
	}
}

// Unreachable reports whether the destination has been failing for AlertAfter (for /healthz).
func (e *Engine) Unreachable() bool { return e.unreachable.Load() }

// errCancelled marks an upload stopped by shutdown: not a failure, the file is sent again on
// the next start.
var errCancelled = errors.New("upload stopped by shutdown")

// transfer runs one upload with retries of transient errors, from an upload goroutine. A file
// whose rename intent was journaled is first looked up on the server: if the rename happened
// before a crash, the file is delivered and is not sent again.
// retrier is what an upload goroutine needs from the Engine, copied when the upload starts so
// a reload never changes it under a running upload.
type retrier struct {
	pre          func(ctx context.Context) error // checks before each upload attempt (writers' checksums)
	last         *Checkpoint                     // the newest checkpoint of this upload
	checkpointed bool
	up           Uploader
	base, max    time.Duration
	clock        Clock
	log          *slog.Logger
}

func (e *Engine) transfer(ctx context.Context, rt *retrier, j Job, intent bool) (Result, error) {
	if j.Checkpoint == nil && e.st != nil {
		// Journal each checkpoint so a retry, a restart or a crash resumes there; the
		// journal write outlives a cancelled upload (the last checkpoint matters most then).
		p := j.LocalPath
		j.Checkpoint = func(c Checkpoint) {
			rt.checkpointed = true
			rt.last = &c
			if err := e.st.SaveCheckpoint(context.WithoutCancel(ctx), p, c); err != nil {
				rt.log.Warn("journal: cannot save the upload checkpoint", "file", p, "err", err)
			}
		}
	}
	for attempt := 1; ; attempt++ {
		if attempt > 1 && rt.last != nil {
			j.Resume = rt.last
		}
		if ctx.Err() != nil {
			return Result{}, errCancelled
		}
		var res Result
		var err error
		if intent {
			var renamed bool
			renamed, err = renameHappened(ctx, rt.up, j.RemoteRel, j.Size)
			if err == nil && renamed {
				res, err = finishPublish(ctx, rt.up, j, rt.log)
				if err == nil {
					return res, nil
				}
			} else if err == nil {
				intent = false
				continue
			}
		} else {
			if rt.pre != nil {
				err = rt.pre(ctx)
			}
			if err == nil {
				res, err = rt.up.Upload(ctx, j)
				if err == nil {
					return res, nil
				}
			}
		}
		if ctx.Err() != nil {
			return Result{}, errCancelled
		}
		te := classify(err)
		if !te.Transient {
			return Result{}, te
		}
		wait := backoff(attempt, rt.base, rt.max)
		next := rt.clock.Now().Add(wait)
		rt.log.Warn("upload failed, will retry", "file", j.LocalPath, "attempt", attempt, "next_try", next.Format(time.RFC3339), "err", te.Msg)
		e.send(ctx, msg{kind: msgRetrying, path: j.LocalPath, attempt: attempt, next: next, err: te})
		select {
		case <-ctx.Done():
			return Result{}, errCancelled
		case <-rt.clock.After(wait):
		}
	}
}

// backoff is exponential from base, capped at max, with up to 50% jitter so that many
// daemons behind one ingest server do not retry in step.
func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
