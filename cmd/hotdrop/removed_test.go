package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestSourceRemovedMidUpload: a source deleted while it is being sent to a real sshd stops its
// upload at once (issue 14: it was sent to the end and published), the partial is removed
// from the server (nothing will ever resume it), the file is forgotten and a log line says
// so. The bandwidth limit makes the upload last long enough to delete the file mid-way.
func TestSourceRemovedMidUpload(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2EWith(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto", `bandwidth = "8MiB"`)
	e.start()
	const size = 64 << 20 // eight seconds at 8 MiB/s
	src := filepath.Join(e.folder("SR-1"), "big.ttml")
	writeFile(t, src, size)
	partial := filepath.Join(srv.Dir, "PKG-1", "Subtitle", ".big.ttml.partial")
	var sent int64
	waitFor(t, 30*time.Second, "upload under way (remote partial past 4 MiB)", func() bool {
		fi, err := os.Stat(partial)
		if err == nil {
			sent = fi.Size()
		}
		return err == nil && fi.Size() > 4<<20
	})
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	waitFor(t, 5*time.Second, "the upload stopped and its partial removed", func() bool {
		_, err := os.Stat(partial)
		return errors.Is(err, fs.ErrNotExist)
	})
	t.Logf("stopped and discarded %v after the removal (%d of %d bytes were on the server)", time.Since(removed).Round(time.Millisecond), sent, size)
	waitFor(t, 5*time.Second, "a log line saying the upload stopped", func() bool {
		return strings.Contains(e.logged.String(), "source removed during upload")
	})
	s := e.waitStatus("SR-1", "waiting")
	if len(s.Files) != 0 {
		t.Errorf("status files = %+v, want none: the removed file is forgotten", s.Files)
	}
	if got := remoteFiles(t, srv.Dir); len(got) != 0 {
		t.Errorf("remote files = %v, want none: no final file, no partial", got)
	}
}
