//go:build unix

package uploader

import "syscall"

// openFlags never follow a symlink and never block on a FIFO swapped in after the file
// settled: the source is opened only if it is still a regular file.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
