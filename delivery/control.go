package delivery

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnknown is returned by the control calls for a request or file hotdrop does not know.
var ErrUnknown = errors.New("unknown")

// ErrNothingToDo is returned by the control calls when the request or file is in no state
// they act on (a retry of a delivered request, a deliver that the request does not wait
// for); the error says why, so no button or command claims to have done something.
var ErrNothingToDo = errors.New("nothing to do")

// Retry tries a request's failed and held files again (`hotdrop retry ID`, the dashboard's
// button): each is re-derived from scratch, so a hold whose cause is gone lifts and a hold
// whose cause remains comes back with its reason.
func (e *Engine) Retry(ctx context.Context, requestID string) error {
	var err error
	cerr := e.do(ctx, func() {
		r := e.reqs[requestID]
		if r == nil {
			err = fmt.Errorf("request %s: %w", requestID, ErrUnknown)
			return
		}
		files, stuck := e.filesOf(requestID), 0
		for _, fs := range files {
			if rearmable(fs) {
				stuck++
			}
		}
		if stuck == 0 {
			err = fmt.Errorf("request %s has no failed or held file to retry (it is %s%s): %w", requestID, r.state, whySuffix(e.view(r)), ErrNothingToDo)
			return
		}
		for _, fs := range files {
			e.rearm(ctx, fs)
		}
		e.forgetFailedPackage(requestID)
		e.refresh(ctx, r)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// RetryFile tries one failed or held file again, by its journal id or its local path.
func (e *Engine) RetryFile(ctx context.Context, idOrPath string) error {
	var err error
	cerr := e.do(ctx, func() {
		for _, fs := range e.files {
			if fs.rec.Path == idOrPath || fmt.Sprint(fs.rec.ID) == idOrPath {
				if !rearmable(fs) {
					err = fmt.Errorf("file %s is %s, not failed or held: nothing to retry: %w", fs.rec.Path, fs.rec.State, ErrNothingToDo)
					return
				}
				e.rearm(ctx, fs)
				e.save(ctx, fs)
				e.refreshOwner(ctx, fs)
				return
			}
		}
		err = fmt.Errorf("file %s: %w", idOrPath, ErrUnknown)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// rearm puts a failed or held file back to be judged again from scratch.
func (e *Engine) rearm(ctx context.Context, fs *fileState) {
	if !rearmable(fs) {
		return
	}
	defer e.save(ctx, fs) // journal and announce the release (file.released) now
	fs.changes = 0
	fs.rec.Reason, fs.rec.Message = "", ""
	if !fs.latestReady {
		fs.rec.State = Settling
		return
	}
	fs.rec.State = Ready
	var r *reqState
	if !fs.inBin {
		r = e.reqs[fs.req()]
	}
	e.judge(ctx, fs, r)
}

// rearmable says whether a retry acts on the file: failed or held, except a link or special
// file, which stays held until it is replaced by a real file, and a file in a folder hotdrop
// cannot enter, which the watcher releases once it can (deniedHold).
func rearmable(fs *fileState) bool {
	return (fs.rec.State == Failed || fs.rec.State == Held) && fs.rec.Reason != ReasonUnsafePath && !deniedHold(fs)
}

func whySuffix(v RequestView) string {
	if v.Why == "" {
		return ""
	}
	return ": " + v.Why
}

// Deliver is `hotdrop deliver ID`: for auto_deliver = false it releases a complete request,
// and for a files = 0 request it stands in for the ready marker. It never overrides a hold.
func (e *Engine) Deliver(ctx context.Context, requestID string) error {
	_, err := e.DeliverSay(ctx, requestID)
	return err
}

// DeliverSay is Deliver that also says, in one line, what the release did. A request that
// does not wait for a deliver (auto_deliver takes it once complete, or it is delivered or not
// open) is left alone with an ErrNothingToDo saying what it waits for instead.
func (e *Engine) DeliverSay(ctx context.Context, requestID string) (string, error) {
	var err error
	var said string
	cerr := e.do(ctx, func() {
		r := e.reqs[requestID]
		if r == nil {
			err = fmt.Errorf("request %s: %w", requestID, ErrUnknown)
			return
		}
		if !canDeliver(r, e.opt) {
			why := "auto_deliver sends it once complete"
			switch {
			case r.deliver:
				why = "it was already released"
			case r.state == Delivered:
				why = "it is delivered"
			case !r.Accepting():
				why = "its status " + r.Status + " takes no delivery"
			}
			err = fmt.Errorf("request %s does not wait for a deliver: %s%s: %w", requestID, why, whySuffix(e.view(r)), ErrNothingToDo)
			return
		}
		r.deliver = true
		e.refresh(ctx, r)
		e.settle(ctx, true) // what the release starts or holds is derived before it is told
		said = DeliverOutcome(e.view(r))
	})
	if cerr != nil {
		return "", cerr
	}
	return said, err
}

// UpdateRequests replaces the requests while running (a tracker poll, a changed requests
// file), keeping every other setting: Reload with the current options and uploader.
func (e *Engine) UpdateRequests(ctx context.Context, reqs []Request) error {
	return e.reload(ctx, nil, nil, reqs)
}

// ReasonReplaceRequested is the reason of the file.released event that `hotdrop retry
// --replace` journals: a person decided that the file on the server may be replaced.
const ReasonReplaceRequested = "replace_requested"

// RetryReplace is `hotdrop retry --replace ID|PATH`: the files held remote_exists (of the
// request, or the one file) are released, and their next upload replaces the file the server
// holds, which hotdrop never does unasked. The decision is journaled as the reason of their
// file.released event and logged. Files held for anything else are left alone.
func (e *Engine) RetryReplace(ctx context.Context, idOrPath string) (int, error) {
	var err error
	n := 0
	cerr := e.do(ctx, func() {
		var files []*fileState
		r := e.reqs[idOrPath]
		if r != nil {
			files = e.filesOf(r.ID)
		} else {
			for _, fs := range e.files {
				if fs.rec.Path == idOrPath || fmt.Sprint(fs.rec.ID) == idOrPath {
					files = []*fileState{fs}
				}
			}
			if files == nil {
				err = fmt.Errorf("%s is neither a request nor a file hotdrop knows: %w", idOrPath, ErrUnknown)
				return
			}
		}
		for _, fs := range files {
			if fs.rec.State != Held || fs.rec.Reason != ReasonRemoteExists {
				continue
			}
			remote := fs.rec.RemotePath
			if remote == "" {
				remote = "its remote path"
			}
			msg := fmt.Sprintf("hotdrop retry --replace: the file at %s on the server is replaced by this one", remote)
			e.log.Warn("replace requested: the next upload replaces the file on the server", "file", fs.rec.Path, "remote", remote)
			fs.replaceAsked = true
			fs.setMore().note = &EventReason{Code: ReasonReplaceRequested, Message: msg}
			e.rearm(ctx, fs)
			e.refreshOwner(ctx, fs)
			n++
		}
		if n == 0 {
			err = fmt.Errorf("%s has no file held remote_exists: nothing to replace: %w", idOrPath, ErrNothingToDo)
		}
	})
	if cerr != nil {
		return 0, cerr
	}
	return n, err
}
