package watcher

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"runtime"
	"sort"
	"time"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// autoPollsAll: on macOS kqueue holds a descriptor per watched file, which
// large trees run out of, so auto mode polls there.
const autoPollsAll = runtime.GOOS == "darwin"

// fullScan walks the whole tree: the answer to lost events, to Rescan and
// to the periodic rescan.
func (r *run) fullScan() {
	fi, err := os.Stat(r.w.root)
	if err == nil && !fi.IsDir() {
		err = errors.New("not a folder")
	}
	if err == nil {
		err = r.syncRoot(fi)
	}
	if err != nil {
		r.rootGone(err)
		return
	}
	if r.rootMissing {
		r.w.log.Info("the watch root is back", "root", r.w.root)
		r.rootMissing = false
	}
	if r.dirs["."] == nil {
		r.addDir(".", nil, fi)
	}
	r.scanDir(".", true)
	r.reconcileWatches()
}

// rootGone forgets the whole tree (reporting every file Removed) until the
// root comes back; pollDirs looks for it on every poll tick.
func (r *run) rootGone(err error) {
	if !r.rootMissing {
		r.w.log.Warn("the watch root is gone or not a folder; waiting for it to come back", "root", r.w.root, "err", err)
		r.rootMissing = true
	}
	if r.dirs["."] != nil {
		r.dropDir(".")
	}
	r.closeRoot()
}

// pollDirs lists every polled folder and stats its files.
func (r *run) pollDirs() {
	if r.rootMissing || r.dirs["."] == nil {
		r.fullScan()
		return
	}
	var rels []string
	for rel, d := range r.dirs {
		if d.poll {
			rels = append(rels, rel)
		}
	}
	sort.Strings(rels)
	for _, rel := range rels {
		if r.ctx.Err() != nil {
			return
		}
		if d := r.dirs[rel]; d != nil && d.poll {
			r.scanDir(rel, false)
		}
	}
}

// scanDir lists one folder: forgets what disappeared, then looks at every
// entry. New subfolders are always scanned; known ones only when recursive.
func (r *run) scanDir(rel string, recursive bool) {
	d := r.dirs[rel]
	if d == nil {
		return
	}
	entries, err := r.listDir(rel)
	if err != nil {
		if gone(err) {
			if rel == "." {
				r.rootGone(err)
				return
			}
			if p := r.dirs[path.Dir(rel)]; p != nil {
				r.removeChild(path.Dir(rel), p, path.Base(rel))
			} else {
				r.dropDir(rel)
			}
			return
		}
		if rel != "." && errors.Is(err, fs.ErrPermission) {
			r.deny(rel, err) // its files are held until it can be read
			return
		}
		// Unreadable is not empty: keep what is known, say so once.
		if !r.warnedList[rel] {
			r.warnedList[rel] = true
			r.w.log.Warn("cannot list folder; its files are not watched until it can be read", "path", r.abs(rel), "err", err)
		}
		return
	}
	delete(r.warnedList, rel)
	if after := r.lift(rel, d); after != nil {
		defer after()
	}
	present := make(map[string]bool, len(entries)) // listDir left the ignored ones out
	for _, fi := range entries {
		present[fi.Name()] = true
	}
	// Forget first: a folder renamed within this one must lose its old watch
	// before the new name is watched (inotify hands back the same watch).
	var missing []string
	for name := range d.children {
		if !present[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		r.removeChild(rel, d, name)
	}
	for _, fi := range entries { // each an Lstat through the folder's descriptor
		if r.ctx.Err() != nil || r.dirs[rel] != d {
			return
		}
		r.visit(rel, d, fi.Name(), fi, false, recursive)
	}
}

// visit acts on one entry of folder parent as Lstat sees it now.
func (r *run) visit(parent string, d *dirState, name string, fi fs.FileInfo, restart, recursive bool) {
	rel := joinRel(parent, name)
	kind, known := d.children[name]
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if known && kind != childDir {
			r.removeChild(parent, d, name)
			known = false
		}
		if !known {
			d.children[name] = childDir
			r.addDir(rel, d, fi)
			r.scanDir(rel, true) // files made before the watch produce no event
			return
		}
		if recursive {
			r.scanDir(rel, true)
		}
	case mode.IsRegular():
		if known && kind != childFile {
			r.removeChild(parent, d, name)
			known = false
		}
		if !known {
			// The key is the end of rel, which the settle clock keeps as its own key: one
			// string per file, not two (a map assignment would also swap in the new name
			// at every look).
			d.children[rel[len(rel)-len(name):]] = childFile
		}
		r.observeFile(rel, d, fi, restart)
	default:
		if known && kind == childUnsafe {
			return // reported once
		}
		if known {
			r.removeChild(parent, d, name)
		}
		d.children[name] = childUnsafe
		r.emit(Event{Kind: Unsafe, Rel: rel, Info: fileInfoOf(fi), Reason: safefs.TypeRefusal(mode)})
	}
}

