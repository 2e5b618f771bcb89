//go:build windows

package statelock

import (
	"os"

	"golang.org/x/sys/windows"
)

var errWouldBlock = windows.ERROR_LOCK_VIOLATION

// lockOffset is where the locked byte sits: far past the text, because Windows locks are
// mandatory and a lock over the text would keep the next process from reading the holder.
const lockOffset = 1 << 40

// lockFile takes an exclusive LockFileEx lock without waiting. Windows releases it when the
// handle closes, at the latest when the process ends.
func lockFile(f *os.File) error {
	ol := &windows.Overlapped{Offset: uint32(lockOffset & 0xffffffff), OffsetHigh: uint32(lockOffset >> 32)}
	return windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
}
