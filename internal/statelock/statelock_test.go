package statelock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets a test start this very binary as a second process that takes the lock: a
// lock held inside one process proves nothing about the next.
//
//	HOTDROP_STATELOCK_HOLD=DIR  take the lock, print "locked", block until killed
//	HOTDROP_STATELOCK_TRY=DIR   try the lock once; print "locked" or the error; exit 0 or 3
func TestMain(m *testing.M) {
	if dir := os.Getenv("HOTDROP_STATELOCK_HOLD"); dir != "" {
		if _, err := Acquire(dir, "statelock test holder"); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // until the test kills us (or closes our stdin)
		os.Exit(0)
	}
	if dir := os.Getenv("HOTDROP_STATELOCK_TRY"); dir != "" {
		if _, err := Acquire(dir, "statelock test second"); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		fmt.Println("locked")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startHolder starts a process that holds dir's lock and returns once it has it.
func startHolder(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HOTDROP_STATELOCK_HOLD="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder process: %q %v, want \"locked\"", line, err)
	}
	return cmd
}

// try runs a second process that tries dir's lock once and returns its output and exit code.
func try(t *testing.T, dir string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HOTDROP_STATELOCK_TRY="+dir)
	start := time.Now()
	out, err := cmd.Output()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the second process took %s: it must not wait for the lock", took)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(string(out)), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), 0
}

// TestSecondProcessRefusedUntilHolderKilled: while one process holds a state_dir, another is
// refused at once with the holder's pid, start time and the state_dir in its message; once
// the holder is SIGKILLed (no chance to clean up), the kernel has released the lock and the
// next process gets it.
func TestSecondProcessRefusedUntilHolderKilled(t *testing.T) {
	dir := t.TempDir() + "/state" // does not exist yet: Acquire creates it
	holder := startHolder(t, dir)
	pid := holder.Process.Pid

	out, code := try(t, dir)
	if code != 3 {
		t.Fatalf("second process: exit %d (%q), want it refused", code, out)
	}
	for _, want := range []string{fmt.Sprintf("pid %d", pid), dir, "since ", "statelock test holder"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal %q does not name %q", out, want)
		}
	}

	// In this process too, and as a *BusyError that matches ErrBusy.
	_, err := Acquire(dir, "in-process")
	var be *BusyError
	if !errors.As(err, &be) || !errors.Is(err, ErrBusy) || be.Holder.PID != pid {
		t.Fatalf("Acquire while held = %v, want a BusyError naming pid %d", err, pid)
	}
	if since := time.Since(be.Holder.Since); since < 0 || since > time.Minute {
		t.Errorf("holder since %v, want about now", be.Holder.Since)
	}

	if err := holder.Process.Kill(); err != nil { // SIGKILL on Unix: no chance to clean up
		t.Fatal(err)
	}
	holder.Wait() // the kernel has closed its descriptors once it is reaped

	if out, code := try(t, dir); code != 0 || out != "locked" {
		t.Fatalf("after the holder was killed: exit %d %q, want the lock taken", code, out)
	}
	l, err := Acquire(dir, "after")
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	if h := Read(dir); h.PID != os.Getpid() || h.Command != "after" {
		t.Errorf("lock file after re-acquiring = %+v, want pid %d, command \"after\"", h, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "again")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}
