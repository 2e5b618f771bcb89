package watcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// The walk and every stat go through safefs, beneath the root and never through a link: a
// render-farm user may swap any folder of the tree for a link, and a walk that followed it
// would report a foreign folder's files (names, sizes) as if they were dropped here.

// errBelowLink says a folder on a path became a link (or something else that is not a
// folder); for the tree that path is gone, and the link itself is reported Unsafe when its
// parent is listed.
var errBelowLink = errors.New("a folder on the path is no longer a folder")

// syncRoot opens the root again when the folder at its path is not the one held open (first
// scan, or the root was removed and made again). fi is a Stat of the root's path.
func (r *run) syncRoot(fi fs.FileInfo) error {
	if r.root != nil {
		if held, err := r.root.Stat(); err == nil && safefs.SameIdentity(held, fi) {
			return nil
		}
		r.root.Close()
		r.root = nil
	}
	root, err := safefs.OpenRoot(r.w.root)
	if err != nil {
		return err
	}
	r.root = root
	return nil
}

func (r *run) closeRoot() {
	if r.root != nil {
		r.root.Close()
		r.root = nil
	}
}

// contained maps a refusal to follow a link to a "gone" error (see errBelowLink).
func contained(err error) error {
	if errors.Is(err, safefs.ErrUnsafe) {
		return fmt.Errorf("%w: %w (%w)", fs.ErrNotExist, errBelowLink, err)
	}
	return err
}

// lstat describes the entry at rel without following a link at any level.
func (r *run) lstat(rel string) (fs.FileInfo, error) {
	if r.root == nil {
		return nil, &os.PathError{Op: "lstat", Path: r.abs(rel), Err: fs.ErrNotExist}
	}
	fi, err := r.root.Lstat(rel)
	return fi, contained(err)
}

// listDir lists the folder at rel: the names not ignored, each with what Lstat says of it.
// Entries that vanish meanwhile are left out.
func (r *run) listDir(rel string) ([]fs.FileInfo, error) {
	if r.root == nil {
		return nil, &os.PathError{Op: "open", Path: r.abs(rel), Err: fs.ErrNotExist}
	}
	d, err := r.root.OpenDir(rel)
	if err != nil {
		return nil, contained(err)
	}
	defer d.Close()
	names, err := d.Names()
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(names))
	for _, name := range names {
		if r.w.ignored(name, joinRel(rel, name)) {
			continue
		}
		fi, err := d.Lstat(name)
		if err != nil {
			continue // gone since the listing; the next look sorts it out
		}
		out = append(out, fi)
	}
	return out, nil
}

// fresh reads a regular file's identity through an open descriptor (see freshStat), opened
// beneath the root.
func (r *run) fresh(rel string) (FileInfo, error) {
	if r.w.freshStat != nil {
		return r.w.freshStat(r.abs(rel))
	}
	if r.root == nil {
		return FileInfo{}, &os.PathError{Op: "open", Path: r.abs(rel), Err: fs.ErrNotExist}
	}
	return freshStatIn(r.root, rel)
}
