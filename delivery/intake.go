// Intake: a watcher event becomes a file the Engine tracks, in its request or the File Bin.

package delivery

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotdrop/hotdrop/watcher"
)

// locate finds the request whose drop folder holds the file at rel (relative to Root), and
// the file's path inside it. bin is set for files in the File Bin.
func (e *Engine) locate(rel string) (r *reqState, name string, bin bool) {
	id, name, bin := Locate(e.byFolder, e.opt.Bin, rel)
	if id != "" {
		r = e.reqs[id]
	}
	return r, name, bin
}

// Locate places a path below watch.root (rel, slash-separated): in the File Bin (bin set,
// name its path there), or in the deepest request drop folder holding it (id, and name its
// path inside), or nowhere (id ""). folders maps drop folders (relative to the root) to
// request ids. The drop folder itself is name ".". It is the Engine's rule and explain's.
func Locate(folders map[string]string, bin, rel string) (id, name string, inBin bool) {
	if id, ok := folders[rel]; ok && rel != bin {
		return id, ".", false // the drop folder itself: a folder hotdrop cannot enter (Denied)
	}
	if bin != "" && (rel == bin || strings.HasPrefix(rel, bin+"/")) {
		return "", strings.TrimPrefix(rel, bin+"/"), true
	}
	dir := path.Dir(rel)
	for dir != "." && dir != "/" {
		if id, ok := folders[dir]; ok {
			return id, strings.TrimPrefix(rel, dir+"/"), false
		}
		dir = path.Dir(dir)
	}
	return "", "", false
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
	if ev.Kind == watcher.FolderRemoved {
		e.folderRemoved(ev.Rel)
		return
	}
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
		r.mayStart = r.mayStart || r.marker
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
		e.removed(ctx, ev.Path, fs)
		return
	}
	if fs == nil {
		fs = &fileState{rec: FileRecord{Path: ev.Path, State: Settling, CreatedAt: e.opt.Clock.Now()}}
		e.putFile(fs)
	}
	e.place(ctx, fs, r, name, bin)
	fs.latest, fs.latestReady = ev.Info, ev.Kind == watcher.Ready
	if !e.judgeEvent(ctx, fs, r, ev) {
		return
	}
	e.binSequence(fs, true) // judged now (judge), or settling again
	e.save(ctx, fs)
	e.refreshOwner(ctx, fs)
}

// removed handles a file that went away: an upload of it stops, a file not delivered is
// forgotten, and a delivered one stays delivered (moved away by after = move, or deleted).
func (e *Engine) removed(ctx context.Context, p string, fs *fileState) {
	if fs == nil {
		if e.isAuxiliary(p) {
			e.auxChanged(p) // a sidecar or checksum file went: judge its file again
		}
		return
	}
	switch fs.rec.State {
	case Uploading:
		fs.gone = true
		e.abandonUpload(fs)
	case Delivered:
		fs.sourceGone = true // the delivery stands
	default:
		e.dropFile(fs)
		e.deleteRecord(p)
	}
	e.refreshOwner(ctx, fs)
}

// place puts a file in its request (or the File Bin) as the event found it; a File Bin
// file's request is decided by the naming rules once it is ready (judge).
func (e *Engine) place(ctx context.Context, fs *fileState, r *reqState, name string, bin bool) {
	fs.inBin = bin
	id := fs.req()
	if r != nil {
		id = r.ID
	}
	if fs.req() != id && fs.rec.State != Uploading {
		prev := fs.req()
		e.assign(fs, id)
		if prevReq := e.reqs[prev]; prevReq != nil {
			e.refresh(ctx, prevReq)
		}
	}
	fs.setName(name)
	e.binSequence(fs, true) // name and File Bin known now
	fs.gone, fs.sourceGone = false, false
}

