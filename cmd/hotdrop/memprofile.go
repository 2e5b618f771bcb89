package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"
)

// startMemProfile writes the heap profile to $HOTDROP_MEMPROFILE each time the live heap
// (as the last GC marked it) reaches a new peak by 2 %, checked twice a second, writes the
// samples (seconds, live heap MiB, RSS MiB) to $HOTDROP_MEMPROFILE.curve, and at the end prints
// one line to stderr with the peaks and, at the peak RSS, what of it was the Go runtime's:
// how bench/scale finds what the daemon holds at its biggest, which a profile taken at exit
// does not show. It forces a GC at each new peak, so RSS is measured without it. Unset:
// nothing.
func startMemProfile() (stop func()) {
	path := os.Getenv("HOTDROP_MEMPROFILE")
	if path == "" {
		return func() {}
	}
	names := []string{
		"/gc/heap/live:bytes",
		"/memory/classes/heap/objects:bytes",
		"/memory/classes/heap/free:bytes",
		"/memory/classes/heap/unused:bytes",
		"/memory/classes/heap/stacks:bytes",
		"/memory/classes/metadata/other:bytes",
		"/memory/classes/total:bytes",
		"/memory/classes/heap/released:bytes",
	}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	var peakLive, peakRSS uint64
	var atPeakRSS []uint64
	// The samples as they go, for a curve: seconds, live heap MB, RSS MB.
	curve, _ := os.Create(path + ".curve")
	t0 := time.Now()
	sample := func() {
		metrics.Read(samples)
		v := make([]uint64, len(samples))
		for i, s := range samples {
			v[i] = s.Value.Uint64()
		}
		rss := vmRSS()
		if rss > peakRSS {
			peakRSS, atPeakRSS = rss, v
		}
		if curve != nil {
			fmt.Fprintf(curve, "%.1f %.1f %.1f\n", time.Since(t0).Seconds(), float64(v[0])/(1<<20), float64(rss)/(1<<20))
		}
		if v[0] <= peakLive+peakLive/50 { // a new peak by 2 %: not a profile per tick
			return
		}
		peakLive = v[0]
		runtime.GC() // the profile then shows this cycle's heap, not one or two cycles back
		if f, err := os.Create(path); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		if curve != nil {
			curve.Close()
		}
		mb := func(b uint64) float64 { return float64(b) / (1 << 20) } // MiB, as bench/scale prints
		line := fmt.Sprintf("peak live heap %.1f MiB; at peak RSS %.1f MiB:", mb(peakLive), mb(peakRSS))
		if a := atPeakRSS; a != nil {
			goRes := a[6] - a[7] // Go's mapped memory less what it returned to the OS
			line += fmt.Sprintf(" live %.1f, heap objects %.1f, heap free %.1f, unused %.1f, stacks %.1f, GC metadata %.1f, Go total resident≈%.1f, rest (cgo-free libc/sqlite, binary) ≈%.1f",
				mb(a[0]), mb(a[1]), mb(a[2]), mb(a[3]), mb(a[4]), mb(a[5]), mb(goRes), mb(peakRSS)-mb(goRes))
		}
		fmt.Fprintf(os.Stderr, "hotdrop: HOTDROP_MEMPROFILE: %s\n", line)
	}
}

// vmRSS is the process's resident set in bytes, from /proc (0 where there is none).
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	_, v, ok := bytes.Cut(b, []byte("VmRSS:"))
	if !ok {
		return 0
	}
	v, _, _ = bytes.Cut(v, []byte("kB"))
	kb, _ := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
	return kb * 1024
}
