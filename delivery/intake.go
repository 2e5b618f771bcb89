// Intake: a watcher event becomes a file the Engine tracks, in its request or the File Bin.

package delivery

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

// locate finds the request whose drop folder holds the file at rel (relative to Root), and
// the file's path inside it. bin is set for files in the File Bin.
func (e *Engine) locate(rel string) (r *reqState, name string, bin bool) {
	if id, ok := e.byFolder[rel]; ok && rel != e.opt.Bin {
		return e.reqs[id], ".", false // the drop folder itself: a folder hotdrop cannot enter (Denied)
	}
	if e.opt.Bin != "" && (rel == e.opt.Bin || strings.HasPrefix(rel, e.opt.Bin+"/")) {
		return nil, strings.TrimPrefix(rel, e.opt.Bin+"/"), true
	}
	dir := path.Dir(rel)
	for dir != "." && dir != "/" {
		if id, ok := e.byFolder[dir]; ok {
			return e.reqs[id], strings.TrimPrefix(rel, dir+"/"), false
		}
		dir = path.Dir(dir)
	}
	return nil, "", false
}

// auxiliary reports whether a file is never delivered itself: the ready marker, sidecars,
// folder metadata and writers' checksum files beside a file.
func (e *Engine) auxiliary(p string) bool {
	base := filepath.Base(p)
	if base == e.opt.ReadyMarker || base == "_metadata.toml" || base == "_metadata.json" {
		return true
	}
	for _, ext := range []string{".toml", ".json", ".md5", ".sha256", ".xxh64"} {
		if strings.HasSuffix(base, ext) {
			if _, err := e.lstat(strings.TrimSuffix(p, ext)); err == nil {
				return true
			}
		}
	}
	return false
}

func (e *Engine) handle(ctx context.Context, ev watcher.Event) {
	r, name, bin := e.locate(ev.Rel)
	if r == nil && !bin {
		if !e.outside[ev.Path] && ev.Kind != watcher.Removed {
			e.outside[ev.Path] = true
			e.log.Warn("file is not inside any request's drop folder nor the File Bin; it is left alone", "path", ev.Path)
		}
		return
	}
	if r != nil && filepath.Base(ev.Path) == e.opt.ReadyMarker && path.Dir(ev.Rel) == r.rel {
		r.marker = ev.Kind != watcher.Removed
		e.refresh(ctx, r)
		return
	}
	if ev.Kind != watcher.Removed && ev.Kind != watcher.Unsafe && ev.Kind != watcher.Denied && e.isAuxiliary(ev.Path) {
		e.liftDenied(ctx, ev.Path)
		e.auxChanged(ev.Path)
		return
	}
	fs := e.files[ev.Path]
	if ev.Kind == watcher.Removed {
		if fs == nil {
			if e.isAuxiliary(ev.Path) {
				e.auxChanged(ev.Path) // a sidecar or checksum file went: judge its file again
			}
			return
		}
		if fs.rec.State == string(Uploading) {
			fs.gone = true
			e.abandonUpload(fs)
		}
		if fs.rec.State != string(Delivered) && fs.rec.State != string(Uploading) {
			e.dropFile(fs)
			if err := e.st.DeleteFile(ctx, ev.Path); err != nil {
				e.log.Error("journal", "err", err)
			}
		}
		if fs.rec.State == string(Delivered) {
			fs.sourceGone = true // moved away (after = move) or deleted: the delivery stands
		}
		e.refreshOwner(ctx, fs)
		return
	}
	if fs == nil {
		fs = &fileState{rec: FileRecord{Path: ev.Path, State: string(Settling), CreatedAt: time.Now()}}
		e.putFile(fs)
	}
	fs.inBin = bin
	id := fs.req // a File Bin file's request is decided by classify when it is ready
	if r != nil {
		id = r.ID
	}
	if fs.req != id && fs.rec.State != string(Uploading) {
		prev := fs.req
		e.assign(fs, id)
		if prevReq := e.reqs[prev]; prevReq != nil {
			e.refresh(ctx, prevReq)
		}
	}
	fs.name = name
	e.binSequence(fs, true) // name and File Bin known now
	fs.gone, fs.sourceGone = false, false
	fs.latest, fs.latestReady = ev.Info, ev.Kind == watcher.Ready

	switch ev.Kind {
	case watcher.Unsafe:
		if fs.rec.State == string(Uploading) {
			return
		}
		e.setIdentity(fs, ev.Info)
		e.hold(fs, ReasonUnsafePath, fmt.Sprintf("%s %s", name, ev.Reason))
	case watcher.Denied:
		if !e.holdDenied(fs, ev) {
			return
		}
	case watcher.Settling, watcher.Ready:
		if fs.rec.State == string(Uploading) {
			return // the upload will notice the change and discard its partial
		}
		if fs.rec.State == string(Delivered) && sameIdentity(fs.rec, ev.Info) {
			return
		}
		e.setIdentity(fs, ev.Info)
		if ev.Kind == watcher.Settling {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Settling), "", ""
		} else {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = string(Ready), "", ""
			e.classify(ctx, fs, r)
		}
	}
	e.binSequence(fs, true) // judged now (classify), or settling again
	e.save(ctx, fs)
	e.refreshOwner(ctx, fs)
}

func (e *Engine) refreshOwner(ctx context.Context, fs *fileState) {
	if r := e.reqs[fs.req]; r != nil {
		e.refresh(ctx, r)
	}
	if fs.inBin || e.reqs[fs.req] == nil {
		e.reportBin()
	}
}
