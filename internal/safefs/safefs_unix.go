//go:build unix

package safefs

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Root is an open folder that every path is resolved beneath. It is safe for concurrent use;
// Close it when done.
type Root struct {
	path string
	dir  *os.File
	fd   int
}

// OpenRoot opens the folder at path (which the administrator configured: links in it are
// followed once, here, and never again below it).
func OpenRoot(p string) (*Root, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	fd, err := dirOpen(abs, func(flags int) (int, error) { return unix.Open(abs, flags|unix.O_DIRECTORY|unix.O_CLOEXEC, 0) })
	if err != nil {
		return nil, &os.PathError{Op: "open folder", Path: abs, Err: err}
	}
	return &Root{path: abs, dir: os.NewFile(uintptr(fd), abs), fd: fd}, nil
}

// dirOpen opens a folder with open(O_RDONLY | what it adds), or, where reading it is not
// allowed, only to act beneath it (searchOnly): a folder hotdrop may enter and write into but
// not list (an ingest drop box of mode 0733, a home folder of 0711) is as good a root or
// step as any. Listing it still fails as it should: Names opens it again to read. What
// opened is checked to be a folder (a link opened as itself is not).
func dirOpen(p string, open func(flags int) (int, error)) (int, error) {
	fd, err := open(unix.O_RDONLY)
	if err != unix.EACCES || searchOnly == 0 {
		return fd, err
	}
	fd, err = open(searchOnly)
	if err != nil {
		return -1, unix.EACCES // the first refusal is the one to say
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		unix.Close(fd)
		return -1, unix.ENOTDIR
	}
	return fd, nil
}

// Path returns the root's absolute path.
func (r *Root) Path() string { return r.path }

// Close releases the root's descriptor.
func (r *Root) Close() error { return r.dir.Close() }

// Stat describes the root folder that was opened (which may no longer be at Path).
func (r *Root) Stat() (fs.FileInfo, error) { return r.dir.Stat() }

func (r *Root) abs(rel string) string {
	if rel == "." || rel == "" {
		return r.path
	}
	if cleanRel(rel) {
		// What Join gives, without its Clean: every probe of a file judged names its path
		// (its error, when the sidecar is not there), 5% of judging 20,000 frames.
		if r.path == "/" {
			return "/" + rel
		}
		return r.path + "/" + rel
	}
	return filepath.Join(r.path, filepath.FromSlash(rel))
}

// Open opens the regular file at rel for reading, refusing a link at any level, a path that
// leaves the root and anything but a regular file (checked on the opened descriptor). It
// never blocks on a FIFO.
func (r *Root) Open(rel string) (*os.File, error) {
	parts, err := split(rel)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, notRegular(r.path, fs.ModeDir)
	}
	fd, err := r.openBeneath(rel, parts, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	return regularFile(fd, r.abs(rel))
}

func regularFile(fd int, abs string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: abs, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, notRegular(abs, modeOf(&st))
	}
	return os.NewFile(uintptr(fd), abs), nil
}

// OpenDir opens the folder at rel ("." for the root itself) for operations on its entries.
func (r *Root) OpenDir(rel string) (*Dir, error) {
	parts, err := split(rel)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		rel = "."
	}
	fd, err := r.openBeneath(rel, parts, unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &Dir{f: os.NewFile(uintptr(fd), r.abs(rel)), fd: fd, path: r.abs(rel)}, nil
}

// IsDir reports whether rel is a folder below the root with only folders on the way: no
// level is a link or anything else. It opens nothing (a stat per level through the root's
// descriptor, each level checked before the next is resolved through it), so a restart with
// 10,000 drop folders does not open and close each one. false means only "not known to be":
// MkdirAll then makes it or says what is wrong.
func (r *Root) IsDir(rel string) bool {
	parts, err := split(rel)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	end := 0
	for _, p := range parts {
		end += len(p)
		if err := fstatat(r.fd, rel[:end], &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false
		}
		end++ // the slash
	}
	return true
}

// openBeneath resolves rel below the root with flags|O_NOFOLLOW|O_CLOEXEC: with openat2 where
// the kernel has it, else one component at a time.
func (r *Root) openBeneath(rel string, parts []string, flags int) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if len(parts) == 0 {
		fd, err := openAt(r.fd, ".", flags, openatRetry)
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: r.path, Err: err}
		}
		return fd, nil
	}
	noOpenat2 := false
	fd, err := openAt(r.fd, rel, flags, func(dirfd int, name string, f int) (int, error) {
		fd, ok, err := openat2(dirfd, name, f)
		noOpenat2 = !ok
		return fd, err
	})
	if !noOpenat2 {
		if err != nil {
			return -1, pathErr(r.abs(rel), err)
		}
		return fd, nil
	}
	cur := r.fd
	closeCur := func() {
		if cur != r.fd {
			unix.Close(cur)
		}
	}
	for i, p := range parts {
		f := unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
		if i == len(parts)-1 {
			f = flags
		}
		fd, err := openAt(cur, p, f, openatRetry)
		closeCur()
		if err != nil {
			return -1, pathErr(r.abs(path.Join(parts[:i+1]...)), err)
		}
		cur = fd
	}
	return cur, nil
}

