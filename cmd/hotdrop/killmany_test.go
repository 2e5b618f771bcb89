package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/hotdrop/hotdrop/store"
)

// TestKillsResumeSamePartials kills the daemon (SIGKILL) again and again while it sends a
// request of many files, four at a time, through a proxy that counts the bytes on the wire.
// After each restart the files with a journaled checkpoint are resumed first, so partials do
// not pile up on the server (at most one per upload slot, plus the few started after a file
// finished and killed before their first checkpoint). Before, each start began other files in
// map order: 9 partials after 6 kills. It logs bytes on the wire / bytes delivered; what a
// SIGKILL wastes is mostly what was in transit (SSH window, socket buffers) past the last
// checkpoint, about 2 MiB per file in flight here, so that figure depends on how often the
// daemon is killed per byte sent (here every 28 MiB: far harsher than the fault suite).
// kept is what a restart need not send again: the delivered files and the journaled
// checkpoints of the others.
func kept(t *testing.T, stateDir, folder, remote string, files int) int64 {
	t.Helper()
	st, err := store.Open(filepath.Join(stateDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int64
	for i := range files {
		name := fmt.Sprintf("f%02d.ttml", i)
		if fi, err := os.Stat(filepath.Join(remote, name)); err == nil {
			n += fi.Size()
		} else if c, err := st.Checkpoint(context.Background(), filepath.Join(folder, name)); err == nil {
			n += c.Offset
		}
	}
	return n
}

func TestKillsResumeSamePartials(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 192 MiB through 6 kills")
	}
	const (
		files       = 12
		size        = 16 << 20 // several seconds per file at a quarter of the bandwidth
		kills       = 6
		concurrency = 4
	)
	srv := sshdtest.Start(t)
	p := sshdtest.StartProxy(t, srv.Addr)
	srv.Pin(t, p.Addr)
	url := fmt.Sprintf("sftp://%s@%s%s", srv.User, p.Addr, srv.Dir)
	e := newE2EWith(t, "", url, srv.IdentityFile, srv.KnownHosts, "poll",
		fmt.Sprintf("concurrency = %d\nbandwidth = \"24MiB\"\n", concurrency))
	reqs := "[[request]]\nid = \"SR-9\"\ntitle = \"Wednesday\"\npackage_id = \"PKG-9\"\nsource_type = \"Subtitle\"\n" +
		fmt.Sprintf("language = \"fr-FR\"\nfiles = %d\n", files)
	if err := os.WriteFile(filepath.Join(e.dir, "requests.d", "r.toml"), []byte(reqs), 0o644); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(e.cfg.Watch.Root, "Wednesday", "Subtitle fr-FR [SR-9]")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range files {
		writeFile(t, filepath.Join(folder, fmt.Sprintf("f%02d.ttml", i)), size)
	}
	remote := filepath.Join(srv.Dir, "PKG-9", "Subtitle")
	partials := func() int {
		n := 0
		for _, f := range remoteFiles(t, remote) {
			if strings.HasSuffix(f, ".ttml.partial") {
				n++
			}
		}
		return n
	}
	logFile := filepath.Join(e.dir, "daemon.log")
	most := 0
	for k := range kills {
		before := p.Up()
		cmd := startDaemonProcess(t, e.cfg.File, logFile)
		// Long enough for each upload in flight to journal a checkpoint (every second).
		waitFor(t, 60*time.Second, "28 MiB more on the wire", func() bool { return p.Up()-before > 28<<20 })
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		n := partials()
		most = max(most, n)
		t.Logf("kill %d: %d partials on the server, %.1f MiB on the wire so far, %.1f MiB kept (delivered or journaled as resumable)",
			k+1, n, float64(p.Up())/(1<<20), float64(kept(t, e.cfg.StateDir, folder, remote, files))/(1<<20))
	}
	startDaemonProcess(t, e.cfg.File, logFile)
	waitFor(t, 120*time.Second, "every file delivered", func() bool {
		n := 0
		for _, f := range remoteFiles(t, remote) {
			if strings.HasSuffix(f, ".ttml") {
				n++
			}
		}
		return n == files
	})
	for i := range files {
		name := fmt.Sprintf("f%02d.ttml", i)
		sameContent(t, filepath.Join(folder, name), filepath.Join(remote, name))
	}
	ratio := float64(p.Up()) / float64(files*size)
	t.Logf("figure: %d SIGKILLs, %d files x %d MiB, concurrency %d: bytes on the wire / bytes delivered = %.3f (SSH framing included); most partials on the server after a kill = %d",
		kills, files, size>>20, concurrency, ratio, most)
	if most > concurrency+2 {
		t.Errorf("%d partials on the server after a kill, want at most %d: restarts begin other files than the ones partly sent", most, concurrency+2)
	}
	if data, err := os.ReadFile(logFile); err == nil && t.Failed() {
		t.Logf("daemon log:\n%s", data)
	}
}
