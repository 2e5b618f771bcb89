//go:build unix

package safefs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree makes root/a/b/file and, outside the root, victim/b/file with other bytes.
func tree(t *testing.T) (root, victim string) {
	t.Helper()
	base := t.TempDir()
	root, victim = filepath.Join(base, "root"), filepath.Join(base, "victim")
	for _, d := range []string{filepath.Join(root, "a", "b"), filepath.Join(victim, "b"), filepath.Join(root, "other", "b")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(root, "a", "b", "file"), "ours")
	write(t, filepath.Join(victim, "b", "file"), "secret")
	write(t, filepath.Join(root, "other", "b", "file"), "another request's")
	return root, victim
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openRoot(t *testing.T, p string) *Root {
	t.Helper()
	r, err := OpenRoot(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// swap replaces root/a with a link to target.
func swap(t *testing.T, root, target string) {
	t.Helper()
	if err := os.Rename(filepath.Join(root, "a"), filepath.Join(root, "a.away")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesALinkAtAnyLevel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target func(root, victim string) string
	}{
		{"outside the root", func(_, victim string) string { return victim }},
		{"inside the root", func(root, _ string) string { return filepath.Join(root, "other") }},
		{"relative inside", func(_, _ string) string { return "other" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, victim := tree(t)
			r := openRoot(t, root)
			f, err := r.Open("a/b/file")
			if err != nil {
				t.Fatalf("Open before the swap: %v", err)
			}
			f.Close()
			swap(t, root, tc.target(root, victim))
			f, err = r.Open("a/b/file")
			if err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				t.Fatalf("Open(a/b/file) through a link read %q, want an ErrUnsafe error", b)
			}
			if !errors.Is(err, ErrUnsafe) {
				t.Fatalf("Open(a/b/file) = %v, want ErrUnsafe", err)
			}
			if _, err := r.OpenDir("a/b"); !errors.Is(err, ErrUnsafe) {
				t.Fatalf("OpenDir(a/b) = %v, want ErrUnsafe", err)
			}
			if _, err := r.Lstat("a/b/file"); !errors.Is(err, ErrUnsafe) {
				t.Fatalf("Lstat(a/b/file) = %v, want ErrUnsafe", err)
			}
		})
	}
}

func TestOpenRefusesLinksFIFOsAndFolders(t *testing.T) {
	root, _ := tree(t)
	r := openRoot(t, root)
	if err := syscall.Mkfifo(filepath.Join(root, "a", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b/file", filepath.Join(root, "a", "link")); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"a/fifo", "a/link", "a/b", "a/../a/b/file", "/a/b/file"} {
		// A FIFO with no writer would block a plain open forever: this returning at all is
		// half the test.
		f, err := r.Open(rel)
		if err == nil {
			f.Close()
			t.Fatalf("Open(%q) succeeded, want ErrUnsafe", rel)
		}
		if !errors.Is(err, ErrUnsafe) {
			t.Errorf("Open(%q) = %v, want ErrUnsafe", rel, err)
		}
	}
	if _, err := r.Open("a/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(a/missing) = %v, want fs.ErrNotExist", err)
	}
}

func TestDirActsWhereItWasOpened(t *testing.T) {
	root, victim := tree(t)
	r := openRoot(t, root)
	d, err := r.OpenDir("a/b")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	want, err := d.Lstat("file")
	if err != nil {
		t.Fatal(err)
	}
	swap(t, root, victim)
	if err := d.WriteFile("status.json", []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(victim, "b", "status.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("status file written through the link into the victim folder (%v)", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "a.away", "b", "status.json")); err != nil {
		t.Fatalf("status file not in the folder that was opened: %v", err)
	}
	same := func(fi fs.FileInfo) error {
		if !SameIdentity(fi, want) {
			return ErrChanged
		}
		return nil
	}
	// A file put in its place (the old one kept alive, so its inode is not reused) is not
	// the file that was checked.
	own := filepath.Join(root, "a.away", "b")
	if err := os.Link(filepath.Join(own, "file"), filepath.Join(own, "kept")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(own, "file.new"), "new one")
	if err := os.Rename(filepath.Join(own, "file.new"), filepath.Join(own, "file")); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("file", same); !errors.Is(err, ErrChanged) {
		t.Fatalf("Remove of a replaced file = %v, want ErrChanged", err)
	}
	if err := os.Rename(filepath.Join(own, "kept"), filepath.Join(own, "file")); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("file", same); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(victim, "b", "file")); err != nil {
		t.Fatalf("victim file removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "a.away", "b", "file")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("own file not removed (%v)", err)
	}
}

func TestMkdirAllRefusesALink(t *testing.T) {
	root, victim := tree(t)
	r := openRoot(t, root)
	swap(t, root, victim)
	if _, err := r.MkdirAll("a/b/c", 0o755, nil); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("MkdirAll through a link = %v, want ErrUnsafe", err)
	}
	if _, err := os.Lstat(filepath.Join(victim, "b", "c")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("folder made through the link (%v)", err)
	}
	var made []string
	d, err := r.MkdirAll("x/y", 0o700, func(d *Dir) error { made = append(made, d.Path()); return d.Chmod(0o775 | fs.ModeSetgid) })
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fi, err := os.Lstat(filepath.Join(root, "x", "y"))
	if err != nil || fi.Mode()&fs.ModeSetgid == 0 || fi.Mode().Perm() != 0o775 || len(made) != 2 {
		t.Fatalf("MkdirAll(x/y): mode %v (err %v), made %v; want 2775 and two folders", fi.Mode(), err, made)
	}
}

func TestIsDirOnlyThroughFolders(t *testing.T) {
	root, victim := tree(t)
	r := openRoot(t, root)
	for rel, want := range map[string]bool{".": true, "a": true, "a/b": true, "a/b/file": false, "a/none": false, "../root/a": false, "a//b": false} {
		if got := r.IsDir(rel); got != want {
			t.Errorf("IsDir(%q) = %v, want %v", rel, got, want)
		}
	}
	// The same names, now through a link to a tree where every one of them is a folder.
	swap(t, root, victim)
	for _, rel := range []string{"a", "a/b"} {
		if r.IsDir(rel) {
			t.Errorf("IsDir(%q) through a link = true, want false", rel)
		}
	}
	if !r.IsDir("a.away/b") {
		t.Error(`IsDir("a.away/b") = false: the folder moved, it is still one`)
	}
}

// Under keeps OpenUnder's promises while it holds its base open: a folder swapped for a
// link between two opens is refused, a path outside the base too, and with no base each
// path is opened beneath its own folder (a link there is refused too).
func TestUnderKeepsOpenUndersPromises(t *testing.T) {
	root, victim := tree(t)
	u := NewUnder(root)
	defer u.Close()
	f, err := u.Open(filepath.Join(root, "a", "b", "file"))
	if err != nil {
		t.Fatalf("Open before the swap: %v", err)
	}
	f.Close()
	if _, err := u.Lstat(filepath.Join(root, "a", "b", "file")); err != nil {
		t.Fatalf("Lstat before the swap: %v", err)
	}
	swap(t, root, victim)
	if f, err := u.Open(filepath.Join(root, "a", "b", "file")); !errors.Is(err, ErrUnsafe) {
		if err == nil {
			f.Close()
		}
		t.Fatalf("Open through a link swapped in = %v, want ErrUnsafe", err)
	}
	if _, err := u.Lstat(filepath.Join(root, "a", "b", "file")); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Lstat through a link swapped in = %v, want ErrUnsafe", err)
	}
	if _, err := u.Open(filepath.Join(victim, "b", "file")); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Open outside the base = %v, want ErrUnsafe", err)
	}
	if _, err := u.Open(filepath.Join(root, "other", "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing file = %v, want fs.ErrNotExist", err)
	}

	own := NewUnder("")
	defer own.Close()
	f, err = own.Open(filepath.Join(victim, "b", "file"))
	if err != nil {
		t.Fatalf("Open with no base: %v", err)
	}
	f.Close()
	if err := os.Symlink("file", filepath.Join(victim, "b", "link")); err != nil {
		t.Fatal(err)
	}
	if f, err := own.Open(filepath.Join(victim, "b", "link")); !errors.Is(err, ErrUnsafe) {
		if err == nil {
			f.Close()
		}
		t.Fatalf("Open of a link with no base = %v, want ErrUnsafe", err)
	}
}

