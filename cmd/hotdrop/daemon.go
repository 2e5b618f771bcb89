package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/report"
	"github.com/hotdrop/hotdrop/store"
	"github.com/hotdrop/hotdrop/uploader"
	"github.com/hotdrop/hotdrop/watcher"
)

// daemonHooks let tests and the demo look inside a running daemon without another code path.
type daemonHooks struct {
	// wrapUploader, when set, wraps the real uploader (to count uploads, say).
	wrapUploader func(delivery.Uploader) delivery.Uploader
	// reporters hear every request change besides the status files.
	reporters []delivery.Reporter
	// started is closed once the drop folders exist and the watcher is running.
	started chan<- struct{}
}

// runDaemon is `hotdrop run`: it wires config, journal, uploader, engine and watcher together
// and runs them until ctx is cancelled.
func runDaemon(ctx context.Context, cfg *config.Config, log *slog.Logger, hooks daemonHooks) error {
	creqs, err := config.LoadRequests(cfg)
	if err != nil {
		return err
	}
	if len(creqs) == 0 {
		log.Warn("no requests found: no drop folder will be created", "requests.files", strings.Join(cfg.Requests.Files, ", "))
	}
	st, err := store.Open(filepath.Join(cfg.StateDir, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	up, err := uploader.New(uploader.Options{
		URL: cfg.Destination.URL, IdentityFile: cfg.Destination.IdentityFile,
		PasswordFile: cfg.Destination.PasswordFile, KnownHosts: cfg.Destination.KnownHosts, Logger: log,
	})
	if err != nil {
		return err
	}
	defer up.Close()
	var dup delivery.Uploader = uploaderAdapter{up}
	if hooks.wrapUploader != nil {
		dup = hooks.wrapUploader(dup)
	}

	rep := multiReporter(append([]delivery.Reporter{&report.StatusFiles{Logger: log}}, hooks.reporters...))
	if !cfg.Status.StatusFiles {
		rep = multiReporter(hooks.reporters)
	}
	eng := delivery.New(delivery.Options{
		Root: cfg.Watch.Root, Bin: cfg.Watch.Bin, FolderTemplate: cfg.Watch.Folder,
		FolderMode: cfg.Watch.FolderMode, Group: cfg.Watch.Group, ReadyMarker: cfg.Watch.ReadyMarker,
		Concurrency: cfg.Destination.Concurrency, AutoDeliver: cfg.Destination.AutoDeliver,
		Names: cfg.Destination.Names,
		RemotePath: func(r delivery.Request, name string) (string, error) {
			return uploader.RemotePath(cfg.Destination.Path, r.Fields, name)
		},
		Logger: log,
	}, dup, storeAdapter{st}, rep)
	if err := eng.SetRequests(ctx, toDeliveryRequests(creqs)); err != nil {
		return err
	}

	w, err := watcher.New(watcher.Options{
		Root: cfg.Watch.Root, Settle: cfg.Watch.Settle, Rescan: cfg.Watch.Rescan, Poll: cfg.Watch.Poll,
		Mode: cfg.Watch.Mode, Ignore: cfg.Watch.Ignore, Logger: log,
		Skip: func(rel string) bool { return rel == "_delivered" || strings.HasPrefix(rel, "_delivered/") },
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan watcher.Event, 256)
	werr := make(chan error, 1)
	go func() { werr <- w.Run(ctx, events) }()
	log.Info("hotdrop is watching", "root", cfg.Watch.Root, "requests", len(creqs), "destination", redactURL(cfg.Destination.URL), "settle", cfg.Watch.Settle)
	if hooks.started != nil {
		close(hooks.started)
	}
	runErr := eng.Run(ctx, events)
	cancel()
	if err := <-werr; err != nil && !errors.Is(err, context.Canceled) && runErr == nil {
		runErr = fmt.Errorf("watcher: %w", err)
	}
	return runErr
}

func toDeliveryRequests(in []config.Request) []delivery.Request {
	out := make([]delivery.Request, 0, len(in))
	for _, r := range in {
		out = append(out, delivery.Request{ID: r.ID, Status: r.Status, Files: r.Files, Fields: r.Fields})
	}
	return out
}

// redactURL drops anything secret-looking (a password in user info) before a URL is logged.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		rest := s[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 {
				return s[:i+3] + rest[:c] + ":***" + rest[at:]
			}
		}
	}
	return s
}

type multiReporter []delivery.Reporter

func (m multiReporter) RequestChanged(v delivery.RequestView) {
	for _, r := range m {
		r.RequestChanged(v)
	}
}

// uploaderAdapter lets the engine use the concrete uploader: the engine declares what it
// needs and does not import the uploader package.
type uploaderAdapter struct{ u *uploader.Uploader }

func (a uploaderAdapter) Upload(ctx context.Context, j delivery.Job) (delivery.Result, error) {
	res, err := a.u.Upload(ctx, uploader.Job{LocalPath: j.LocalPath, RemoteRel: j.RemoteRel, Size: j.Size,
		ModTime: j.ModTime, Replace: j.Replace, BeforeRename: j.BeforeRename, Progress: j.Progress})
	if err != nil {
		ue := uploader.Classify(err)
		return delivery.Result{}, &delivery.TransferError{Code: ue.Code, Msg: ue.Msg, Transient: ue.Transient, Err: err}
	}
	return delivery.Result{Remote: res.Remote, Size: res.Size, SHA256: res.SHA256}, nil
}

func (a uploaderAdapter) Stat(ctx context.Context, rel string) (int64, bool, error) {
	n, ok, err := a.u.Stat(ctx, rel)
	if err != nil {
		ue := uploader.Classify(err)
		return 0, false, &delivery.TransferError{Code: ue.Code, Msg: ue.Msg, Transient: ue.Transient, Err: err}
	}
	return n, ok, nil
}

// storeAdapter lets the engine use the SQLite journal; the record types have the same fields,
// so they convert directly.
type storeAdapter struct{ s *store.Store }

func (a storeAdapter) SaveRequest(ctx context.Context, r delivery.RequestRecord) error {
	return a.s.SaveRequest(ctx, store.Request(r))
}

func (a storeAdapter) SaveFile(ctx context.Context, f delivery.FileRecord) (int64, error) {
	return a.s.SaveFile(ctx, store.File(f))
}

func (a storeAdapter) DeleteFile(ctx context.Context, path string) error {
	return a.s.DeleteFile(ctx, path)
}

func (a storeAdapter) Files(ctx context.Context) ([]delivery.FileRecord, error) {
	fs, err := a.s.Files(ctx)
	out := make([]delivery.FileRecord, 0, len(fs))
	for _, f := range fs {
		out = append(out, delivery.FileRecord(f))
	}
	return out, err
}

func (a storeAdapter) MarkRenameIntent(ctx context.Context, path, remote, sha string) error {
	return a.s.MarkRenameIntent(ctx, path, remote, sha)
}
