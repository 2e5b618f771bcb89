package delivery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hotdrop/hotdrop/matcher"
)

// Hold reasons of the content checks (SPEC.md, Content checks).
const (
	ReasonMediaMismatch   = "media_mismatch"
	ReasonUnreadableMedia = "unreadable_media"
	ReasonIMFMismatch     = "imf_mismatch"
)

// Inspector looks inside files before any byte of them leaves: media against the metadata,
// timed text, IMF packages against their packing lists. The Engine calls it off its loop, a
// few calls at a time, once per settled version of a file (and again when the file's
// metadata or the configuration changes); calls may take long (a package is hashed whole) and
// must watch ctx. It must be safe for concurrent use.
type Inspector interface {
	// InspectFile looks inside one file. An error says it could not be looked at (the tool is
	// missing or timed out, the file could not be opened): the file is held rather than sent
	// unchecked, with the error's words.
	InspectFile(ctx context.Context, in FileInspection) (Inspection, error)
	// Inspects says, cheaply and without touching the file, whether InspectFile would look at
	// a file of this source type and name: a frame sequence's 100,000 EXRs must not each
	// cost a trip off the loop for nothing.
	Inspects(sourceType, name string) bool
	// IsPackage says whether requests of a source type are packages checked as a whole.
	IsPackage(sourceType string) bool
	// InspectPackage checks a request's folder as one package, once the request is complete.
	InspectPackage(ctx context.Context, in PackageInspection) (Inspection, error)
}

// MetaValue is one merged metadata value and where it came from, for people ("sidecar
// _metadata.toml:2", "request SR-1042", "name (rule timed-text)").
type MetaValue struct{ Value, Origin string }

// FileInspection is one settled file for InspectFile.
type FileInspection struct {
	Path string // absolute
	Name string // inside its drop folder
	// Open opens the settled version safely: beneath watch.root, no link, same identity.
	Open       func() (*os.File, error)
	SourceType string
	Metadata   map[string]MetaValue
}

// PackageInspection is a complete request's folder for InspectPackage.
type PackageInspection struct {
	Request    string
	Folder     string   // absolute: the request's drop folder, the package's root
	Root       string   // watch.root: every file is opened beneath it, never through a link
	Files      []string // the names (slash, inside Folder) of the files hotdrop knows there
	SourceType string
}

// Inspection is what an Inspector found.
type Inspection struct {
	// Applies is false when nothing was checked (not a media file, checks off).
	Applies bool
	// Hold is "" when the file may go, else media_mismatch, unreadable_media or imf_mismatch,
	// with Message naming each property and both values.
	Hold, Message string
	// HoldFile (packages) names the file, inside the folder, that the hold is put on; "" = the
	// package's first file.
	HoldFile string
	Summary  string
	// Properties are key properties (frame_rate, resolution, duration, channels,
	// sample_rate) for the manifest and the file.delivered event.
	Properties map[string]string
	// Warnings (packages): files outside the asset map, and the like; logged.
	Warnings []string
	// Compositions (IMF): the package's CPLs, for the manifest.
	Compositions []Composition
}

// Composition is one CPL of an IMF package.
type Composition struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// inspectSlots bounds the inspections running at once: ffprobe and hashing share the machine
// with the uploads.
const inspectSlots = 2

// fileInspection is a file's inspection for one version and metadata (key).
type fileInspection struct {
	key     string
	pending bool
	res     Inspection
	err     error
}

// pkgInspection is a package request's inspection for one set of file versions (key).
type pkgInspection struct {
	key     string
	pending bool
	res     Inspection
	err     error
}

// inspectState is the Engine's content-check state, owned by the loop.
type inspectState struct {
	slots chan struct{}
	pkgs  map[string]*pkgInspection // request id →
}

func (e *Engine) inspectState() *inspectState {
	if e.insp == nil {
		e.insp = &inspectState{slots: make(chan struct{}, inspectSlots), pkgs: map[string]*pkgInspection{}}
	}
	return e.insp
}

