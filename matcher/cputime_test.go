package matcher

import (
	"time"

	"github.com/hotdrop/hotdrop/internal/cputime"
)

// cpuTime is the process's user+system CPU time: benchmarks report it per name as well as
// wall time, since the build machine is shared and wall time measures the neighbours too.
func cpuTime() time.Duration { return cputime.Self() }
