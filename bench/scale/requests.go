// The many-requests case: 10,000 drop folders watched.

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// manyRequests: n requests of one drop folder each, the daemon ready and idle, then restarts,
// timed against a bare find over the same tree (issue 11). With -baseline, every restart of
// bin is followed by one of the baseline binary on the same tree, so the two are compared
// under the same load.
func manyRequests(bin string, n int) error {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[[request]]\nid = \"SR-%05d\"\ntitle = \"Show %d\"\nsource_type = \"VFX\"\nstatus = \"open\"\n\n", i, i)
	}
	w, err := newWork(b.String())
	if err != nil {
		return err
	}
	defer w.cleanup()
	root := filepath.Join(w.dir, "watch")
	// The first start makes the folders; the restarts find them.
	first, err := readyRun(bin, w, true)
	if err != nil {
		return err
	}
	made := 0
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "SR-") {
			made++
		}
	}
	var restarts, base []readyResult
	for range max(*flagRestarts, 1) {
		r, err := readyRun(bin, w, false)
		if err != nil {
			return err
		}
		restarts = append(restarts, r)
		if *flagBaseline != "" {
			r, err := readyRun(*flagBaseline, w, false)
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			base = append(base, r)
		}
	}
	// A bare find, three times: the first may meet a cold cache.
	var finds []float64
	for range 3 {
		t1 := time.Now()
		if err := exec.Command("find", root).Run(); err != nil {
			return fmt.Errorf("find: %w", err)
		}
		finds = append(finds, time.Since(t1).Seconds())
	}
	findSecs := median(finds)
	// The floor for making them: the same folders with plain mkdir calls.
	floor := filepath.Join(w.dir, "mkdir-floor")
	t2 := time.Now()
	for i := range n {
		if err := os.MkdirAll(filepath.Join(floor, fmt.Sprintf("SR-%05d", i)), 0o775); err != nil {
			return err
		}
	}
	mkdirSecs := time.Since(t2).Seconds()
	ready := median(readies(restarts))
	fmt.Printf("%d requests: first start ready in %.3f s (%d drop folders made; plain mkdir of as many: %.2f s), idle after %.1f s, then %.2f %% CPU; RSS %.0f MB; CPU %.1f s\n",
		n, first.ready, made, mkdirSecs, first.toIdle, first.idle, first.rss, first.cpu)
	fmt.Printf("    restart ready in %.3f s (median of %d: %s), CPU to idle %.2f s; a bare find over the tree: %.3f s (median of %s); restart/find %.1f\n",
		ready, len(restarts), secs(readies(restarts)), median(cpus(restarts)), findSecs, secs(finds), ready/findSecs)
	if len(base) > 0 {
		fmt.Printf("    baseline %s: restart ready in %.3f s (median of %d: %s), CPU to idle %.2f s; restart/find %.1f\n",
			*flagBaseline, median(readies(base)), len(base), secs(readies(base)), median(cpus(base)), median(readies(base))/findSecs)
	}
	if made != n {
		return fmt.Errorf("%d drop folders made, want %d", made, n)
	}
	return nil
}

// readyResult is one start of the daemon: from its process start to the log line that says it
// watches (every drop folder exists), then to idle.
type readyResult struct {
	ready     float64 // seconds from process start to "hotdrop is watching"
	toIdle    float64 // seconds from process start to the first second without CPU
	cpu       float64 // CPU seconds until idle (stop, on the first start: its whole life)
	idle, rss float64 // the first start only: % CPU over 10 idle seconds; peak RSS
}

// readyRun starts bin on w, times it to ready and to idle, and stops it. The first run also
// measures its idle CPU for 10 s.
func readyRun(bin string, w work, first bool) (r readyResult, err error) {
	logPath := filepath.Join(w.dir, "daemon.log")
	before, _ := os.ReadFile(logPath)
	d, err := start(bin, w)
	if err != nil {
		return r, err
	}
	var line string
	// Polled every 5 ms, and timed by the line's own stamp (ms) where it has one.
	err = waitEvery(5*time.Minute, 5*time.Millisecond, func() bool {
		b, _ := os.ReadFile(logPath)
		line = lineWith(string(b[min(len(before), len(b)):]), "hotdrop is watching")
		return line != ""
	})
	seen := time.Now()
	if err != nil {
		_, _, _ = d.stop()
		return r, fmt.Errorf("not watching within 5 minutes")
	}
	r.ready = seen.Sub(d.started).Seconds()
	if at, ok := logTime(line); ok && !at.Before(d.started) && at.Before(seen) {
		r.ready = at.Sub(d.started).Seconds()
	}
	pid := d.cmd.Process.Pid
	// Idle: first the status files of every request are written (off the loop), then
	// nothing.
	waitIdle(pid)
	r.toIdle = time.Since(d.started).Seconds()
	r.cpu = cpuNow(pid)
	if first {
		c0 := cpuNow(pid)
		time.Sleep(10 * time.Second)
		r.idle = (cpuNow(pid) - c0) / 10 * 100
	}
	c, rss, err := d.stop()
	if err != nil {
		return r, err
	}
	if first {
		r.cpu, r.rss = c, rss
	}
	return r, nil
}

// lineWith is the first line of log holding s, or "".
func lineWith(log, s string) string {
	i := strings.Index(log, s)
	if i < 0 {
		return ""
	}
	start := strings.LastIndexByte(log[:i], '\n') + 1
	end := strings.IndexByte(log[i:], '\n')
	if end < 0 {
		return log[start:]
	}
	return log[start : i+end]
}

// logTime is the time= (text) or "time": (JSON) stamp of a log line.
func logTime(line string) (time.Time, bool) {
	for _, key := range []string{"time=", `"time":"`} {
		if _, v, ok := strings.Cut(line, key); ok {
			v, _, _ = strings.Cut(v, " ")
			v = strings.TrimRight(v, `",`)
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func readies(rs []readyResult) []float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, r.ready)
	}
	return v
}

func cpus(rs []readyResult) []float64 {
	var v []float64
	for _, r := range rs {
		v = append(v, r.cpu)
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// secs is v as "0.123 0.130 0.141".
func secs(v []float64) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.3f", x)
	}
	return b.String()
}

type status struct {
	Request struct{ State string } `json:"request"`
	Counts  map[string]int         `json:"counts"`
}
