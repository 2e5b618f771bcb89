package uploader

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// localTarget is a file:// destination: a local or mounted folder, reached
// with the same steps as SFTP so the two behave alike. Others may write into
// that folder too (an NFS or SMB share the ingest side also writes), so every
// step goes through root, the URL's folder opened for one lease: nothing below
// it is reached through a symbolic link. A link planted at a folder of the
// remote path, at a partial's name or in place of a partial is refused
// (remote_error, in safefs.Refusal's words), never followed, and left for a
// person to look at; a link at the final name is, as any file there,
// remote_exists, or replaced itself (never its target) when Replace allows.
type localTarget struct {
	root     *safefs.Root
	tempName string
}

// openLocalTarget opens the destination folder base, which must exist: a missing share is
// reported here, not made anew beneath its mount point.
func openLocalTarget(base, tempName string) (localTarget, error) {
	r, err := safefs.OpenRoot(base)
	if err != nil {
		return localTarget{}, baseProblem(base, nil, err)
	}
	return localTarget{root: r, tempName: tempName}, nil
}

func (l localTarget) close() { l.root.Close() }

func (l localTarget) abs(rel string) string {
	return filepath.Join(l.root.Path(), filepath.FromSlash(rel))
}
func (l localTarget) dir(p string) string { return filepath.Dir(p) }
func (l localTarget) partial(p string) string {
	return filepath.Join(filepath.Dir(p), filepath.FromSlash(tempRel(l.tempName, filepath.Base(p))))
}

// rel is p relative to the root, "." for the root itself.
func (l localTarget) rel(p string) (string, error) {
	if p == l.root.Path() {
		return ".", nil
	}
	return safefs.Rel(l.root.Path(), p)
}

// parent opens p's folder beneath the root and gives p's name in it.
func (l localTarget) parent(p string) (*safefs.Dir, string, error) {
	rel, err := safefs.Rel(l.root.Path(), p)
	if err != nil {
		return nil, "", err
	}
	d, err := l.root.OpenDir(path.Dir(rel))
	if err != nil {
		return nil, "", err
	}
	return d, path.Base(rel), nil
}

// stat describes p without following it: a link shows as a link.
func (l localTarget) stat(p string) (fs.FileInfo, error) {
	rel, err := l.rel(p)
	if err != nil {
		return nil, err
	}
	if rel == "." {
		return l.root.Stat()
	}
	return l.root.Lstat(rel)
}

func (l localTarget) mkdirAll(dir string) error {
	rel, err := l.rel(dir)
	if err != nil {
		return err
	}
	d, err := l.root.MkdirAll(rel, 0o777, nil)
	if err != nil {
		return err
	}
	return d.Close()
}

// remove unlinks the name p; a link there goes itself, its target never.
func (l localTarget) remove(p string) error {
	d, name, err := l.parent(p)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Remove(name, nil)
}

// create makes p anew. A file left at that name by an earlier attempt loses its name, not
// its bytes (O_TRUNC would cut whatever else a hard link of it names too), and a new file is
// made exclusively in its place, never through a link. A link or anything else that is not
// a regular file there is refused and left alone: hotdrop never writes one, so someone else
// planted it, and a person should know.
func (l localTarget) create(p string) (remoteFile, error) {
	d, name, err := l.parent(p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	for try := 0; ; try++ {
		f, err := d.Create(name, 0o666)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) || try == 2 {
			return nil, err
		}
		if err := d.Remove(name, regularOnly(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
}

// openPartial opens the existing partial p for a resume, never through a link.
func (l localTarget) openPartial(p string) (remoteFile, error) {
	d, name, err := l.parent(p)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	f, err := d.OpenWrite(name)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// regularOnly refuses, as the check of a safefs.Dir step on p, anything but a regular file.
func regularOnly(p string) func(fs.FileInfo) error {
	return func(fi fs.FileInfo) error {
		if !fi.Mode().IsRegular() {
			return &safefs.UnsafeError{Path: p, Reason: safefs.TypeRefusal(fi.Mode())}
		}
		return nil
	}
}

// chunkSize for a local folder: large reads and writes, few system calls.
func (l localTarget) chunkSize() int { return 1 << 20 }

// rename replaces atomically on POSIX filesystems. Without replace it
// links the new name first, which fails when the name is taken, so nothing
// that appeared there since Upload looked is ever overwritten. Only a regular
// file is moved: a link planted in the partial's place is refused.
func (l localTarget) rename(from, to string, replace bool) (string, error) {
	fd, fname, err := l.parent(from)
	if err != nil {
		return "rename(2)", err
	}
	defer fd.Close()
	td, tname, err := l.parent(to)
	if err != nil {
		return "rename(2)", err
	}
	defer td.Close()
	if replace {
		return "rename(2)", fd.RenameOver(fname, td, tname, regularOnly(from))
	}
	err = fd.Link(fname, td, tname, regularOnly(from))
	switch {
	case err == nil:
		return "link(2)", removeGone(fd, fname)
	case errors.Is(err, fs.ErrExist):
		if sameFile(fd, fname, td, tname) {
			// Linked already: an NFS client that resent the LINK whose answer was lost
			// (or an earlier attempt that stopped between the two calls) hears EEXIST
			// for its own link. The file is in place; the partial name goes.
			return "link(2)", removeGone(fd, fname)
		}
		return "link(2)", err
	case errors.Is(err, safefs.ErrUnsafe), errors.Is(err, fs.ErrNotExist):
		return "link(2)", err
	}
	// A filesystem without hard links: a rename that never replaces.
	return "rename(2)", fd.Rename(fname, td, tname, regularOnly(from))
}

// sameFile says whether a in folder ad and b in folder bd name one file (a hard link of
// the other).
func sameFile(ad *safefs.Dir, a string, bd *safefs.Dir, b string) bool {
	fa, errA := ad.Lstat(a)
	fb, errB := bd.Lstat(b)
	return errA == nil && errB == nil && safefs.SameIdentity(fa, fb)
}

// removeGone removes name in d; already gone is done too (an NFS client that resent the
// REMOVE whose answer was lost hears ENOENT for its own removal).
func removeGone(d *safefs.Dir, name string) error {
	if err := d.Remove(name, nil); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// freeSpace is unknown here: a local write reports ENOSPC itself.
func (l localTarget) freeSpace(string) (int64, bool) { return 0, false }

// remoteSum hashes the delivered copy by reading it back: for a mounted share
// that is the only way to ask "what did the other side store".
func (l localTarget) remoteSum(_ context.Context, p, kind string, _ int64) (string, error) {
	f, err := l.open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := newHashes(kind)
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	sha, sum := h.sums()
	if kind == ChecksumSHA256 {
		return sha, nil
	}
	return sum, nil
}

func (l localTarget) readSmall(p string, max int64) ([]byte, error) {
	f, err := l.open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

func (l localTarget) readRange(p string, off int64, n int) ([]byte, error) {
	f, err := l.open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRangeFrom(f, off, n)
}

// open opens the regular file p for reading beneath the root, never through a link.
func (l localTarget) open(p string) (*os.File, error) {
	rel, err := safefs.Rel(l.root.Path(), p)
	if err != nil {
		return nil, err
	}
	return l.root.Open(rel)
}
