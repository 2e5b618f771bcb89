package uploader

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// localTarget is a file:// destination: a local or mounted folder, reached
// with the same steps as SFTP so the two behave alike.
type localTarget struct{ base string }

func (l localTarget) abs(rel string) string { return filepath.Join(l.base, filepath.FromSlash(rel)) }
func (l localTarget) dir(p string) string   { return filepath.Dir(p) }
func (l localTarget) partial(p string) string {
	return filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".partial")
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

// rename replaces atomically on POSIX filesystems; Upload has already
// checked that a file it may not replace is absent.
func (l localTarget) rename(from, to string, _ bool) (string, error) {
	return "rename(2)", os.Rename(from, to)
}

// freeSpace is unknown here: a local write reports ENOSPC itself.
func (l localTarget) freeSpace(string) (int64, bool) { return 0, false }

// remoteSum hashes the delivered copy by reading it back: for a mounted share
// that is the only way to ask "what did the other side store".
func (l localTarget) remoteSum(_ context.Context, p, kind string) (string, error) {
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
