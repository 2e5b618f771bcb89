//go:build linux

package matcher

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Attack 4 of issue 10: sidecars and writers' checksum files are read through a folder a
// render-farm user swapped for a link to a folder they cannot read. Before the fix the
// victim's values became the file's metadata.
func TestSidecarsNeverReadThroughALink(t *testing.T) {
	m := newTest(t)
	dropDir := filepath.Join(t.TempDir(), "drop")
	drop(t, dropDir, map[string]string{"nested/Wednesday_S01E03_SUB_fr-FR.ttml": "subs"})
	victim := t.TempDir()
	drop(t, victim, map[string]string{
		"Wednesday_S01E03_SUB_fr-FR.ttml":      "subs",
		"Wednesday_S01E03_SUB_fr-FR.ttml.toml": "comment = \"SECRET-FROM-SIDECAR\"\n",
		"_metadata.toml":                       "note = \"SECRET-FROM-FOLDER\"\n",
	})
	nested := filepath.Join(dropDir, "nested")
	if err := os.Rename(nested, nested+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, nested); err != nil {
		t.Fatal(err)
	}
	v := m.Evaluate(Input{Path: filepath.Join(nested, "Wednesday_S01E03_SUB_fr-FR.ttml"), Root: dropDir, Request: "SR-1042"})
	if got := fmt.Sprintf("%+v", v); strings.Contains(got, "SECRET") {
		t.Fatalf("the victim's sidecar was read through the link: %s", got)
	}
	if holdCode(v) != HoldInvalidSidecar || !strings.Contains(v.Hold.Message, "link") {
		t.Fatalf("hold = %+v, want %s naming the link", v.Hold, HoldInvalidSidecar)
	}
}

// Attack 4, the FIFO: a checksum file flipped back and forth with a FIFO (renameat2
// RENAME_EXCHANGE) while the file is judged. Before the fix, a FIFO swapped in between the
// Lstat and the open blocked the open, and with it the engine's loop, forever.
func TestChecksumFIFOSwappedInNeverBlocks(t *testing.T) {
	m := newTest(t)
	dir := t.TempDir()
	sum := md5.Sum([]byte("subs"))
	file := filepath.Join(dir, "Wednesday_S01E03_SUB_fr-FR.ttml")
	drop(t, dir, map[string]string{
		"Wednesday_S01E03_SUB_fr-FR.ttml":     "subs",
		"Wednesday_S01E03_SUB_fr-FR.ttml.md5": hex.EncodeToString(sum[:]) + "  Wednesday_S01E03_SUB_fr-FR.ttml\n",
	})
	sumFile, fifo := file+".md5", filepath.Join(dir, ".fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, sumFile, unix.AT_FDCWD, fifo, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("renameat2: %v", err)
				return
			}
		}
	}()
	done := make(chan [2]int)
	go func() {
		var ok, refused int
		for range 2000 {
			v := m.Evaluate(Input{Path: file, Root: dir, Request: "SR-1042"})
			switch {
			case v.Hold == nil && len(v.Checksums) == 1:
				ok++
			case holdCode(v) == HoldInvalidSidecar:
				refused++
			}
		}
		done <- [2]int{ok, refused}
	}()
	select {
	case n := <-done:
		close(stop)
		<-stopped
		if n[0] == 0 || n[1] == 0 {
			t.Logf("checksum file read %d times, refused as a FIFO %d times (the race is timing-dependent)", n[0], n[1])
		}
	case <-time.After(30 * time.Second):
		close(stop)
		<-stopped
		// Release the blocked open so the test binary can exit.
		for _, p := range []string{sumFile, fifo} {
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
		t.Fatal("judging a file blocked on a FIFO swapped in for its checksum file")
	}
}