// inspect starts the inspection of a file that judge found ready, unless one for this
// version and metadata is known (then refresh applies it) or under way.
func (e *Engine) inspect(fs *fileState, md matcher.Metadata, folder string) {
	in := e.opt.Inspector
	if in == nil || fs.rec.State != Ready || fs.req() == "" {
		return
	}
	st := md["source_type"].Value
	if !in.Inspects(st, fs.name) {
		// Asked first: the key below cost every frame of a sequence no check looks at a
		// formatted string and a metadata key (issue 11).
		if fs.more != nil {
			fs.more.insp = nil
		}
		return
	}
	key := fmt.Sprintf("%d|%d|%d|%d|%d|%s", e.gen, fs.rec.Size, fs.rec.ModTime.UnixNano(), fs.rec.Inode, fs.dev, metaKey(md))
	if old := fs.x().insp; old != nil && old.key == key && old.err == nil {
		return // known (or under way); a check that could not be made is tried again
	}
	fi := &fileInspection{key: key, pending: true}
	fs.setMore().insp = fi
	req := FileInspection{Path: fs.rec.Path, Name: fs.name, Open: e.sourceOpener(fs), Metadata: MetaValues(md, folder), SourceType: st}
	p := fs.rec.Path
	e.background(func(ctx context.Context) func() {
		res, err := in.InspectFile(ctx, req)
		return func() { e.inspected(p, fi, res, err) }
	})
}

// background runs work off the loop in one of the inspection slots; the function it returns
// runs on the loop. Nothing runs before Run (no context to stop it with).
func (e *Engine) background(work func(ctx context.Context) func()) {
	ctx := e.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	st := e.inspectState()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		select {
		case st.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		done := work(ctx)
		<-st.slots
		if ctx.Err() == nil {
			e.send(ctx, msg{kind: msgCall, call: done})
		}
	}()
}

// inspected records a file's inspection, on the loop, and judges the file again.
func (e *Engine) inspected(p string, fi *fileInspection, res Inspection, err error) {
	fs := e.files[p]
	if fs == nil || fs.x().insp != fi {
		return // gone, changed or judged again since: a newer inspection decides
	}
	fi.pending, fi.res, fi.err = false, res, err
	if err != nil {
		e.log.Warn("content check could not be made", "file", p, "err", err)
	} else if res.Applies {
		e.log.Info("content checked", "file", p, "hold", res.Hold, "result", res.Summary)
	}
	ctx := e.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	e.refreshOwner(ctx, fs)
}

// applyContent puts the known content findings of a request's ready files on them (a
// hold lifted by refresh comes back while the file is the same), starts the package check of
// a complete package, and reports whether any check is still under way: then nothing of the
// request may start.
func (e *Engine) applyContent(ctx context.Context, r *reqState, files []*fileState) (pending bool) {
	if e.opt.Inspector == nil {
		return false
	}
	for _, fs := range files {
		if fs.rec.State != Ready || fs.x().insp == nil {
			continue
		}
		fi := fs.x().insp
		switch {
		case fi.pending:
			pending = true
		case fi.err != nil:
			var te *TransferError
			if errors.As(fi.err, &te) && te.Code == ReasonChangedDuringUpload {
				fs.rec.State = Settling // the watcher reports the new version
				continue
			}
			e.hold(fs, ReasonUnreadableMedia, fmt.Sprintf("%s could not be checked before sending: %v; hotdrop checks it again on `hotdrop retry` or a config reload", fs.name, fi.err))
		case fi.res.Hold != "":
			e.hold(fs, fi.res.Hold, fi.res.Message)
		}
	}
	return e.applyPackage(ctx, r, files) || pending
}

// applyPackage checks a complete package request (IMF) as a whole, once per set of file
// versions, and puts its hold on the file it names.
func (e *Engine) applyPackage(_ context.Context, r *reqState, files []*fileState) (pending bool) {
	st := ""
	for _, fs := range files {
		if v := fs.meta["source_type"]; v != "" {
			st = v
			break
		}
	}
	if st == "" || !e.opt.Inspector.IsPackage(st) || len(files) == 0 {
		return false
	}
	var parts, names []string
	ready := 0
	for _, fs := range files {
		switch fs.rec.State {
		case Settling, Uploading:
			return false // not complete, or already going: nothing to decide now
		case Ready:
			ready++
		}
		parts = append(parts, fmt.Sprintf("%s|%d|%d|%d", fs.name, fs.rec.Size, fs.rec.ModTime.UnixNano(), fs.rec.Inode))
		names = append(names, fs.name)
	}
	complete := r.marker || r.deliver || (r.Files > 0 && len(files) >= r.Files)
	if ready == 0 || !complete {
		return false
	}
	sort.Strings(parts)
	sort.Strings(names)
	key := fmt.Sprintf("%d\n%s", e.gen, strings.Join(parts, "\n"))
	ins := e.inspectState()
	pk := ins.pkgs[r.ID]
	if pk == nil || pk.key != key {
		pk = &pkgInspection{key: key, pending: true}
		ins.pkgs[r.ID] = pk
		in, id := e.opt.Inspector, r.ID
		req := PackageInspection{Request: r.ID, Folder: r.Folder, Root: e.opt.Root, Files: names, SourceType: st}
		e.background(func(ctx context.Context) func() {
			res, err := in.InspectPackage(ctx, req)
			return func() { e.packageInspected(id, pk, res, err) }
		})
		return true
	}
	if pk.pending {
		return true
	}
	code, msg, target := pk.res.Hold, pk.res.Message, pk.res.HoldFile
	if pk.err != nil {
		code, msg, target = ReasonIMFMismatch, fmt.Sprintf("the package could not be checked: %v; hotdrop checks it again when a file changes, on `hotdrop retry` or a config reload", pk.err), ""
	}
	if code == "" {
		return false
	}
	for _, fs := range files {
		if fs.name == target || target == "" {
			if fs.rec.State == Ready {
				e.hold(fs, code, msg)
			}
			return false
		}
	}
	// The file it names is not one hotdrop tracks (missing): hold the first ready one.
	for _, fs := range files {
		if fs.rec.State == Ready {
			e.hold(fs, code, msg)
			break
		}
	}
	return false
}