// observeFile feeds a regular file's current identity to the settle clock.
func (r *run) observeFile(rel string, d *dirState, fi fs.FileInfo, restart bool) {
	info := fileInfoOf(fi)
	if d.network && !r.set.isReady(rel) {
		fresh, err := r.fresh(rel)
		if err != nil {
			// Gone or swapped since the Lstat: the next look sorts it out.
			if !gone(err) && !errors.Is(err, errNotRegular) {
				r.w.log.Debug("fresh stat", "path", r.abs(rel), "err", err)
			}
			return
		}
		info = fresh
	}
	if r.settled != nil && !r.set.known(rel) && r.settled(rel, info) {
		r.set.settled(rel, info, r.now())
		return
	}
	if r.set.observe(rel, info, r.now(), restart) {
		r.emit(Event{Kind: Settling, Rel: rel, Info: info})
	}
}

// checkSettled stats every file whose clock has run out and reports those that did not
// change as Ready. It returns the files whose settle period has passed, and returns when the next
// when the next one comes due (zero when none waits).
func (r *run) checkSettled() (next time.Time) {
	now := r.now()
	due, next := r.set.dueNext(now)
	for _, rel := range due {
		if r.ctx.Err() != nil {
			return next
		}
		parent, name := path.Dir(rel), path.Base(rel)
		d := r.dirs[parent]
		if d == nil || d.children[name] != childFile {
			r.set.forget(rel) // cannot happen: dropped folders forget their files
			continue
		}
		fi, err := r.lstat(rel)
		if err != nil {
			if gone(err) {
				r.removeChild(parent, d, name)
			} else if errors.Is(err, fs.ErrPermission) {
				r.scanDir(parent, false) // a folder on the way may no longer be entered: deny says so
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			r.visit(parent, d, name, fi, false, false)
			continue
		}
		info := fileInfoOf(fi)
		if d.network {
			if info, err = r.fresh(rel); err != nil {
				continue
			}
		}
		if r.set.confirm(rel, info, now) {
			r.emit(Event{Kind: Ready, Rel: rel, Info: info})
		}
	}
	return next
}

// addDir starts tracking a folder: which filesystem it is on, and whether it
// is watched or polled.
func (r *run) addDir(rel string, parent *dirState, fi fs.FileInfo) {
	d := &dirState{children: make(map[string]childKind)}
	d.dev, d.hasDev = devOf(fi)
	if parent != nil && parent.hasDev && d.hasDev && parent.dev == d.dev {
		d.fsType, d.network = parent.fsType, parent.network
	} else {
		d.fsType, d.network = r.w.fsType(r.abs(rel))
		r.announceFS(rel, d)
	}
	r.dirs[rel] = d
	switch {
	case r.w.mode == ModePoll,
		r.w.mode == ModeAuto && (d.network || autoPollsAll):
		d.poll = true
	default:
		r.arm(rel, d)
	}
}

// announceFS says once per mount why a tree is polled (or why events may
// miss writes there).
func (r *run) announceFS(rel string, d *dirState) {
	if !d.network {
		return
	}
	switch r.w.mode {
	case ModeAuto:
		r.w.log.Info("folder is on a network or FUSE filesystem where other machines' writes produce no file events; polling it",
			"path", r.abs(rel), "fs", d.fsType, "poll", r.w.poll)
	case ModeEvents:
		r.w.log.Warn("folder is on a network or FUSE filesystem but watch.mode is \"events\": writes from other machines are seen only at the next full rescan",
			"path", r.abs(rel), "fs", d.fsType, "rescan", r.w.rescan)
	}
}

// arm adds a folder's watch, or leaves it polled with a re-arm scheduled.
func (r *run) arm(rel string, d *dirState) {
	if r.n == nil || r.limited {
		d.fallback, d.poll = true, true
		r.scheduleRearm()
		return
	}
	err := r.n.Add(r.abs(rel))
	switch {
	case err == nil:
		d.watched, d.fallback, d.poll = true, false, false
		delete(r.warnedWatch, rel)
		return
	case gone(err):
		// Vanished already; the scan that follows will notice.
		d.poll = true
		return
	case isWatchLimit(err):
		r.limited = true
		if r.w.warnedLimit.CompareAndSwap(false, true) {
			r.w.log.Warn(watchLimitAdvice(r.abs(rel), r.w.poll))
		}
	case errors.Is(err, fs.ErrPermission):
		// A folder hotdrop may not read: its listing says so (deny), once.
	default:
		if !r.warnedWatch[rel] {
			r.warnedWatch[rel] = true
			r.w.log.Warn("cannot watch folder for file events; polling it until the watch works", "path", r.abs(rel), "poll", r.w.poll, "err", err)
		}
	}
	d.fallback, d.poll = true, true
	r.scheduleRearm()
}

// removeChild forgets one entry of a folder, reporting what was reported.
func (r *run) removeChild(parent string, d *dirState, name string) {
	kind, ok := d.children[name]
	if !ok {
		return
	}
	delete(d.children, name)
	rel := joinRel(parent, name)
	switch kind {
	case childFile:
		if info, ok := r.set.forget(rel); ok {
			r.emit(Event{Kind: Removed, Rel: rel, Info: info})
		}
	case childUnsafe:
		r.emit(Event{Kind: Removed, Rel: rel})
	case childDir:
		r.dropDir(rel)
	}
}

// dropDir forgets a folder and everything below it.
func (r *run) dropDir(rel string) {
	d := r.dirs[rel]
	if d == nil {
		return
	}
	names := make([]string, 0, len(d.children))
	for name := range d.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r.removeChild(rel, d, name)
	}
	if d.watched && r.n != nil {
		_ = r.n.Remove(r.abs(rel)) // the kernel may have dropped it already
	}
	delete(r.dirs, rel)
	delete(r.warnedList, rel)
	delete(r.warnedWatch, rel)
	r.undeny(rel)
	if rel != "." && !r.rootMissing {
		r.emit(Event{Kind: FolderRemoved, Rel: rel})
	}
}

// reconcileWatches re-adds watches the event source no longer holds (the
// kernel drops a watch when its folder is renamed or deleted, and a rename
// missed in an overflow can leave one under the wrong name).
func (r *run) reconcileWatches() {
	if r.n == nil {
		return
	}
	have := make(map[string]bool)
	for _, p := range r.n.WatchList() {
		have[p] = true
	}
	var rels []string
	for rel, d := range r.dirs {
		if d.watched && !have[r.abs(rel)] {
			rels = append(rels, rel)
		}
	}
	sort.Strings(rels)
	for _, rel := range rels {
		d := r.dirs[rel]
		if d == nil {
			continue
		}
		d.watched = false
		r.arm(rel, d)
		if d.watched {
			r.scanDir(rel, false)
		}
	}
}
