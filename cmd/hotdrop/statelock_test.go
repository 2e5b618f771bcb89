//go:build unix

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/statelock"
)

// TestSecondProcessOnStateDirRefused: while a `hotdrop run` process owns a state_dir, a second
// `run` and a `send` on it exit at once with exitBusy and a sentence naming the daemon's pid
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
		var out, errb bytes.Buffer
		start := time.Now()
		code := run(args, &out, &errb)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("hotdrop %s took %s; it must exit at once", args[0], took)
		}
		msg := errb.String()
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
