//go:build unix

package safefs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// writeDir opens root/a/b of tree and plants root/a/b/link -> victim/b/file.
func writeDir(t *testing.T) (d *Dir, root, victimFile string) {
	t.Helper()
	root, victim := tree(t)
	victimFile = filepath.Join(victim, "b", "file")
	if err := os.Symlink(victimFile, filepath.Join(root, "a", "b", "link")); err != nil {
		t.Fatal(err)
	}
	d, err := openRoot(t, root).OpenDir("a/b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, root, victimFile
}

func wantContent(t *testing.T, p, want string) {
	t.Helper()
	if got, err := os.ReadFile(p); err != nil || string(got) != want {
		t.Fatalf("%s = %q (%v), want %q", p, got, err, want)
	}
}

func regularOnly(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &UnsafeError{Path: fi.Name(), Reason: TypeRefusal(fi.Mode())}
	}
	return nil
}

func TestCreateIsExclusiveAndNeverFollows(t *testing.T) {
	d, root, victim := writeDir(t)
	for _, name := range []string{"link", "file"} {
		if f, err := d.Create(name, 0o644); !errors.Is(err, fs.ErrExist) {
			if f != nil {
				f.Close()
			}
			t.Fatalf("Create(%s) over an existing entry = %v, want fs.ErrExist", name, err)
		}
	}
	wantContent(t, victim, "secret")
	wantContent(t, filepath.Join(root, "a", "b", "file"), "ours")
	f, err := d.Create("new", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("made here"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantContent(t, filepath.Join(root, "a", "b", "new"), "made here")
}

func TestOpenWriteRefusesLinksAndFIFOs(t *testing.T) {
	d, root, victim := writeDir(t)
	if f, err := d.OpenWrite("link"); !errors.Is(err, ErrUnsafe) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("OpenWrite(link) = %v, want ErrUnsafe", err)
	}
	wantContent(t, victim, "secret")
	if err := syscall.Mkfifo(filepath.Join(root, "a", "b", "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No reader: a blocking open would wait for one forever.
	if f, err := d.OpenWrite("pipe"); err == nil {
		f.Close()
		t.Fatalf("OpenWrite(pipe) opened a FIFO")
	}
	f, err := d.OpenWrite("file")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("OURS"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantContent(t, filepath.Join(root, "a", "b", "file"), "OURS")
}

func TestLinkAndRenameOverMoveOnlyWhatWasChecked(t *testing.T) {
	d, root, victim := writeDir(t)
	own := filepath.Join(root, "a", "b")
	if err := d.Link("link", d, "published", regularOnly); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Link of a link = %v, want it refused", err)
	}
	if err := d.Link("file", d, "published", regularOnly); err != nil {
		t.Fatal(err)
	}
	if err := d.Link("file", d, "published", regularOnly); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Link onto a taken name = %v, want fs.ErrExist", err)
	}
	// A link at the target name is replaced, never written through.
	if err := d.RenameOver("published", d, "link", regularOnly); err != nil {
		t.Fatal(err)
	}
	wantContent(t, victim, "secret")
	wantContent(t, filepath.Join(own, "link"), "ours")

	// The name swapped for a link between the check and the move: what landed is taken
	// back and the move refused.
	swapToLink := func(fi fs.FileInfo) error {
		if err := os.Remove(filepath.Join(own, "file")); err != nil {
			return err
		}
		return os.Symlink(victim, filepath.Join(own, "file"))
	}
	if err := d.Link("file", d, "raced", swapToLink); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("Link raced by a swap = %v, want ErrUnsafe", err)
	}
	if _, err := os.Lstat(filepath.Join(own, "raced")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the swapped-in link was published (%v)", err)
	}
	write(t, filepath.Join(own, "file2"), "second")
	swap2 := func(fs.FileInfo) error {
		if err := os.Remove(filepath.Join(own, "file2")); err != nil {
			return err
		}
		return os.Symlink(victim, filepath.Join(own, "file2"))
	}
	if err := d.RenameOver("file2", d, "link", swap2); !errors.Is(err, ErrUnsafe) {
		t.Fatalf("RenameOver raced by a swap = %v, want ErrUnsafe", err)
	}
	if fi, err := os.Lstat(filepath.Join(own, "link")); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		t.Fatalf("the swapped-in link was left at the target name")
	}
	wantContent(t, victim, "secret")
}

// TestLandedAndTakenAwayIsLanded: an ingest that moves each file away the moment it lands
// made the look after the move fail (gone), so a publish that had happened was reported as
// failed, its partial left for a retry to send again.
func TestLandedAndTakenAwayIsLanded(t *testing.T) {
	dir := t.TempDir()
	r, err := OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := r.OpenDir(".")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := d.Lstat("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.landed(fi, "taken-away", filepath.Join(dir, "a")); err != nil {
		t.Errorf("landed, then taken away: %v, want it counted as landed", err)
	}
}
