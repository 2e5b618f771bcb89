package delivery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// Every file-system operation on the watched tree goes through safefs, beneath watch.root:
// render-farm users may swap any folder of the tree for a symbolic link between the moment a
// file settles and the moment hotdrop opens, deletes or moves it (issue 10).

// fsRoot returns watch.root, open; it is opened on first use and again when a reload moved it.
// It is called from the loop (and from SetRequests before Run).
func (e *Engine) fsRoot() (*safefs.Root, error) {
	want, err := filepath.Abs(e.opt.Root)
	if err != nil {
		return nil, fmt.Errorf("watch.root %s: %w", e.opt.Root, err)
	}
	if e.root != nil && e.root.Path() == want {
		return e.root, nil
	}
	r, err := safefs.OpenRoot(want)
	if err != nil {
		return nil, fmt.Errorf("watch.root %s cannot be opened: %w", e.opt.Root, err)
	}
	// The old root, if any, may still be read by an upload in flight: its descriptor is
	// released when nothing holds it any more.
	e.root = r
	return r, nil
}

// lstat describes the entry at the absolute path p below watch.root without following a link
// at any level; a link on the way is an error wrapping safefs.ErrUnsafe.
func (e *Engine) lstat(p string) (fs.FileInfo, error) {
	root, err := e.fsRoot()
	if err != nil {
		return nil, err
	}
	rel, err := safefs.Rel(root.Path(), p)
	if err != nil {
		return nil, err
	}
	return root.Lstat(rel)
}

// mkdirAll creates a drop folder and its parents below Root with watch.folder_mode and
// watch.group, so render-farm users can write into folders the service user made. It walks
// down from watch.root one folder at a time and never through a link; modes and the group
// are set on the opened folder, not by path.
func (e *Engine) mkdirAll(rel string) error {
	root, err := e.fsRoot()
	if err != nil {
		return err
	}
	if root.IsDir(rel) {
		// There already, folders all the way (the usual restart): one stat per level, no
		// open. Anything else (missing, a link on the way) takes the checked walk below.
		return nil
	}
	mode := e.opt.FolderMode
	if mode == 0 {
		mode = 0o775 | os.ModeSetgid
	}
	gid := -1
	if e.opt.Group != "" {
		// Looked up once per name: /etc/group read for each of 10,000 drop folders showed.
		// A failure is not kept: the group may be made before the next try.
		if e.gidFor != e.opt.Group {
			if gid, err = lookupGroup(e.opt.Group); err == nil {
				e.gid, e.gidFor = gid, e.opt.Group
			}
		}
		if e.gidFor == e.opt.Group {
			gid = e.gid
		}
		if err != nil {
			return fmt.Errorf("drop folder %s: watch.group %q: %w", filepath.Join(e.opt.Root, filepath.FromSlash(rel)), e.opt.Group, err)
		}
	}
	d, err := root.MkdirAll(rel, 0o700, func(d *safefs.Dir) error {
		// Made 0700 and then set exactly: Mkdir applies the umask and drops setgid on some
		// systems, and no one else can use the folder before its mode is right.
		if err := d.Chmod(mode); err != nil {
			return fmt.Errorf("setting mode of drop folder %s: %w", d.Path(), err)
		}
		if gid >= 0 {
			if err := d.Chown(-1, gid); err != nil {
				return fmt.Errorf("drop folder %s: setting group %s: %w", d.Path(), e.opt.Group, err)
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, safefs.ErrUnsafe) {
			return fmt.Errorf("drop folder %s: %w; remove it so hotdrop can create the folder", filepath.Join(e.opt.Root, filepath.FromSlash(rel)), err)
		}
		return fmt.Errorf("creating drop folder %s: %w", filepath.Join(e.opt.Root, filepath.FromSlash(rel)), err)
	}
	return d.Close()
}

// sourceOpener returns the Job's Open for a file about to be uploaded: it opens the file
// beneath watch.root without following a link at any level, never blocks on a FIFO, and
// accepts the descriptor only when its device, inode, size and mtime are those that settled.
// It runs on upload goroutines and captures everything it needs now.
func (e *Engine) sourceOpener(fsx *fileState) func() (*os.File, error) {
	root, rootErr := e.fsRoot()
	p, name := fsx.rec.Path, fsx.name
	size, mtime, inode, dev := fsx.rec.Size, fsx.rec.ModTime, fsx.rec.Inode, fsx.dev
	return func() (*os.File, error) {
		if rootErr != nil {
			return nil, sourceError(p, rootErr)
		}
		rel, err := safefs.Rel(root.Path(), p)
		if err != nil {
			return nil, unsafeSource(name, err)
		}
		f, err := root.Open(rel)
		switch {
		case err == nil:
		case errors.Is(err, safefs.ErrUnsafe):
			return nil, unsafeSource(name, err)
		case errors.Is(err, fs.ErrNotExist):
			return nil, &TransferError{Code: ReasonChangedDuringUpload, Source: true, Msg: fmt.Sprintf("%s is gone", p), Err: err}
		default:
			return nil, sourceError(p, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, sourceError(p, err)
		}
		if fi.Size() != size || !fi.ModTime().Equal(mtime) || (inode != 0 && safefs.Inode(fi) != inode) || (dev != 0 && safefs.Device(fi) != dev) {
			f.Close()
			return nil, &TransferError{Code: ReasonChangedDuringUpload, Source: true, Msg: fmt.Sprintf(
				"%s is no longer the file that settled (size %d, want %d); nothing of it was sent, and it is settling again", p, fi.Size(), size)}
		}
		return f, nil
	}
}

func unsafeSource(name string, err error) *TransferError {
	return &TransferError{Code: ReasonUnsafePath, Source: true, Msg: fmt.Sprintf("%s was not opened: %v", name, err), Err: err}
}

// sourceError is a failure to open, look at or read the file to send: the source's trouble
// (Source), never the destination's, worded by safefs.ReadFailure with the system's words. A
// source on NFS or SMB can fail for a moment (EIO, ESTALE), so anything but a permission
// problem is retried.
func sourceError(p string, err error) *TransferError {
	if errors.Is(err, fs.ErrPermission) {
		return &TransferError{Code: "permission_denied", Source: true, Msg: safefs.ReadFailure(p, err), Err: err}
	}
	return &TransferError{Code: "transient", Transient: true, Source: true, Msg: safefs.ReadFailure(p, err) + "; will retry", Err: err}
}

// sameAsDelivered accepts the entry about to be moved or deleted only when it is still the
// file that was delivered: same inode, size and mtime (and device, where known).
func sameAsDelivered(fsx *fileState) func(fs.FileInfo) error {
	size, mtime, inode, dev := fsx.rec.Size, fsx.rec.ModTime, fsx.rec.Inode, fsx.dev
	return func(fi fs.FileInfo) error {
		if !fi.Mode().IsRegular() || fi.Size() != size || !fi.ModTime().Equal(mtime) ||
			(inode != 0 && safefs.Inode(fi) != inode) || (dev != 0 && safefs.Device(fi) != dev) {
			return fmt.Errorf("it is no longer the file that was delivered: %w", safefs.ErrChanged)
		}
		return nil
	}
}

// openParent opens the folder holding the absolute path p, beneath watch.root.
func (e *Engine) openParent(p string) (*safefs.Dir, string, error) {
	root, err := e.fsRoot()
	if err != nil {
		return nil, "", err
	}
	rel, err := safefs.Rel(root.Path(), p)
	if err != nil {
		return nil, "", err
	}
	d, err := root.OpenDir(path.Dir(rel))
	if err != nil {
		return nil, "", err
	}
	return d, path.Base(rel), nil
}