// openAt opens name beneath dirfd with open and flags; a folder (O_DIRECTORY) as dirOpen does.
func openAt(dirfd int, name string, flags int, open func(dirfd int, name string, flags int) (int, error)) (int, error) {
	if flags&unix.O_DIRECTORY == 0 {
		return open(dirfd, name, flags)
	}
	return dirOpen(name, func(f int) (int, error) { return open(dirfd, name, flags|f) })
}

func openatRetry(dirfd int, name string, flags int) (int, error) {
	return openatMode(dirfd, name, flags, 0)
}

func openatMode(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// pathErr turns the errno of a refused resolution into an UnsafeError and anything else into
// an *os.PathError (so errors.Is(err, fs.ErrNotExist) keeps working).
func pathErr(abs string, err error) error {
	switch err {
	case unix.ELOOP, unix.EMLINK: // EMLINK: O_NOFOLLOW on a link, on the BSDs
		return &UnsafeError{Path: abs, Reason: Refusal("is a symbolic link, or has one on its path")}
	case unix.EXDEV:
		return &UnsafeError{Path: abs, Reason: Refusal("leads outside the watched folder")}
	case unix.ENOTDIR:
		return &UnsafeError{Path: abs, Reason: Refusal("has a symbolic link, or something else that is not a folder, where a folder should be")}
	}
	return &os.PathError{Op: "open", Path: abs, Err: err}
}

// Dir is an open folder below a Root. Operations on its entries act through its descriptor,
// so renaming or replacing any folder above it changes nothing about where they act.
type Dir struct {
	f    *os.File
	fd   int
	path string
}

// Path returns the folder's absolute path as it was opened.
func (d *Dir) Path() string { return d.path }

// Close releases the folder's descriptor.
func (d *Dir) Close() error { return d.f.Close() }

// Stat describes the folder itself, through its descriptor.
func (d *Dir) Stat() (fs.FileInfo, error) { return d.f.Stat() }

// Chmod sets the folder's mode (setgid and sticky included) through its descriptor.
func (d *Dir) Chmod(mode fs.FileMode) error { return d.f.Chmod(mode) }

// Chown sets the folder's owner and group through its descriptor (-1 leaves one alone).
func (d *Dir) Chown(uid, gid int) error { return d.f.Chown(uid, gid) }

// Lstat describes the entry name without following it.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := fstatat(d.fd, name, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: d.join(name), Err: err}
	}
	return &fileStat{name: name, st: st}, nil
}

// Names lists the names in the folder, in no particular order.
func (d *Dir) Names() ([]string, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.Readdirnames(-1)
}

// Open opens the regular file name in this folder for reading (see Root.Open).
func (d *Dir) Open(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := openatRetry(d.fd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return nil, pathErr(d.join(name), err)
	}
	return regularFile(fd, d.join(name))
}

// OpenDir opens the folder name in this folder, refusing a link.
func (d *Dir) OpenDir(name string) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := openAt(d.fd, name, unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, openatRetry)
	if err != nil {
		return nil, pathErr(d.join(name), err)
	}
	return &Dir{f: os.NewFile(uintptr(fd), d.join(name)), fd: fd, path: d.join(name)}, nil
}

// Mkdir makes the folder name (mode perm as the umask lets it; set the exact mode through the
// returned Dir) unless it exists, and opens it. created says whether it was made here.
func (d *Dir) Mkdir(name string, perm fs.FileMode) (sub *Dir, created bool, err error) {
	if err := checkName(name); err != nil {
		return nil, false, err
	}
	err = unix.Mkdirat(d.fd, name, uint32(perm.Perm()))
	switch {
	case err == nil:
		created = true
	case err == unix.EEXIST:
	default:
		return nil, false, &os.PathError{Op: "mkdir", Path: d.join(name), Err: err}
	}
	sub, err = d.OpenDir(name)
	return sub, created, err
}

// Remove deletes the entry name after check has accepted what is there now (nil: anything
// but a folder). The check and the unlink both act through this folder's descriptor.
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
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "remove", Path: d.join(name), Err: err}
	}
	return nil
}

// Rename moves the entry name to toName in folder to, after check has accepted what is there
// now. An existing toName is never replaced.
func (d *Dir) Rename(name string, to *Dir, toName string, check func(fs.FileInfo) error) error {
	if _, err := d.checked(name, toName, check); err != nil {
		return err
	}
	if err := renameNoReplace(d.fd, name, to.fd, toName); err != nil {
		return &os.LinkError{Op: "rename", Old: d.join(name), New: to.join(toName), Err: err}
	}
	return nil
}

