//go:build unix

package main

import (
	"os"
	"runtime"
	"syscall"
)

// exitedPeakRSS is the peak resident set of an exited process, in MB (0 where unknown).
func exitedPeakRSS(ps *os.ProcessState) float64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return float64(ru.Maxrss) / (1 << 20) // bytes there
	}
	return float64(ru.Maxrss) / 1024 // kilobytes on Linux and the BSDs
}
