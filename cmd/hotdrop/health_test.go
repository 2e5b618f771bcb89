package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestStateDirLostStopsDaemon: with the real SQLite journal, a state_dir deleted (or made
// read-only) under the running daemon is noticed within a check period: an ERROR event
// (state_dir.unavailable), no new work, and `hotdrop run` returns an error that exits 1, so
// the service manager restarts it. Before, deliveries went on into the deleted database.
func TestStateDirLostStopsDaemon(t *testing.T) {
	for _, tt := range []struct {
		name string
		lose func(t *testing.T, dir string)
	}{
		{"deleted", func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"read-only", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				if err := os.Chmod(dir, 0o555); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Chmod(dir, 0o755) })
				return
			}
			// Root writes through a folder's mode; the immutable attribute stops it.
			if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
				t.Skipf("chattr +i refused here: %v: %s", err, out)
			}
			t.Cleanup(func() { _ = exec.Command("chattr", "-i", dir).Run() })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := sshdtest.Start(t)
			e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "poll")
			tap, events := eventsOf(delivery.EventJournalLost)
			e.hooks = daemonHooks{
				engineOptions: func(o *delivery.Options) { o.JournalCheckEvery = 100 * time.Millisecond },
				events:        tap,
			}
			e.start()
			src := filepath.Join(e.folder("SR-1"), "ep1_fr-FR.ttml")
			writeFile(t, src, 10<<10)
			e.waitStatus("SR-1", "delivered")

			lostAt := time.Now()
			tt.lose(t, e.cfg.StateDir)
			ev := nextEvent(t, events, 10*time.Second, "state_dir.unavailable event")
			t.Logf("figure: state_dir %s noticed after %v: %s", tt.name, ev.heard.Sub(lostAt).Round(time.Millisecond), ev.Reason.Message)
			select {
			case err := <-e.done:
				e.cancel = nil // stopped by itself
				if !errors.Is(err, delivery.ErrJournalLost) {
					t.Fatalf("run returned %v, want ErrJournalLost", err)
				}
				if code := exitCode(err, io.Discard); code != exitFail {
					t.Errorf("exit code = %d, want %d so the service manager restarts it", code, exitFail)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("the daemon did not stop within 15s of losing its state_dir")
			}
		})
	}
}
