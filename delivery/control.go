package delivery

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnknown is returned by the control calls for a request or file hotdrop does not know.
var ErrUnknown = errors.New("unknown")

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
		for _, fs := range e.filesOf(requestID) {
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
	if fs.rec.State != string(Failed) && fs.rec.State != string(Held) || fs.rec.Reason == ReasonUnsafePath {
		return // a link or special file stays held until it is replaced by a real file
	}
	defer e.save(ctx, fs) // journal and announce the release (file.released) now
	fs.changes = 0
	fs.rec.Reason, fs.rec.Message = "", ""
	if !fs.latestReady {
		fs.rec.State = string(Settling)
		return
	}
	fs.rec.State = string(Ready)
	var r *reqState
	if !fs.inBin {
		r = e.reqs[fs.req]
	}
	e.classify(ctx, fs, r)
}

// Deliver is `hotdrop deliver ID`: for auto_deliver = false it releases a complete request,
// and for a files = 0 request it stands in for the ready marker. It never overrides a hold.
func (e *Engine) Deliver(ctx context.Context, requestID string) error {
	var err error
	cerr := e.do(ctx, func() {
		r := e.reqs[requestID]
		if r == nil {
			err = fmt.Errorf("request %s: %w", requestID, ErrUnknown)
			return
		}
		r.deliver = true
		e.refresh(ctx, r)
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// UpdateRequests replaces the requests while running (a tracker poll, a changed requests
// file), keeping every other setting: Reload with the current options and uploader.
func (e *Engine) UpdateRequests(ctx context.Context, reqs []Request) error {
	e.mu.Lock()
	opt := e.opt
	e.mu.Unlock()
	return e.Reload(ctx, opt, nil, reqs)
}
