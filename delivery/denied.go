package delivery

import (
	"context"

	"github.com/hotdrop/hotdrop/watcher"
)

// A folder hotdrop cannot enter holds the files known in it (or itself, when none was known)
// permission_denied, with the watcher's sentence naming the folder, the service user and what
// to change (issue 14). The watcher lifts the hold: once the folder can be read, its files are
// reported settling anew, and what it held that is not there is reported removed.

// holdDenied holds fs for a watcher.Denied event; false says nothing changes: an upload in
// flight has its file open already, and a delivery stands.
func (e *Engine) holdDenied(fs *fileState, ev watcher.Event) bool {
	if fs.rec.State == Uploading || fs.rec.State == Delivered {
		return false
	}
	if ev.Info != (watcher.FileInfo{}) {
		e.setIdentity(fs, ev.Info)
	}
	e.hold(fs, ReasonPermissionDenied, ev.Reason)
	return true
}

// deniedHold says whether fs is held because hotdrop cannot enter its folder: only the watcher
// lifts that (a retry cannot).
func deniedHold(fs *fileState) bool {
	return fs.rec.State == Held && fs.rec.Reason == ReasonPermissionDenied
}

// liftDenied forgets the hold of an auxiliary file (a sidecar, _metadata.toml, a checksum
// file) that was held while its folder could not be entered: then nothing could tell what it
// was, and now that it is seen again as what it is, it is no file to deliver.
func (e *Engine) liftDenied(ctx context.Context, p string) {
	fs := e.files[p]
	if fs == nil || !deniedHold(fs) {
		return
	}
	e.dropFile(fs)
	e.deleteRecord(p)
	e.refreshOwner(ctx, fs)
}
