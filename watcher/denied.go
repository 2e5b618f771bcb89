package watcher

import (
	"fmt"
	"os/user"
	"path"
	"sort"
	"strings"
	"sync"
)

// A folder hotdrop cannot list or enter (a render user's umask 077, a chmod by hand) hid its
// files without a word: the files known in it stayed settling forever (issue 14). Now it is
// reported once, in the log and as Denied events that delivery turns into permission_denied
// holds, and polled until it can be read; then its files are reported anew and settle.

// denial is what was reported about one folder hotdrop may not enter.
type denial struct {
	reported []string // rels reported Denied: files known below the folder, or the folder itself
	wasPoll  bool     // the folder's poll flag before it was denied
}

// deny reports the folder at rel, which the listing just refused with a permission error.
// The files known below it are held (Denied) and forgotten by the tree, which keeps only the
// folder itself, polled, so that the next poll tick finds it readable again.
func (r *run) deny(rel string, err error) {
	d := r.dirs[rel]
	if d == nil || r.denied[rel] != nil {
		return
	}
	den := &denial{wasPoll: d.poll}
	type held struct {
		rel  string
		info FileInfo
	}
	var files []held
	var walk func(dir string, ds *dirState)
	walk = func(dir string, ds *dirState) {
		if inner := r.denied[dir]; inner != nil && dir != rel {
			// A folder below, denied before: its holds are this folder's now.
			for _, p := range inner.reported {
				files = append(files, held{rel: p})
			}
			delete(r.denied, dir)
		}
		names := make([]string, 0, len(ds.children))
		for name := range ds.children {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			child := joinRel(dir, name)
			switch ds.children[name] {
			case childFile:
				info, _ := r.set.forget(child)
				files = append(files, held{rel: child, info: info})
			case childUnsafe:
				files = append(files, held{rel: child})
			case childDir:
				if sub := r.dirs[child]; sub != nil {
					walk(child, sub)
					r.forgetDir(child, sub)
				}
			}
		}
	}
	walk(rel, d)
	clear(d.children)
	d.poll = true
	reason := r.deniedReason(rel)
	r.w.log.Warn("cannot enter folder; the files in it are held permission_denied until hotdrop can read it", "path", r.abs(rel),
		"user", serviceUser(), "files", len(files), "fix", reason, "err", err)
	if len(files) == 0 {
		files = append(files, held{rel: rel})
		if fi, err := r.lstat(rel); err == nil {
			files[0].info = fileInfoOf(fi)
		}
	}
	r.denied[rel] = den
	for _, f := range files {
		den.reported = append(den.reported, f.rel)
		r.emit(Event{Kind: Denied, Rel: f.rel, Info: f.info, Reason: reason})
	}
}

// forgetDir drops a folder below a denied one from the tree without reporting its files
// Removed: they were reported Denied instead.
func (r *run) forgetDir(rel string, d *dirState) {
	if d.watched && r.n != nil {
		_ = r.n.Remove(r.abs(rel))
	}
	delete(r.dirs, rel)
	delete(r.warnedList, rel)
	delete(r.warnedWatch, rel)
}

// lift is called when the folder at rel was listed again. It returns what must run once the
// listing's entries are visited (nil when rel was not denied): everything reported Denied
// that the listing did not find again is reported Removed.
func (r *run) lift(rel string, d *dirState) func() {
	den := r.denied[rel]
	if den == nil {
		return nil
	}
	delete(r.denied, rel)
	d.poll = den.wasPoll || d.fallback || !d.watched
	r.w.log.Info("folder can be read again; its files are looked at anew", "path", r.abs(rel))
	return func() {
		for _, p := range den.reported {
			if r.ctx.Err() != nil {
				return
			}
			if p == rel || !r.inTree(p) {
				r.emit(Event{Kind: Removed, Rel: p})
			}
		}
	}
}

// undeny forgets the denial of a folder that is gone, reporting what it held Removed.
func (r *run) undeny(rel string) {
	den := r.denied[rel]
	if den == nil {
		return
	}
	delete(r.denied, rel)
	for _, p := range den.reported {
		r.emit(Event{Kind: Removed, Rel: p})
	}
}

// inTree reports whether the tree knows an entry at rel.
func (r *run) inTree(rel string) bool {
	d := r.dirs[path.Dir(rel)]
	return d != nil && d.children[path.Base(rel)] != 0
}

// deniedReason is the sentence shown with the hold: the folder, the user hotdrop runs as, and
// what to change.
func (r *run) deniedReason(rel string) string {
	who := serviceUser()
	var b strings.Builder
	fmt.Fprintf(&b, "hotdrop (running as the user %s) cannot enter the folder %s", who, r.abs(rel))
	fix := "let the user " + who + " read and enter it (chmod o+rx, or a group " + who + " is in with g+rx)"
	if fi, err := r.lstat(rel); err == nil {
		if owner, group, ok := ownerOf(fi); ok {
			fmt.Fprintf(&b, " (owner %s:%s, mode %04o)", owner, group, fi.Mode().Perm())
			if owner == who {
				fix = "chmod u+rx " + r.abs(rel)
			} else {
				fix = fmt.Sprintf("chmod g+rx %s and add the user %s to the group %s (or chgrp it to a group %s is in); "+
					"a umask of 002 for whoever writes there keeps new folders readable", r.abs(rel), who, group, who)
			}
		}
	}
	fmt.Fprintf(&b, ", so the files in it cannot be delivered: %s. hotdrop looks again every %s", fix, r.w.poll)
	return b.String()
}

var serviceUserName = sync.OnceValue(func() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "(unknown)"
})

// serviceUser is the name of the user hotdrop runs as.
func serviceUser() string { return serviceUserName() }
