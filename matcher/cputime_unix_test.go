//go:build unix

package matcher

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: benchmarks report it per name as well as
// wall time, since the build machine is shared and wall time measures the neighbours too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
