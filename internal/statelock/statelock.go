// Package statelock makes one process at a time the owner of a hotdrop state_dir.
//
// Two daemons on one journal upload the same files at once and corrupt each other's partials,
// so `hotdrop run`, `send` and `demo` take an exclusive OS lock on state_dir/hotdrop.lock
// before they open the journal. The lock is the kernel's (flock on Unix, LockFileEx on
// Windows): it is released when the process exits however it exits, SIGKILL and power cuts
// included, so a stale lock file never needs removing by hand. The file's text (pid, start
// time, host, command) is only for the message the next process prints; it is not the lock.
//
// It is not a lock for readers: `hotdrop status` reads the journal without taking it.
package statelock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FileName is the lock file inside state_dir.
const FileName = "hotdrop.lock"

// Lock is a held lock on a state_dir. Release gives it up; so does the process's exit.
type Lock struct {
	f   *os.File
	dir string
}

// Holder describes the process that holds a state_dir, as it wrote itself into the lock file.
// Fields are zero when the holder has not written them (yet).
type Holder struct {
	PID     int
	Since   time.Time
	Host    string
	Command string
}

// BusyError is returned by Acquire when another process holds the state_dir.
type BusyError struct {
	Dir    string // the state_dir
	Holder Holder
}

// Error is a sentence naming the holder, since when, and the state_dir.
func (e *BusyError) Error() string {
	h := e.Holder
	who := "another hotdrop process"
	if h.PID > 0 {
		who = fmt.Sprintf("hotdrop pid %d", h.PID)
		if host, _ := os.Hostname(); h.Host != "" && h.Host != host {
			who += " on host " + h.Host
		}
	}
	var detail []string
	if h.Command != "" {
		detail = append(detail, "`"+h.Command+"`")
	}
	if !h.Since.IsZero() {
		detail = append(detail, "since "+h.Since.Local().Format("2006-01-02 15:04:05 MST"))
	}
	if len(detail) > 0 {
		who += " (" + strings.Join(detail, ", ") + ")"
	}
	return fmt.Sprintf("state_dir %s is in use by %s; only one hotdrop process may use a state_dir at a time: "+
		"stop that one first (or wait for it to finish), or give this one another state_dir", e.Dir, who)
}

// ErrBusy matches every *BusyError with errors.Is.
var ErrBusy = errors.New("state_dir is in use by another process")

// Is makes errors.Is(err, ErrBusy) true for a *BusyError.
func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Acquire takes the lock on dir (created with mode 0750 if missing) for the current process,
// or returns a *BusyError at once when another process holds it; it never waits. command
// (e.g. "hotdrop run") goes into the lock file for the next process's message.
func Acquire(dir, command string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	// O_CREATE without O_TRUNC: the holder's text must survive a refused process's open.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("state_dir lock %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, &BusyError{Dir: dir, Holder: readHolder(path)}
		}
		return nil, fmt.Errorf("state_dir lock %s: %w", path, err)
	}
	host, _ := os.Hostname()
	text := fmt.Sprintf("pid %d\nsince %s\nhost %s\ncommand %s\n",
		os.Getpid(), time.Now().UTC().Format(time.RFC3339), host, strings.ReplaceAll(command, "\n", " "))
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(text), 0)
	}
	if err != nil {
		f.Close() // releases the lock
		return nil, fmt.Errorf("state_dir lock %s: writing the holder's pid: %w", path, err)
	}
	return &Lock{f: f, dir: dir}, nil
}

// Release gives up the lock. The file stays: removing it would let a process that opened it
// before the removal lock an orphan while a third one locks a new file of the same name.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Dir is the state_dir the lock holds.
func (l *Lock) Dir() string { return l.dir }

// Read returns what the lock file at dir says about its holder, whether or not any process
// still holds it (for diagnostics; Acquire is the only test of whether it is held).
func Read(dir string) Holder { return readHolder(filepath.Join(dir, FileName)) }

// readHolder parses the lock file. The holder writes its text just after taking the lock, so
// a process refused in between may find it empty: try a few times briefly before giving up
// and naming "another hotdrop process".
func readHolder(path string) Holder {
	var h Holder
	for try := 0; try < 10; try++ {
		h = parseHolder(path)
		if h.PID > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return h
}

func parseHolder(path string) Holder {
	var h Holder
	f, err := os.Open(path)
	if err != nil {
		return h
	}
	defer f.Close()
	sc := bufio.NewScanner(f) // a line longer than the scanner's buffer ends the scan: fine
	for n := 0; n < 16 && sc.Scan(); n++ {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "pid":
			h.PID, _ = strconv.Atoi(v)
		case "since":
			h.Since, _ = time.Parse(time.RFC3339, v)
		case "host":
			h.Host = v
		case "command":
			h.Command = v
		}
	}
	return h
}
