package uploader

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// localTarget is a file:// destination: a local or mounted folder, reached
// with the same steps as SFTP so the two behave alike.
type localTarget struct{ base, tempName string }

func (l localTarget) abs(rel string) string { return filepath.Join(l.base, filepath.FromSlash(rel)) }
func (l localTarget) dir(p string) string   { return filepath.Dir(p) }
func (l localTarget) partial(p string) string {
	return filepath.Join(filepath.Dir(p), filepath.FromSlash(tempRel(l.tempName, filepath.Base(p))))
}
func (l localTarget) stat(p string) (fs.FileInfo, error) { return os.Stat(p) }
func (l localTarget) mkdirAll(dir string) error          { return os.MkdirAll(dir, 0o777) }
func (l localTarget) remove(p string) error              { return os.Remove(p) }

func (l localTarget) create(p string) (remoteFile, error) {
	return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
}

func (l localTarget) openPartial(p string) (remoteFile, error) {
	return os.OpenFile(p, os.O_WRONLY, 0)
}

// chunkSize for a local folder: large reads and writes, few system calls.
func (l localTarget) chunkSize() int { return 1 << 20 }

// rename replaces atomically on POSIX filesystems. Without replace it
// links the new name first, which fails when the name is taken, so nothing
// that appeared there since Upload looked is ever overwritten.
func (l localTarget) rename(from, to string, replace bool) (string, error) {
	if replace {
		return "rename(2)", os.Rename(from, to)
	}
	if err := os.Link(from, to); err != nil {
		if errors.Is(err, fs.ErrExist) {
			if sameFile(from, to) {
				// Linked already: an NFS client that resent the LINK whose answer was lost
				// (or an earlier attempt that stopped between the two calls) hears EEXIST
				// for its own link. The file is in place; the partial name goes.
				return "link(2)", removeGone(from)
			}
			return "link(2)", err
		}
		// A filesystem without hard links: look, then rename.
		if _, serr := os.Lstat(to); serr == nil {
			return "rename(2)", fs.ErrExist
		}
		return "rename(2)", os.Rename(from, to)
	}
	return "link(2)", removeGone(from)
}

// sameFile says whether a and b name one file (a hard link of the other).
func sameFile(a, b string) bool {
	fa, errA := os.Lstat(a)
	fb, errB := os.Lstat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}

// removeGone removes p; p already gone is done too (an NFS client that resent the REMOVE
// whose answer was lost hears ENOENT for its own removal).
func removeGone(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// freeSpace is unknown here: a local write reports ENOSPC itself.
func (l localTarget) freeSpace(string) (int64, bool) { return 0, false }

// remoteSum hashes the delivered copy by reading it back: for a mounted share
// that is the only way to ask "what did the other side store".
func (l localTarget) remoteSum(_ context.Context, p, kind string, _ int64) (string, error) {
	f, err := os.Open(p)
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
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

func (l localTarget) readRange(p string, off int64, n int) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRangeFrom(f, off, n)
}