// judgeEvent sets a file's state from a watcher event, and reports whether it changed anything:
// a file being uploaded is left to its upload (which notices a change and discards its
// partial), and a delivered file seen again as it was is left delivered.
func (e *Engine) judgeEvent(ctx context.Context, fs *fileState, r *reqState, ev watcher.Event) bool {
	switch ev.Kind {
	case watcher.Unsafe:
		if fs.rec.State == Uploading {
			return false
		}
		e.setIdentity(fs, ev.Info)
		e.hold(fs, ReasonUnsafePath, fmt.Sprintf("%s %s", fs.name, ev.Reason))
	case watcher.Denied:
		return e.holdDenied(fs, ev)
	case watcher.Settling, watcher.Ready:
		if fs.rec.State == Uploading {
			return false
		}
		if fs.rec.State == Delivered && sameIdentity(fs.rec, ev.Info) {
			return false
		}
		e.setIdentity(fs, ev.Info)
		if ev.Kind == watcher.Settling {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = Settling, "", ""
		} else {
			fs.rec.State, fs.rec.Reason, fs.rec.Message = Ready, "", ""
			e.judge(ctx, fs, r)
			e.checkSameContent(fs)
		}
	}
	if fs.rec.State != Settling {
		e.uncount(fs)
	}
	return true
}

// uncount takes fs out of its request's settlingLeft, if it was counted there: it stopped
// settling, or it leaves the request.
func (e *Engine) uncount(fs *fileState) {
	if !fs.counted {
		return
	}
	fs.counted = false
	if r := e.reqs[fs.req()]; r != nil && r.settlingLeft > 0 {
		r.settlingLeft--
		r.mayStart = r.mayStart || r.settlingLeft == 0
	}
}

func (e *Engine) refreshOwner(ctx context.Context, fs *fileState) {
	if r := e.reqs[fs.req()]; r != nil {
		e.refresh(ctx, r)
	}
	if fs.inBin || e.reqs[fs.req()] == nil {
		e.reportBin()
	}
}

// folderRemoved has the drop folders a removed folder took with it (someone cleaned up by
// hand) made again: a render farm writing into a request's folder must find it, and it went
// unnoticed until a reload. A folder inside a drop folder, the usual case, costs one look-up.
func (e *Engine) folderRemoved(rel string) {
	var gone []string
	if id, ok := e.byFolder[rel]; ok {
		gone = append(gone, id)
	} else if id, _, bin := Locate(e.byFolder, e.opt.Bin, rel); id == "" && !bin {
		// Above the drop folders (a title's folder, say): those below it went too.
		for f, id := range e.byFolder {
			if strings.HasPrefix(f, rel+"/") {
				gone = append(gone, id)
			}
		}
	}
	if b := e.opt.Bin; b != "" && (rel == b || strings.HasPrefix(b, rel+"/")) {
		gone = append(gone, "") // the File Bin
	}
	if len(gone) == 0 {
		return
	}
	if e.remake == nil {
		e.remake = map[string]time.Time{}
	}
	due := e.opt.Clock.Now().Add(remakeAfter)
	for _, id := range gone {
		e.remake[id] = due
	}
}

// remakeAfter is how long after its removal a drop folder is made again: a root removed
// whole (rm -rf) loses its folders first, and must not find them made again in it. The
// root's own return is the daemon's to see (it makes every folder again then).
const remakeAfter = 2 * time.Second

// remakeFolders makes again the removed drop folders whose time has come, while watch.root
// is the folder the Engine works in.
func (e *Engine) remakeFolders() {
	if len(e.remake) == 0 {
		return
	}
	root, err := e.fsRoot()
	if err != nil {
		clear(e.remake)
		return
	}
	have, err1 := root.Stat()
	now, err2 := os.Stat(root.Path())
	if err1 != nil || err2 != nil || !os.SameFile(have, now) {
		clear(e.remake) // the root itself went: not folder by folder
		return
	}
	at := e.opt.Clock.Now()
	for id, due := range e.remake {
		if at.Before(due) {
			continue
		}
		delete(e.remake, id)
		rel, what := e.opt.Bin, "the File Bin"
		if id != "" {
			r := e.reqs[id]
			if r == nil || !r.Accepting() {
				continue
			}
			rel, what = r.rel, "the drop folder of "+r.ID
		}
		if _, err := root.Lstat(rel); err == nil {
			continue // made again meanwhile
		}
		folder := filepath.Join(e.opt.Root, filepath.FromSlash(rel))
		if err := e.mkdirAll(rel); err != nil {
			e.log.Error(what+" was removed and cannot be made again", "folder", folder, "err", err)
			continue
		}
		e.log.Warn(what+" was removed; hotdrop made it again", "folder", folder)
	}
}
