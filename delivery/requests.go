// Installing requests: drop folders, the File Bin, reloads.

package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"time"
)

// SetRequests installs the requests, creating a drop folder for each one that accepts
// deliveries (and the File Bin) and journaling them. It must be called before Run.
func (e *Engine) SetRequests(ctx context.Context, reqs []Request) error {
	err := e.setRequests(ctx, reqs)
	e.publish(nil) // readers see the requests before Run starts
	return err
}

func (e *Engine) setRequests(ctx context.Context, reqs []Request) error {
	prev := e.reqs
	e.reqsChanged = true
	e.reqs, e.byFolder = map[string]*reqState{}, map[string]string{}
	var errs []error
	var made []*reqState
	var held func() []RequestRecord
	if len(prev) == 0 && e.runCtx == nil {
		// The first requests, before Run: nothing has been handed to the journal writer, so
		// the journal's records are read while the drop folders are checked.
		held = e.heldRequests(ctx)
	}
	if e.opt.Bin != "" {
		if err := e.mkdirAll(e.opt.Bin); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range reqs {
		rel, err := DropFolder(e.opt.FolderTemplate, r.Fields, e.opt.Bin)
		if err != nil {
			errs = append(errs, fmt.Errorf("request %s: %w", r.ID, err))
			continue
		}
		if other, dup := e.byFolder[rel]; dup && other != r.ID {
			errs = append(errs, fmt.Errorf("requests %s and %s get the same drop folder %q: add a field such as {id} to watch.folder", other, r.ID, rel))
			continue
		}
		r.Folder = filepath.Join(e.opt.Root, filepath.FromSlash(rel))
		rs := &reqState{Request: r, rel: rel, state: Waiting}
		if prev != nil && prev[r.ID] == nil && e.runCtx != nil {
			// New to a running engine (a reload, a tracker poll): if it was known before
			// (removed, then back), its delivered files must not announce request.delivered
			// and upload the manifest again; its first look establishes its state quietly.
			rs.quiet = true
		}
		if old := prev[r.ID]; old != nil {
			rs.marker, rs.deliver, rs.state, rs.emitted, rs.milestones = old.marker, old.deliver, old.state, old.emitted, old.milestones
			rs.delivered = old.delivered
			if old.Status != r.Status {
				e.log.Info("request status changed", "request", r.ID, "from", old.Status, "to", r.Status)
				e.emit(Event{Type: EventRequestStatusChanged, Request: &EventRequest{ID: r.ID, State: string(old.state), Status: r.Status}})
			}
		}
		e.reqs[r.ID] = rs
		e.byFolder[rel] = r.ID
		if r.Accepting() {
			if err := e.mkdirAll(rel); err != nil {
				errs = append(errs, fmt.Errorf("request %s: %w", r.ID, err))
				rs.setupErr = err.Error()
			}
		}
		made = append(made, rs)
	}
	// Written here, not by the batch, so that a journal refusing them is said to the caller;
	// after what the writer holds, so that no older record of theirs overwrites these.
	e.syncJournal()
	if held == nil {
		held = e.heldRequests(ctx) // after what the writer held
	}
	for id := range e.lastManifest {
		if e.reqs[id] == nil {
			delete(e.lastManifest, id) // a request gone: what its manifest said is not needed
		}
	}
	journaled := held()
	wasDelivered := make(map[string]bool)
	for _, h := range journaled {
		if h.Delivered {
			wasDelivered[h.ID] = true
		}
	}
	recs := make([]RequestRecord, 0, len(made))
	for _, rs := range made {
		if prev[rs.ID] == nil {
			rs.delivered = wasDelivered[rs.ID] // the journal knows it from the last run
		}
		recs = append(recs, requestRecord(rs, e.opt.Clock.Now()))
	}
	if err := e.st.SaveRequests(ctx, changedRequests(recs, journaled)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func requestRecord(r *reqState, now time.Time) RequestRecord {
	fields, _ := json.Marshal(r.Fields)
	return RequestRecord{ID: r.ID, Fields: string(fields), Status: r.Status, Files: r.Files,
		Folder: r.Folder, State: r.state, UpdatedAt: now, Delivered: r.delivered}
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(g.Gid)
}

// Reload applies a new configuration while running, without dropping uploads in flight.
// It always applies what it was given; an error says which requests could not be set up
// (their drop folders), not that the old configuration stays.
//
// they finish with the uploader they started with, and later ones use up (nil keeps the
// current one). Requests are replaced (new drop folders created, statuses applied), failed
// files are tried again (SPEC: a config reload retries them) and every hold is re-derived.
func (e *Engine) Reload(ctx context.Context, opt Options, up Uploader, reqs []Request) error {
	return e.reload(ctx, &opt, up, reqs)
}

// reload is Reload; a nil opt keeps the current options.
func (e *Engine) reload(ctx context.Context, opt *Options, up Uploader, reqs []Request) error {
	var err error
	callErr := e.do(ctx, func() {
		if opt != nil {
			e.opt = withDefaults(*opt)
			e.log = e.opt.Logger
		}
		e.gen++ // what was derived from the options or the requests' fields is stale
		if up != nil {
			e.up = up
		}
		err = e.setRequests(ctx, reqs)
		for _, fs := range e.files {
			if fs.rec.State == Delivered || fs.rec.State == Uploading {
				continue
			}
			if rel, rerr := filepath.Rel(e.opt.Root, fs.rec.Path); rerr == nil {
				r, name, _ := e.locate(filepath.ToSlash(rel))
				fs.setName(name)
				if r != nil {
					e.assign(fs, r.ID)
				} else {
					e.assign(fs, "")
				}
			}
			if fs.rec.State == Failed {
				fs.rec.State, fs.rec.Reason, fs.rec.Message = Settling, "", ""
				if fs.latestReady {
					fs.rec.State = Ready
				}
				e.save(ctx, fs)
			}
		}
		e.rejudge(ctx)
		for _, r := range e.reqs {
			e.refresh(ctx, r)
		}
		e.reportBin()
		e.dispatch(ctx)
	})
	if callErr != nil {
		return callErr
	}
	return err
}
