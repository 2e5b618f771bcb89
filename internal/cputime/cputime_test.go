package cputime

import (
	"runtime"
	"testing"
	"time"
)

func TestSelfGrowsWithWork(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "windows" && runtime.GOOS != "darwin" {
		t.Skipf("no CPU clock read on %s", runtime.GOOS)
	}
	before := Self()
	x := uint64(1)
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		for i := range 1000 {
			x = x*6364136223846793005 + uint64(i)
		}
	}
	if after := Self(); after <= before {
		t.Fatalf("CPU time did not grow over 50 ms of work: %v then %v (%d)", before, after, x)
	}
}
