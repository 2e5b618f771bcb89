//go:build unix

package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCheckOutOfDescriptorsIsNoLoss: a process that ran out of file descriptors (a flood of
// connections to the dashboard did it) cannot look at its journal, which says nothing of the
// journal: Check says it could not check, not that the journal is lost, which stopped the
// daemon. Run in a child process, whose descriptor limit it lowers.
func TestCheckOutOfDescriptorsIsNoLoss(t *testing.T) {
	if dir := os.Getenv("HOTDROP_TEST_EMFILE_DIR"); dir != "" {
		s, err := Open(filepath.Join(dir, "state.db"))
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(2)
		}
		var lim syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		// Every descriptor below the limit taken: the next open fails with EMFILE.
		lim.Cur = 64
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Println("setrlimit:", err)
			os.Exit(2)
		}
		for {
			if _, err := os.Open(os.DevNull); err != nil {
				break
			}
		}
		err = s.Check(context.Background())
		fmt.Printf("lost=%v notchecked=%v err=%v\n", errors.Is(err, ErrJournalLost), errors.Is(err, ErrNotChecked), err)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckOutOfDescriptorsIsNoLoss$")
	cmd.Env = append(os.Environ(), "HOTDROP_TEST_EMFILE_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "lost=false notchecked=true") {
		t.Errorf("Check out of descriptors: %s; want not checked, not lost", out)
	}
}
