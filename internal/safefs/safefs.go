package safefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrUnsafe is wrapped by every refusal to follow a link, to open something that is not a
// regular file (or, on the way, not a folder), or to leave the root. Check with errors.Is.
var ErrUnsafe = errors.New("unsafe path")

// UnsafeError says which path was refused and why, as a sentence for a person.
type UnsafeError struct {
	Path   string // absolute
	Reason string // a sentence made by Refusal: "is a symbolic link, or has one on its path; hotdrop never…"
}

func (e *UnsafeError) Error() string {
	return e.Path + ": " + e.Reason
}

// Is makes errors.Is(err, ErrUnsafe) true.
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }

// ErrChanged is wrapped when the name at a path is no longer the file the caller checked: a
// delete or move through a Dir is refused then.
var ErrChanged = errors.New("file changed")

// Rel turns an absolute path below root into the slash-separated relative path the Root
// methods take. A path outside root (or root itself) is refused with ErrUnsafe.
func Rel(root, abs string) (string, error) {
	// The usual case, cheaply: a clean root and a clean path below it, as the callers build
	// them (a judged frame costs nine of these; filepath.Rel cleaned both each time).
	if filepath.Separator == '/' && len(abs) > len(root)+1 && abs[len(root)] == '/' && strings.HasPrefix(abs, root) &&
		cleanAbs(root) && cleanRel(abs[len(root)+1:]) {
		return abs[len(root)+1:], nil
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", &UnsafeError{Path: abs, Reason: OutsideRefusal(root)}
	}
	return filepath.ToSlash(rel), nil
}

// cleanAbs reports whether p is an absolute slash path filepath.Clean leaves as it is.
func cleanAbs(p string) bool {
	return p == "/" || len(p) > 1 && p[0] == '/' && cleanRel(p[1:])
}

// cleanRel reports whether p is a relative slash path of plain components: none empty, "."
// or "..".
func cleanRel(p string) bool {
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		switch c := p[start:i]; c {
		case "", ".", "..":
			return false
		}
		start = i + 1
	}
	return true
}

// split checks a slash-separated relative path and returns its components. "." is the root
// itself (no components). Empty, "." and ".." components, absolute paths and, on Windows,
// backslashes (a separator there) are refused: nothing here ever walks upwards.
func split(rel string) ([]string, error) {
	if rel == "." || rel == "" {
		return nil, nil
	}
	if strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) || (filepath.Separator == '\\' && strings.Contains(rel, "\\")) {
		return nil, fmt.Errorf("%q: %w: not a plain relative path", rel, ErrUnsafe)
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if p == "" || p == "." || p == ".." {
			return nil, fmt.Errorf("%q: %w: not a plain relative path", rel, ErrUnsafe)
		}
	}
	return parts, nil
}

// SameIdentity reports whether a and b are the same file as device and inode tell (false when
// the platform reports neither).
func SameIdentity(a, b fs.FileInfo) bool {
	da, ia, ok1 := identity(a)
	db, ib, ok2 := identity(b)
	if ok1 && ok2 {
		return da == db && ia == ib
	}
	return a != nil && b != nil && os.SameFile(a, b)
}

// Identity returns the file's device and inode numbers; ok is false where the platform
// reports neither. It reads both what os.Lstat and what this package's Lstat return.
func Identity(fi fs.FileInfo) (dev, ino uint64, ok bool) { return identity(fi) }

// Inode returns the file's inode number (0 where the platform has none).
func Inode(fi fs.FileInfo) uint64 {
	_, ino, _ := identity(fi)
	return ino
}

// Device returns the device number of the filesystem holding the file (0 where unknown).
func Device(fi fs.FileInfo) uint64 {
	dev, _, _ := identity(fi)
	return dev
}

func notRegular(abs string, m fs.FileMode) error {
	return &UnsafeError{Path: abs, Reason: TypeRefusal(m)}
}

