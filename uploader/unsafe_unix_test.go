//go:build unix

package uploader

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A source swapped for a FIFO or a symlink after it settled is refused as unsafe_path, and
// opening it never hangs (a FIFO opened for reading blocks until a writer comes).
func TestUnsafeSourceRefused(t *testing.T) {
	root := t.TempDir()
	u := newUploader(t, Options{URL: "file://" + root})
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe.mxf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "real.mxf")
	if err := os.WriteFile(target, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.mxf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, link} {
		done := make(chan error, 1)
		go func() {
			_, err := u.Upload(t.Context(), Job{LocalPath: p, RemoteRel: filepath.Base(p), Size: 6})
			done <- err
		}()
		select {
		case err := <-done:
			wantCode(t, err, CodeUnsafePath, false)
		case <-time.After(5 * time.Second):
			t.Fatalf("Upload(%s) hangs", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "link.mxf")); err == nil {
		t.Errorf("the link's target was published")
	}
}

// With Job.Open, the upload reads the descriptor Open gives and, after the last byte, asks
// Open again: a folder on the path swapped for a link while the bytes went out makes the
// second Open fail, and nothing is published.
func TestOpenRecheckedAfterTheLastByte(t *testing.T) {
	out := t.TempDir()
	u := newUploader(t, Options{URL: "file://" + out})
	root := t.TempDir()
	nested := filepath.Join(root, "nested")
	if err := os.Mkdir(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(nested, "a.mxf")
	if err := os.WriteFile(src, []byte("our bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	refused := &Error{Code: CodeUnsafePath, Msg: "a.mxf: a folder on its path became a link"}
	opens := 0
	j := Job{LocalPath: src, RemoteRel: "a.mxf", Size: fi.Size(), ModTime: fi.ModTime(),
		Open: func() (*os.File, error) {
			opens++
			if _, err := os.Lstat(nested); err != nil {
				return nil, err
			}
			if li, _ := os.Lstat(nested); li.Mode()&os.ModeSymlink != 0 {
				return nil, refused
			}
			return os.Open(src)
		},
		Progress: func(int64) {
			// The swap, while the upload runs: once is enough.
			if _, err := os.Lstat(nested + ".away"); err == nil {
				return
			}
			if err := os.Rename(nested, nested+".away"); err != nil {
				t.Error(err)
			}
			if err := os.Symlink(t.TempDir(), nested); err != nil {
				t.Error(err)
			}
		}}
	_, err = u.Upload(t.Context(), j)
	wantCode(t, err, CodeUnsafePath, false)
	if opens != 2 {
		t.Errorf("Open called %d times, want 2 (the read, then the check after the last byte)", opens)
	}
	if _, err := os.Lstat(filepath.Join(out, "a.mxf")); err == nil {
		t.Errorf("published although the path went through a link by the end")
	}
}
