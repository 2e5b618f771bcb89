package safefs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestWriteOnlyFolderIsARoot: a folder hotdrop may enter and write into but not list (an
// ingest drop box of mode 0733, a home folder of 0711) could not be opened as a root or a
// step, so a file:// destination there failed every file where writing by path had worked.
// It is opened to act beneath it; listing it still fails as a permission problem.
func TestWriteOnlyFolderIsARoot(t *testing.T) {
	if box := os.Getenv("SAFEFS_TEST_BOX"); box != "" {
		writeOnlyBox(t, box) // the child, as a user the folder does not let read
		return
	}
	top, err := os.MkdirTemp("", "safefs-box-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	box := filepath.Join(top, "box")
	if err := os.MkdirAll(filepath.Join(box, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		// Its owner, with no read permission on it, is such a user.
		for _, d := range []string{filepath.Join(box, "sub"), box} {
			if err := os.Chmod(d, 0o333); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { os.Chmod(box, 0o755); os.Chmod(filepath.Join(box, "sub"), 0o755) })
		writeOnlyBox(t, box)
		return
	}
	// Root reads anything: the test runs again as nobody, from a copy of this binary nobody
	// may run, on folders of mode 0733 owned by root.
	for _, d := range []string{top, filepath.Join(box, "sub"), box} {
		mode := os.FileMode(0o733)
		if d == top {
			mode = 0o755
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(top, "safefs.test")
	copyExecutable(t, os.Args[0], bin)
	cmd := exec.Command(bin, "-test.run", "^TestWriteOnlyFolderIsARoot$", "-test.v")
	cmd.Env = append(os.Environ(), "SAFEFS_TEST_BOX="+box)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func writeOnlyBox(t *testing.T, box string) {
	r, err := OpenRoot(box)
	if err != nil {
		t.Fatalf("OpenRoot of a folder that may be entered and written, not read: %v", err)
	}
	defer r.Close()
	d, err := r.OpenDir("sub")
	if err != nil {
		t.Fatalf("OpenDir of such a folder: %v", err)
	}
	defer d.Close()
	f, err := d.Create("x.partial", 0o644)
	if err != nil {
		t.Fatalf("Create beneath it: %v", err)
	}
	f.Close()
	if fi, err := r.Lstat("sub/x.partial"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("Lstat of what was made: %v, %v", fi, err)
	}
	if _, err := d.Names(); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("listing it: %v, want a permission error", err)
	}
	if err := d.Remove("x.partial", nil); err != nil {
		t.Errorf("Remove beneath it: %v", err)
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
