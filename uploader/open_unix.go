//go:build unix

package uploader

import (
	"os"
	"syscall"
)

// openFlags never follow a symlink and never block on a FIFO swapped in after the file
// settled: the source is opened only if it is still a regular file.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// inodeOf is part of a local file's identity, recorded with checkpoints.
func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
