//go:build !unix

package safefs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// Root is an open folder that every path is resolved beneath. Here (no openat with
// O_NOFOLLOW) each level is checked instead: the entry is Lstat'ed, opened through os.Root,
// and the opened folder or file must be the one the Lstat saw.
type Root struct {
	path string
	r    *os.Root
}

// OpenRoot opens the folder at p.
func OpenRoot(p string) (*Root, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	return &Root{path: abs, r: r}, nil
}

// Path returns the root's absolute path.
func (r *Root) Path() string { return r.path }

// Close releases the root.
func (r *Root) Close() error { return r.r.Close() }

// Stat describes the root folder that was opened.
func (r *Root) Stat() (fs.FileInfo, error) { return r.r.Stat(".") }

func (r *Root) top() *Dir { return &Dir{top: r, r: r.r, rel: ".", path: r.path, borrowed: true} }

// Open opens the regular file at rel for reading; see the unix version.
func (r *Root) Open(rel string) (*os.File, error) {
	if _, err := split(rel); err != nil {
		return nil, err
	}
	d, err := r.OpenDir(path.Dir(rel))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Open(path.Base(rel))
}

// IsDir reports whether rel is a folder below the root with only folders on the way (see
// the unix version): each level is Lstat'ed through the os.Root, nothing is opened.
func (r *Root) IsDir(rel string) bool {
	parts, err := split(rel)
	if err != nil {
		return false
	}
	for i := range parts {
		fi, err := r.r.Lstat(path.Join(parts[:i+1]...))
		if err != nil || !fi.IsDir() {
			return false
		}
	}
	return true
}

// OpenDir opens the folder at rel ("." for the root itself).
func (r *Root) OpenDir(rel string) (*Dir, error) {
	parts, err := split(rel)
	if err != nil {
		return nil, err
	}
	cur := r.top()
	for _, p := range parts {
		next, err := cur.OpenDir(p)
		cur.Close()
		if err != nil {
			return nil, err
		}
		cur = next
	}
	if cur.borrowed {
		sub, err := r.r.OpenRoot(".")
		if err != nil {
			return nil, err
		}
		cur = &Dir{top: r, r: sub, rel: ".", path: r.path}
	}
	return cur, nil
}

// Dir is an open folder below a Root.
type Dir struct {
	top      *Root
	r        *os.Root
	rel      string
	path     string
	borrowed bool // r is the Root's own: not closed here
}

// Path returns the folder's absolute path as it was opened.
func (d *Dir) Path() string { return d.path }

// Close releases the folder.
func (d *Dir) Close() error {
	if d.borrowed {
		return nil
	}
	return d.r.Close()
}

// Stat describes the folder itself.
func (d *Dir) Stat() (fs.FileInfo, error) { return d.r.Stat(".") }

// Chmod sets the folder's mode.
func (d *Dir) Chmod(mode fs.FileMode) error { return d.r.Chmod(".", mode) }

// Chown does nothing here: there are no unix owners.
func (d *Dir) Chown(uid, gid int) error { return nil }

// Lstat describes the entry name without following it.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return d.r.Lstat(name)
}

