//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/statelock"
)

// TestSecondProcessOnStateDirRefused: while a `hotdrop run` process owns a state_dir, a second
// `run` and a `send` process on it exit at once with exitBusy and a sentence naming the daemon's pid
// and the state_dir, without touching the journal; `status` still reads it. After the daemon
// is SIGKILLed the kernel has dropped its lock, and `send` works.
func TestSecondProcessOnStateDirRefused(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote")
	if err := os.MkdirAll(remote, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newE2E(t, dir, "file://"+remote, "", "", "auto")
	logFile := filepath.Join(dir, "daemon.log")
	daemon := startDaemonProcess(t, e.cfg.File, logFile)
	waitFor(t, 20*time.Second, "the daemon to start", func() bool {
		data, _ := os.ReadFile(logFile)
		return bytes.Contains(data, []byte("hotdrop is watching"))
	})
	pid := daemon.Process.Pid
	file := filepath.Join(dir, "adhoc.ttml")
	writeFile(t, file, 1000)

	for _, args := range [][]string{
		{"run", "--config", e.cfg.File},
		{"send", file, "--config", e.cfg.File},
	} {
		code, msg := runProcess(t, 15*time.Second, args...)
		if code != exitBusy {
			t.Errorf("hotdrop %s beside a running daemon: exit %d, want %d; stderr %q", args[0], code, exitBusy, msg)
		}
		for _, want := range []string{fmt.Sprintf("pid %d", pid), e.cfg.StateDir, "since "} {
			if !strings.Contains(msg, want) {
				t.Errorf("hotdrop %s: message %q does not name %q", args[0], msg, want)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(remote, "adhoc.ttml")); err == nil {
		t.Errorf("the refused send uploaded its file anyway")
	}

	var out, errb bytes.Buffer
	if code := run([]string{"status", "--config", e.cfg.File}, &out, &errb); code != exitOK {
		t.Errorf("status beside a running daemon: exit %d, stderr %q; it only reads and must work", code, errb.String())
	}

	if err := daemon.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	daemon.Wait()
	out.Reset()
	errb.Reset()
	if code := run([]string{"send", file, "--config", e.cfg.File}, &out, &errb); code != exitOK {
		t.Fatalf("send after the daemon was killed: exit %d, stderr %q; the lock should be free", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(remote, "adhoc.ttml")); err != nil {
		t.Errorf("send after the daemon was killed delivered nothing: %v", err)
	}
}

// TestDemoOnLockedDirRefused: `hotdrop demo --dir X` on a folder whose state_dir another
// process holds is refused before it writes anything into X (it would replace the running
// demo's keys and config).
func TestDemoOnLockedDirRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := statelock.Acquire(filepath.Join(dir, "state"), "the first demo")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	var out, errb bytes.Buffer
	code := run([]string{"demo", "--dir", dir}, &out, &errb)
	if code != exitBusy || !strings.Contains(errb.String(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("demo on a held folder: exit %d, stderr %q; want %d naming pid %d", code, errb.String(), exitBusy, os.Getpid())
	}
	for _, name := range []string{"hotdrop.toml", "id_ed25519", "known_hosts"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("the refused demo wrote %s", name)
		}
	}
}

// runProcess runs this binary as hotdrop in its own process and returns its exit status and
// stderr. A process still running after limit is killed and fails the test: a second daemon
// that starts instead of being refused never exits by itself.
func runProcess(t *testing.T, limit time.Duration, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HOTDROP_TEST_AS_DAEMON=1")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), errb.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, errb.String()
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Errorf("hotdrop %s still ran after %s; it must exit at once. stderr:\n%s", strings.Join(args, " "), limit, errb.String())
		return -1, errb.String()
	}
}
