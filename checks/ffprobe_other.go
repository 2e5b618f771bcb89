//go:build !unix

package checks

import (
	"os"
	"syscall"
)

func setUnprivileged(*syscall.SysProcAttr, *os.File) {}