// Names lists the names in the folder, in no particular order.
func (d *Dir) Names() ([]string, error) {
	f, err := d.r.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// Open opens the regular file name in this folder for reading.
func (d *Dir) Open(name string) (*os.File, error) { return d.openRegular(name, os.O_RDONLY) }

// openRegular opens the regular file name with flag, refusing anything else and a file
// replaced between the look and the open.
func (d *Dir) openRegular(name string, flag int) (*os.File, error) {
	li, err := d.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !li.Mode().IsRegular() {
		return nil, notRegular(d.join(name), li.Mode())
	}
	f, err := d.r.OpenFile(name, flag, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || !os.SameFile(li, fi) {
		f.Close()
		return nil, &UnsafeError{Path: d.join(name), Reason: Refusal("was replaced while it was being opened")}
	}
	return f, nil
}

// OpenDir opens the folder name in this folder, refusing a link.
func (d *Dir) OpenDir(name string) (*Dir, error) {
	li, err := d.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !li.IsDir() {
		return nil, &UnsafeError{Path: d.join(name), Reason: Refusal("is a symbolic link or something else that is not a folder")}
	}
	sub, err := d.r.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	fi, err := sub.Stat(".")
	if err != nil || !os.SameFile(li, fi) {
		sub.Close()
		return nil, &UnsafeError{Path: d.join(name), Reason: Refusal("was replaced while it was being opened")}
	}
	return &Dir{top: d.top, r: sub, rel: path.Join(d.rel, name), path: d.join(name)}, nil
}

// Mkdir makes the folder name unless it exists, and opens it.
func (d *Dir) Mkdir(name string, perm fs.FileMode) (*Dir, bool, error) {
	if err := checkName(name); err != nil {
		return nil, false, err
	}
	created := false
	if err := d.r.Mkdir(name, perm.Perm()); err == nil {
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	sub, err := d.OpenDir(name)
	return sub, created, err
}

// Remove deletes the entry name after check has accepted what is there now.
func (d *Dir) Remove(name string, check func(fs.FileInfo) error) error {
	fi, err := d.Lstat(name)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(fi); err != nil {
			return err
		}
	}
	return d.r.Remove(name)
}

// Rename moves the entry name to toName in folder to, after check has accepted it. An
// existing toName is never replaced.
func (d *Dir) Rename(name string, to *Dir, toName string, check func(fs.FileInfo) error) error {
	if _, err := d.checked(name, toName, check); err != nil {
		return err
	}
	if _, err := to.Lstat(toName); err == nil {
		return &os.LinkError{Op: "rename", Old: d.join(name), New: to.join(toName), Err: fs.ErrExist}
	}
	return d.top.r.Rename(path.Join(d.rel, name), path.Join(to.rel, toName))
}

// Create makes the file name in this folder and opens it for writing, exclusively: an entry
// already there, a link included, is left alone and reported as fs.ErrExist.
func (d *Dir) Create(name string, perm fs.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return d.r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm.Perm())
}

// OpenWrite opens the existing regular file name in this folder for writing, refusing a
// link and anything but a regular file (see Open).
func (d *Dir) OpenWrite(name string) (*os.File, error) { return d.openRegular(name, os.O_WRONLY) }

// Link gives the entry name a further name, toName in folder to, after check has accepted
// it. An existing toName is never replaced.
func (d *Dir) Link(name string, to *Dir, toName string, check func(fs.FileInfo) error) error {
	fi, err := d.checked(name, toName, check)
	if err != nil {
		return err
	}
	if err := d.top.r.Link(path.Join(d.rel, name), path.Join(to.rel, toName)); err != nil {
		return err
	}
	return to.landed(fi, toName, d.join(name))
}

// RenameOver moves the entry name to toName in folder to, after check has accepted it,
// replacing whatever toName is.
func (d *Dir) RenameOver(name string, to *Dir, toName string, check func(fs.FileInfo) error) error {
	fi, err := d.checked(name, toName, check)
	if err != nil {
		return err
	}
	if err := d.top.r.Rename(path.Join(d.rel, name), path.Join(to.rel, toName)); err != nil {
		return err
	}
	return to.landed(fi, toName, d.join(name))
}

func (d *Dir) unlink(name string) error { return d.r.Remove(name) }

// WriteFile replaces the file name with data atomically (temporary file, then rename).
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := tempName(name, hex.EncodeToString(b[:]))
	f, err := d.r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = d.r.Rename(tmp, name)
	}
	if werr != nil {
		_ = d.r.Remove(tmp)
		return fmt.Errorf("writing %s: %w", d.join(name), werr)
	}
	return nil
}

func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("%q: %w: not a single name", name, ErrUnsafe)
	}
	return nil
}

func identity(fs.FileInfo) (dev, ino uint64, ok bool) { return 0, 0, false }