// forgetFailedPackage lets `hotdrop retry` check a package again whose check could not be made.
func (e *Engine) forgetFailedPackage(id string) {
	if e.insp != nil && e.insp.pkgs[id] != nil && e.insp.pkgs[id].err != nil {
		delete(e.insp.pkgs, id)
	}
}

func (e *Engine) packageInspected(id string, pk *pkgInspection, res Inspection, err error) {
	if e.inspectState().pkgs[id] != pk {
		return
	}
	pk.pending, pk.res, pk.err = false, res, err
	for _, w := range res.Warnings {
		e.log.Warn("package", "request", id, "warning", w)
	}
	if err != nil {
		e.log.Warn("package check could not be made", "request", id, "err", err)
	} else {
		e.log.Info("package checked", "request", id, "hold", res.Hold, "result", res.Summary)
	}
	if r := e.reqs[id]; r != nil {
		ctx := e.runCtx
		if ctx == nil {
			ctx = context.Background()
		}
		e.refresh(ctx, r)
	}
}

// MetaValues turns matcher metadata into the port's, each origin as people read it: a
// sidecar by its path inside the drop folder and its line ("sidecar _metadata.toml:2").
func MetaValues(md matcher.Metadata, folder string) map[string]MetaValue {
	out := make(map[string]MetaValue, len(md))
	for k, v := range md {
		origin := v.Origin()
		if v.Source == matcher.FromSidecar || v.Source == matcher.FromFolderSidecar {
			where := v.From
			if rel, err := filepath.Rel(folder, v.From); err == nil && folder != "" && !strings.HasPrefix(rel, "..") {
				where = filepath.ToSlash(rel)
			}
			if v.Line > 0 {
				where = fmt.Sprintf("%s:%d", where, v.Line)
			}
			origin = "sidecar " + where
		}
		out[k] = MetaValue{Value: v.Value, Origin: origin}
	}
	return out
}

func metaKey(md matcher.Metadata) string {
	var b strings.Builder
	for _, k := range md.SortedFields() {
		fmt.Fprintf(&b, "%s=%s@%s:%d;", k, md[k].Value, md[k].From, md[k].Line)
	}
	return b.String()
}

// mediaOf returns a delivered file's key properties, for the manifest and its event.
func mediaOf(fs *fileState) map[string]string {
	fi := fs.x().insp
	if fi == nil || fi.pending || fi.err != nil || len(fi.res.Properties) == 0 {
		return nil
	}
	return fi.res.Properties
}

// compositionsOf returns a delivered package's compositions, for the manifest.
func (e *Engine) compositionsOf(id string) []Composition {
	if e.insp == nil || e.insp.pkgs[id] == nil {
		return nil
	}
	return e.insp.pkgs[id].res.Compositions
}

// withMedia adds a file's key properties to its event's metadata as media.NAME.
func withMedia(ev *Event, fs *fileState) {
	props := mediaOf(fs)
	if ev.File == nil || len(props) == 0 {
		return
	}
	md := make(map[string]string, len(ev.File.Metadata)+len(props))
	for k, v := range ev.File.Metadata {
		md[k] = v
	}
	for k, v := range props {
		md["media."+k] = v
	}
	ev.File.Metadata = md
}