// never is why hotdrop goes no further, said the same way in every refusal.
const never = "hotdrop never follows links and opens only regular files"

// Refusal is the one sentence for a path hotdrop will not open or follow, after the path:
// what is wrong with it ("is a symbolic link"), then why hotdrop goes no further. The
// watcher's unsafe_path holds, the engine's and the uploader's opens, explain and send all
// word their refusals with it.
func Refusal(what string) string { return what + "; " + never }

// TypeRefusal is the Refusal for an entry of mode m that is not a regular file.
func TypeRefusal(m fs.FileMode) string {
	what := "is not a regular file (" + m.Type().String() + ")"
	switch {
	case m&fs.ModeSymlink != 0:
		what = "is a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		what = "is a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "is a socket"
	case m&fs.ModeDevice != 0:
		what = "is a device file"
	case m.IsDir():
		what = "is a folder"
	}
	return Refusal(what)
}

// ReadFailure is the one sentence for a source file that could not be opened, looked at or
// read: its path, the system's own words, and whose trouble it is. The engine's opener and
// the uploader's reads both word such failures with it, so a status file reads the same
// whichever of them met the NFS hiccup.
func ReadFailure(p string, err error) string {
	return fmt.Sprintf("cannot read local file %s (%s): the source failed, not the destination", p, SystemWords(err))
}

// SystemWords is what the operating system said in err: the errno's text when there is one
// ("input/output error", "stale file handle"), else err's own.
func SystemWords(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// OutsideRefusal is the sentence, after the path, for a path that is not below root.
func OutsideRefusal(root string) string {
	return "is not inside " + root + ", the folder hotdrop works beneath; hotdrop never reaches outside it"
}

// OpenUnder opens the regular file at the absolute path abs beneath the folder base, as
// Root.Open does, for callers that read a file now and then and hold no Root. An empty base
// means abs's own folder (only the last element is then guarded).
func OpenUnder(base, abs string) (*os.File, error) {
	r, rel, err := rootUnder(base, abs)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Open(rel)
}

// Under opens and describes entries beneath one base, as OpenUnder and LstatUnder do, but
// opens base once for all of them: a matcher's look at one file probes up to ten sidecar,
// checksum and marker names, and opening the root for each was half its syscalls (issue 11).
// The base is resolved when first used and held until Close; what is opened beneath it is
// resolved from that handle, so a base swapped for a link meanwhile changes nothing. With
// an empty base every path is opened beneath its own folder, as OpenUnder does. An Under is
// for one goroutine.
type Under struct {
	base string
	r    *Root
	err  error
}

// NewUnder returns an Under for base; nothing is opened yet.
func NewUnder(base string) *Under { return &Under{base: base} }

// Base is the folder u opens beneath ("": each path's own folder).
func (u *Under) Base() string { return u.base }

// Failed reports whether opening the base failed: every call after that fails the same way.
func (u *Under) Failed() bool { return u.err != nil }

func (u *Under) root(abs string) (*Root, string, func(), error) {
	if u.base == "" {
		r, rel, err := rootUnder("", abs)
		if err != nil {
			return nil, "", nil, err
		}
		return r, rel, func() { r.Close() }, nil
	}
	if u.r == nil && u.err == nil {
		u.r, u.err = OpenRoot(u.base)
	}
	if u.err != nil {
		return nil, "", nil, u.err
	}
	rel, err := Rel(u.r.Path(), abs)
	if err != nil {
		return nil, "", nil, err
	}
	return u.r, rel, func() {}, nil
}

// Open is OpenUnder(base, abs).
func (u *Under) Open(abs string) (*os.File, error) {
	r, rel, done, err := u.root(abs)
	if err != nil {
		return nil, err
	}
	defer done()
	return r.Open(rel)
}

// Lstat is LstatUnder(base, abs).
func (u *Under) Lstat(abs string) (fs.FileInfo, error) {
	r, rel, done, err := u.root(abs)
	if err != nil {
		return nil, err
	}
	defer done()
	return r.Lstat(rel)
}

// Close releases the base.
func (u *Under) Close() {
	if u.r != nil {
		u.r.Close()
		u.r = nil
	}
}

// LstatUnder describes the entry at abs beneath base without following a link at any level
// (see OpenUnder for base).
func LstatUnder(base, abs string) (fs.FileInfo, error) {
	r, rel, err := rootUnder(base, abs)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Lstat(rel)
}

// rootUnder opens base (abs's own folder when empty) and gives abs relative to it.
func rootUnder(base, abs string) (*Root, string, error) {
	if base == "" {
		base = filepath.Dir(abs)
	}
	r, err := OpenRoot(base)
	if err != nil {
		return nil, "", err
	}
	rel, err := Rel(r.Path(), abs)
	if err != nil {
		r.Close()
		return nil, "", err
	}
	return r, rel, nil
}

// tempName is the temporary name WriteFile writes name under: hidden, and starting with name
// itself when that is hidden already (.hotdrop-status.json.tmp-…), so whatever ignores name's
// kind of file ignores its temporary too.
func tempName(name, suffix string) string {
	if strings.HasPrefix(name, ".") {
		return name + ".tmp-" + suffix
	}
	return "." + name + ".tmp-" + suffix
}

// Lstat describes the entry at rel without following it; the folders on the way are resolved
// as Open resolves them.
func (r *Root) Lstat(rel string) (fs.FileInfo, error) {
	if _, err := split(rel); err != nil {
		return nil, err
	}
	d, err := r.OpenDir(path.Dir(rel))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Lstat(path.Base(rel))
}

// MkdirAll makes the folders of rel that are missing, one component at a time and never
// through a link; made is called with each folder it created (to set its mode and group
// through the descriptor), and the innermost folder is returned open.
func (r *Root) MkdirAll(rel string, perm fs.FileMode, made func(*Dir) error) (*Dir, error) {
	parts, err := split(rel)
	if err != nil {
		return nil, err
	}
	cur, err := r.OpenDir(".")
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		next, created, err := cur.Mkdir(p, perm)
		cur.Close()
		if err != nil {
			return nil, err
		}
		if created && made != nil {
			if err := made(next); err != nil {
				next.Close()
				return nil, err
			}
		}
		cur = next
	}
	return cur, nil
}

