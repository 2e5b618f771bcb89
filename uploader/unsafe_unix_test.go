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
	root := filepath.Join(t.TempDir(), "outbox")
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