var relCases = []struct{ root, abs string }{
	{"/r", "/r/a"}, {"/r", "/r/a/b.exr"}, {"/r/", "/r/a"}, {"/r", "/r/./a"}, {"/r", "/r/a/../b"},
	{"/r", "/r/../x"}, {"/r", "/r"}, {"/r", "/rr/a"}, {"/r", "/r//a"}, {"/", "/a"}, {"/r/../s", "/s/a"},
	{"/r", "/r/a/"}, {"/r", "/r/.."}, {"/r", "/r/..a"}, {"/r", "/r/a.."}, {"r", "r/a"}, {"", "/a"},
}

// relAgrees checks Rel against filepath.Rel and the checks it makes.
func relAgrees(t *testing.T, root, abs string) {
	got, err := Rel(root, abs)
	want, wantErr := "", false
	rel, rerr := filepath.Rel(root, abs)
	if rerr != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
		wantErr = true
	} else {
		want = filepath.ToSlash(rel)
	}
	if got != want || (err != nil) != wantErr {
		t.Errorf("Rel(%q, %q) = %q, %v; want %q (error %v)", root, abs, got, err, want, wantErr)
	}
}

// TestRelFastPathAgrees: Rel's cheap path gives what filepath.Rel and its checks give.
func TestRelFastPathAgrees(t *testing.T) {
	for _, c := range relCases {
		relAgrees(t, c.root, c.abs)
	}
}

func FuzzRel(f *testing.F) {
	for _, c := range relCases {
		f.Add(c.root, c.abs)
	}
	f.Fuzz(relAgrees)
}

// TestAbsFastPathAgrees: a root's name for what lies beneath it is filepath.Join's, whether
// or not the path takes the cheap way.
func TestAbsFastPathAgrees(t *testing.T) {
	for _, root := range []string{"/", "/srv", "/srv/deliveries"} {
		r := &Root{path: root}
		for _, rel := range []string{".", "", "a", "a/b.exr", "a//b", "./a", "a/./b", "a/../b", "../x", "a/", "SR-1/_metadata.toml", "a b/c (1).wav"} {
			if got, want := r.abs(rel), filepath.Join(root, filepath.FromSlash(rel)); got != want {
				t.Errorf("root %q, %q: %q, want %q", root, rel, got, want)
			}
		}
	}
}