// ReadDir lists the folder's entries, each described as Lstat describes it. Entries that
// vanish while it lists are left out.
func (d *Dir) ReadDir() ([]fs.FileInfo, error) {
	names, err := d.Names()
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(names))
	for _, n := range names {
		fi, err := d.Lstat(n)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		out = append(out, fi)
	}
	return out, nil
}

// checked describes name for a link or rename to toName and lets check refuse it.
func (d *Dir) checked(name, toName string, check func(fs.FileInfo) error) (fs.FileInfo, error) {
	if err := checkName(toName); err != nil {
		return nil, err
	}
	fi, err := d.Lstat(name)
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(fi); err != nil {
			return nil, err
		}
	}
	return fi, nil
}

// landed checks that toName, just linked or renamed from, is the kind of entry check
// accepted as fi (a regular file is still one, not a link swapped in); if not, it removes
// toName and refuses. The kind, not the inode: an SMB mount without server inode numbers
// gives a new hard link a number of its own.
func (d *Dir) landed(fi fs.FileInfo, toName, from string) error {
	now, err := d.Lstat(toName)
	if errors.Is(err, fs.ErrNotExist) {
		// Taken away already (an ingest that moves each file the moment it lands): it
		// landed, and nothing swapped in is left there to take back.
		return nil
	}
	if err != nil {
		return err
	}
	if now.Mode().Type() == fi.Mode().Type() {
		return nil
	}
	_ = d.unlink(toName)
	return &UnsafeError{Path: from, Reason: Refusal("was replaced while it was being moved")}
}
