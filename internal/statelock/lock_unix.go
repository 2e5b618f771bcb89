//go:build unix

package statelock

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

var errWouldBlock = unix.EWOULDBLOCK

// lockFile takes an exclusive flock without waiting. flock locks belong to the open file
// description: the kernel drops it when the last descriptor closes, at the latest when the
// process dies. Go opens files close-on-exec, so a child (ffprobe, ssh) never inherits it.
func lockFile(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
