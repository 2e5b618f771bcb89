package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hotdrop/hotdrop/internal/backoff"
)

// noteTrouble records a transient failure; failures lasting AlertAfter make one
// destination.unreachable event. A failure of the source's (an NFS or SMB mount that failed a
// read for a moment) says nothing about the destination and is not counted.
func (e *Engine) noteTrouble(err error, at time.Time) {
	if err != nil && asTransferError(err).Source {
		return
	}
	now := at // when the failure was seen, not when the loop got to it
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

// retrier is what an upload goroutine needs from the Engine, copied when the upload starts so
// a reload never changes it under a running upload.
type retrier struct {
	pre          func(ctx context.Context) error // checks before each upload attempt (writers' checksums)
	last         *Checkpoint                     // the newest checkpoint of this upload
	checkpointed bool
	up           Uploader
	backoff      backoff.Policy
	clock        Clock
	log          *slog.Logger
	// probeCut: the last wait was cut short by the reachability probe. If the attempt after
	// it fails before logging in too, the next wait runs its full length: a server that
	// greets but refuses logins is not hammered at the probe's pace.
	probeCut bool
}

// Reachability probes during a retry wait: the first after probeBase, doubling to probeMax.
// They bound how long a server's return goes unnoticed, whatever the backoff has grown to.
const (
	probeBase = 250 * time.Millisecond
	probeMax  = 2 * time.Second
)

// transfer runs one upload with retries of transient errors, from an upload goroutine. A file
// whose rename intent was journaled is first looked up on the server: if the rename happened
// before a crash, the file is delivered and is not sent again.
//
// The backoff grows with the failures since the last attempt that logged in or made
// progress: a link cut every few minutes mid-file reconnects at once each time, while a
// server that stays away is asked ever less often. While it is away (the attempt failed
// before logging in), a cheap reachability probe (Reacher) runs during the wait and ends it
// as soon as the server answers again.
func (e *Engine) transfer(ctx context.Context, rt *retrier, j Job, intent bool) (Result, error) {
	var loggedIn atomic.Bool // this attempt logged in or made progress
	e.journalCheckpoints(ctx, rt, &j, &loggedIn)
	failures := 0 // since the last attempt that logged in
	own := 0      // failures on hotdrop's own side in a row
	connected := j.Connected
	j.Connected = func() {
		if !loggedIn.Swap(true) && (failures > 0 || e.unreachable.Load()) {
			// The destination is back: say so now, not when this file is done.
			e.send(ctx, msg{kind: msgBack, path: j.LocalPath})
		}
		if connected != nil {
			connected()
		}
	}
	var published *Result // an attempt renamed the file into place; its checksum file is owed
	intended := intentJournaled(&j)
	for attempt := 1; ; attempt++ {
		if attempt > 1 && rt.last != nil {
			j.Resume = rt.last
		}
		if intended.Swap(false) {
			// The last attempt journaled the intent and went on to rename: the link may have
			// dropped after the server renamed the file and before its answer came. Ask the
			// server which side of the rename it is on before sending anything; else the file
			// hotdrop put there would be held remote_exists, as someone else's.
			intent = true
		}
		if ctx.Err() != nil {
			return Result{}, errCancelled
		}
		loggedIn.Store(false)
		res, err := tryOnce(ctx, rt, j, intent)
		if published != nil {
			switch {
			case err == nil:
				// How the file itself was proved is the first attempt's.
				res.Verified, res.Resumed = published.Verified, published.Resumed
			case ctx.Err() == nil && (errors.Is(err, errNotRenamed) || !asTransferError(err).Transient):
				// This process saw the file renamed into place; what is at its name now is not
				// its to judge any more (the studio's ingest may have taken or replaced it). The
				// file stays delivered, never sent again; only its checksum file is missing.
				r := *published
				if !errors.Is(err, errNotRenamed) {
					r.ChecksumErr = err
				}
				return r, nil
			}
		}
		if err == nil {
			if ce := res.ChecksumErr; ce == nil || !asTransferError(ce).Transient {
				return res, nil // a checksum file refused for good is reported with the file
			}
			// The file is in place and its checksum file is not: the link went while it was
			// written, and its temporary copy may still be there. Tried again as after a crash
			// past the rename: the next attempt finds the file and finishes its publishing.
			if published == nil {
				p := res
				published = &p
			}
			intent, err = true, res.ChecksumErr
		}
		switch {
		case errors.Is(err, errNotRenamed):
			intent = false // the rename never happened: the file is sent
			continue
		case ctx.Err() != nil:
			return Result{}, errCancelled
		}
		te := asTransferError(err)
		if !te.Transient {
			return Result{}, te
		}
		away := !loggedIn.Load()
		var wait time.Duration
		if te.Source {
			// hotdrop's own side (its journal's disk full, the source's mount failing reads):
			// the link says nothing of it, so it backs off on its own count, which logging in
			// does not reset (it was tried every second); the link's count is not charged
			// with it, nor it with the link's.
			own++
			wait = rt.backoff.Delay(own)
			if !away {
				failures = 0
			}
		} else {
			own = 0
			failures++
			if !away {
				failures = 1 // logged in or made progress: a link cut mid-file reconnects at once
			}
			wait = rt.backoff.Delay(failures)
		}
		if !away {
			rt.probeCut = false
		}
		at := rt.clock.Now()
		next := at.Add(wait)
		rt.log.Warn("upload failed, will retry", "file", j.LocalPath, "attempt", attempt, "next_try", next.Format(time.RFC3339), "err", te.Msg)
		e.send(ctx, msg{kind: msgRetrying, path: j.LocalPath, attempt: attempt, next: next, err: te, at: at})
		probe := away && !rt.probeCut && !te.Source // the destination coming back mends nothing of hotdrop's own
		rt.probeCut = false
		cut, err := e.wait(ctx, rt, wait, probe)
		if err != nil {
			return Result{}, errCancelled
		}
		rt.probeCut = cut
	}
}

// journalCheckpoints journals each checkpoint of j's upload so a retry, a restart or a crash
// resumes there; the journal write outlives a cancelled upload (the last checkpoint matters
// most then). A checkpoint also says the attempt logged in and made progress.
func (e *Engine) journalCheckpoints(ctx context.Context, rt *retrier, j *Job, loggedIn *atomic.Bool) {
	if j.Checkpoint != nil || e.st == nil {
		return
	}
	p := j.LocalPath
	j.Checkpoint = func(c Checkpoint) {
		rt.checkpointed = true
		rt.last = &c
		loggedIn.Store(true)
		if err := e.st.SaveCheckpoint(context.WithoutCancel(ctx), p, c); err != nil {
			rt.log.Warn("journal: cannot save the upload checkpoint", "file", p, "err", err)
		}
	}
}

// intentJournaled makes j say, through the flag it returns, when its rename intent is
// durable: from then on the uploader renames, so a failure may come after the rename.
func intentJournaled(j *Job) *atomic.Bool {
	var intended atomic.Bool
	if before := j.BeforeRename; before != nil {
		j.BeforeRename = func(ctx context.Context) error {
			err := before(ctx)
			if err == nil {
				intended.Store(true)
			}
			return err
		}
	}
	if intend := j.IntendRename; intend != nil {
		j.IntendRename = func(ctx context.Context) func(context.Context) error {
			wait := intend(ctx)
			return func(ctx context.Context) error {
				err := wait(ctx)
				if err == nil {
					intended.Store(true)
				}
				return err
			}
		}
	}
	return &intended
}

// errNotRenamed: a file whose rename intent was journaled is not on the server under its
// final name, so the rename never happened.
var errNotRenamed = errors.New("the rename had not happened")

// tryOnce is one attempt: with intent, it asks the server whether the rename happened before
// hotdrop stopped (errNotRenamed when not) and finishes the delivery if it did; without, it
// uploads the file.
func tryOnce(ctx context.Context, rt *retrier, j Job, intent bool) (Result, error) {
	if intent {
		renamed, err := renameHappened(ctx, rt.up, j.RemoteRel, j.Size)
		switch {
		case err != nil:
			return Result{}, err
		case !renamed:
			return Result{}, errNotRenamed
		}
		return finishPublish(ctx, rt.up, j, rt.log)
	}
	if rt.pre != nil {
		if err := rt.pre(ctx); err != nil {
			return Result{}, err
		}
	}
	return rt.up.Upload(ctx, j)
}

// wait sleeps for d on the injected clock. With probe set and an Uploader that is a Reacher,
// it probes the destination meanwhile and returns early (cut) once a probe that failed
// succeeds: the server is back. Failed probes count as trouble for destination.unreachable,
// which would otherwise wait for the next attempt, however long the backoff has grown.
func (e *Engine) wait(ctx context.Context, rt *retrier, d time.Duration, probe bool) (cut bool, err error) {
	timer := rt.clock.After(d)
	r, ok := rt.up.(Reacher)
	if !probe || !ok || d <= probeBase {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer:
			return false, nil
		}
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	back := make(chan struct{})
	go func() {
		probes, failed := backoff.Policy{Base: probeBase, Max: probeMax}, false
		for n := 1; ; n++ {
			select {
			case <-pctx.Done():
				return
			case <-rt.clock.After(probes.Step(n)):
			}
			err := r.Reachable(pctx)
			switch {
			case pctx.Err() != nil:
				return
			case err == nil && failed:
				close(back)
				return
			case err == nil:
				// Reachable without a failed probe first: what failed was not the network;
				// the backoff runs its course.
				return
			}
			failed = true
			rt.log.Debug("destination still unreachable", "err", err)
			e.send(pctx, msg{kind: msgTrouble, err: asTransferError(err), at: rt.clock.Now()})
		}
	}()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case <-timer:
		return false, nil
	case <-back:
		rt.log.Info("the destination answers again; retrying now")
		return true, nil
	}
}

// newRetrier is what an upload goroutine started now needs: the options as they are now.
func (e *Engine) newRetrier() retrier {
	return retrier{up: e.up, backoff: backoff.Policy{Base: e.opt.RetryBase, Max: e.opt.RetryMax}, clock: e.opt.Clock, log: e.log}
}
