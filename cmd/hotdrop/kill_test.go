package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestMain lets a test start this very binary as a hotdrop daemon in its own process (to kill
// it with SIGKILL), without building a second binary.
func TestMain(m *testing.M) {
	if os.Getenv("HOTDROP_TEST_AS_DAEMON") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func startDaemonProcess(t *testing.T, cfgFile, logFile string) *exec.Cmd {
	t.Helper()
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	cmd := exec.Command(os.Args[0], "run", "--config", cfgFile)
	cmd.Env = append(os.Environ(), "HOTDROP_TEST_AS_DAEMON=1")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// TestKill9DuringUpload kills the daemon with SIGKILL in the middle of an upload to a real
// sshd, starts it again, and checks that the file arrives once, whole and byte-identical,
// resumed from the journaled checkpoint, with no partial left behind and nothing published
// half-written in between. The bandwidth limit makes the upload last long enough to journal
// a checkpoint (every second) before the kill.
func TestKill9DuringUpload(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2EWith(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto", `bandwidth = "24MiB"`)
	cfgFile := e.cfg.File
	logFile := filepath.Join(e.dir, "daemon.log")

	first := startDaemonProcess(t, cfgFile, logFile)
	folder := e.folder("SR-1")
	waitFor(t, 20*time.Second, "drop folder created", func() bool {
		_, err := os.Stat(folder)
		return err == nil
	})
	src := filepath.Join(folder, "big.ttml")
	writeFile(t, src, 64<<20)

	remoteDir := filepath.Join(srv.Dir, "PKG-1", "Subtitle")
	partial := filepath.Join(remoteDir, ".big.ttml.partial")
	final := filepath.Join(remoteDir, "big.ttml")
	waitFor(t, 30*time.Second, "upload well under way (remote partial past 36 MiB)", func() bool {
		fi, err := os.Stat(partial)
		return err == nil && fi.Size() > 36<<20
	})
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	if fi, err := os.Stat(final); err == nil && fi.Size() != 64<<20 {
		t.Fatalf("a half-written file was published at %s (%d bytes)", final, fi.Size())
	}

	startDaemonProcess(t, cfgFile, logFile)
	e.waitStatus("SR-1", "delivered")
	sameContent(t, src, final)
	if got := strings.Join(remoteFiles(t, srv.Dir), " "); got != "PKG-1/Subtitle/SR-1.hotdrop.json PKG-1/Subtitle/big.ttml PKG-1/Subtitle/big.ttml.sha256" {
		t.Errorf("remote files = %v, want only the delivered file, its checksum file and the manifest (no partial)", got)
	}
	if t.Failed() {
		data, _ := os.ReadFile(logFile)
		t.Logf("daemon log:\n%s", data)
	}
	data, _ := os.ReadFile(logFile)
	if n := strings.Count(string(data), "msg=delivered"); n != 1 {
		t.Errorf("daemon logged %d deliveries, want 1:\n%s", n, data)
	}
	m := regexp.MustCompile(`msg=delivered .*resumed_from=(\d+)`).FindStringSubmatch(string(data))
	if m == nil || m[1] == "0" {
		t.Errorf("the restarted daemon did not resume from the journaled checkpoint (resumed_from %v):\n%s", m, data)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// eventually polls cond until it holds or d has passed, and says which: the daemon works on
// its own goroutines, so a test waits for what it expects and fails when it does not come.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestSIGTERMDuringUpload: SIGTERM mid-upload exits 0 within the grace period, and the next
// start delivers the file whole.
func TestSIGTERMDuringUpload(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	logFile := filepath.Join(e.dir, "daemon.log")
	first := startDaemonProcess(t, e.cfg.File, logFile)
	folder := e.folder("SR-1")
	waitFor(t, 20*time.Second, "drop folder created", func() bool {
		_, err := os.Stat(folder)
		return err == nil
	})
	src := filepath.Join(folder, "big.ttml")
	writeFile(t, src, 64<<20)
	partial := filepath.Join(srv.Dir, "PKG-1", "Subtitle", ".big.ttml.partial")
	waitFor(t, 30*time.Second, "upload in progress", func() bool {
		fi, err := os.Stat(partial)
		return err == nil && fi.Size() > 0
	})
	sent := time.Now()
	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := first.Wait()
	if took := time.Since(sent); took > shutdownGrace+2*time.Second {
		t.Errorf("stopping took %s, want within %s", took, shutdownGrace)
	}
	if err != nil {
		data, _ := os.ReadFile(logFile)
		t.Fatalf("exit after SIGTERM: %v, want 0\n%s", err, data)
	}
	startDaemonProcess(t, e.cfg.File, logFile)
	e.waitStatus("SR-1", "delivered")
	sameContent(t, src, filepath.Join(srv.Dir, "PKG-1", "Subtitle", "big.ttml"))
}