// Create makes the file name in this folder and opens it for writing (mode perm as the umask
// lets it). It is exclusive: an entry already there, a symbolic link included, is left alone
// and reported as fs.ErrExist, so nothing is ever written through a link planted at name.
func (d *Dir) Create(name string, perm fs.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := openatMode(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: d.join(name), Err: err}
	}
	return os.NewFile(uintptr(fd), d.join(name)), nil
}

// OpenWrite opens the existing regular file name in this folder for writing, refusing a link
// and anything but a regular file (checked on the opened descriptor; a FIFO never blocks it).
func (d *Dir) OpenWrite(name string) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := openatRetry(d.fd, name, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return nil, pathErr(d.join(name), err)
	}
	// O_NONBLOCK was for the open alone (a FIFO swapped in); a share's client may honour it
	// on writes, so the descriptor goes back to blocking before anything is written.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: d.join(name), Err: err}
	}
	return regularFile(fd, d.join(name))
}

// Link gives the entry name in this folder a further name, toName in folder to, after check
// has accepted what is there now. An existing toName is never replaced (fs.ErrExist). A
// link at name would be linked as itself, never followed; if name is swapped between the
// check and the link, the new name is taken back and the swap refused.
func (d *Dir) Link(name string, to *Dir, toName string, check func(fs.FileInfo) error) error {
	fi, err := d.checked(name, toName, check)
	if err != nil {
		return err
	}
	if err := unix.Linkat(d.fd, name, to.fd, toName, 0); err != nil {
		return &os.LinkError{Op: "link", Old: d.join(name), New: to.join(toName), Err: err}
	}
	return to.landed(fi, toName, d.join(name))
}

// RenameOver moves the entry name to toName in folder to, after check has accepted what is
// there now, replacing whatever toName is (a link there is replaced, never followed). If
// name is swapped between the check and the rename, what landed at toName is removed and
// the swap refused.
func (d *Dir) RenameOver(name string, to *Dir, toName string, check func(fs.FileInfo) error) error {
	fi, err := d.checked(name, toName, check)
	if err != nil {
		return err
	}
	if err := unix.Renameat(d.fd, name, to.fd, toName); err != nil {
		return &os.LinkError{Op: "rename", Old: d.join(name), New: to.join(toName), Err: err}
	}
	return to.landed(fi, toName, d.join(name))
}

func (d *Dir) unlink(name string) error { return unix.Unlinkat(d.fd, name, 0) }

// WriteFile replaces the file name with data atomically: a new temporary file in this folder
// (created exclusively, never through a link), then a rename over name. A link at name is
// replaced, never followed.
func (d *Dir) WriteFile(name string, data []byte, perm fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	var fd int
	var tmp string
	for range 10 {
		tmp = tempName(name, randomSuffix())
		var err error
		fd, err = openatRetry(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC)
		if err == nil {
			break
		}
		if err != unix.EEXIST {
			return &os.PathError{Op: "create", Path: d.join(tmp), Err: err}
		}
		fd = -1
	}
	if fd < 0 {
		return fmt.Errorf("writing %s: no free temporary name", d.join(name))
	}
	f := os.NewFile(uintptr(fd), d.join(tmp))
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(perm)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
			werr = &os.LinkError{Op: "rename", Old: d.join(tmp), New: d.join(name), Err: err}
		}
	}
	if werr != nil {
		_ = unix.Unlinkat(d.fd, tmp, 0)
		return werr
	}
	return nil
}

func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || containsSlash(name) {
		return fmt.Errorf("%q: %w: not a single name", name, ErrUnsafe)
	}
	return nil
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return true
		}
	}
	return false
}

func fstatat(fd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(fd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			return err
		}
	}
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fileStat is an fs.FileInfo made from an fstatat.
type fileStat struct {
	name string
	st   unix.Stat_t
}

func (f *fileStat) Name() string       { return f.name }
func (f *fileStat) Size() int64        { return f.st.Size }
func (f *fileStat) Mode() fs.FileMode  { return modeOf(&f.st) }
func (f *fileStat) ModTime() time.Time { return time.Unix(statMtime(&f.st)) }
func (f *fileStat) IsDir() bool        { return f.Mode().IsDir() }
func (f *fileStat) Sys() any           { return &f.st }

func modeOf(st *unix.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func identity(fi fs.FileInfo) (dev, ino uint64, ok bool) {
	if fi == nil {
		return 0, 0, false
	}
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t:
		return uint64(st.Dev), uint64(st.Ino), true
	case *unix.Stat_t:
		return uint64(st.Dev), uint64(st.Ino), true
	}
	return 0, 0, false
}
