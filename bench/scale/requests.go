// The many-requests case: 10,000 drop folders watched.

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// manyRequests: n requests of one drop folder each, the daemon ready and idle, then a
// restart, timed against a bare find over the same tree (issue 11).
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
	logPath := filepath.Join(w.dir, "daemon.log")
	// Ready: the daemon logs "hotdrop is watching" once every drop folder exists and the
	// watcher runs. The first start makes the folders; the second finds them.
	var ready [2]float64
	var idle, toIdle, cpu, rss float64
	for run := range 2 {
		before, _ := os.ReadFile(logPath)
		d, err := start(bin, w)
		if err != nil {
			return err
		}
		t0 := time.Now()
		err = waitFor(5*time.Minute, func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b[min(len(before), len(b)):]), "hotdrop is watching")
		})
		ready[run] = time.Since(t0).Seconds()
		if err != nil {
			_, _, _ = d.stop()
			return fmt.Errorf("%d requests: not watching within 5 minutes", n)
		}
		if run == 0 {
			// Idle: first the status files of every request are written (off the loop), then
			// nothing; idle CPU is measured from the first second without any, for 10 s.
			pid := d.cmd.Process.Pid
			waitIdle(pid)
			toIdle = time.Since(t0).Seconds()
			c0 := cpuNow(pid)
			time.Sleep(10 * time.Second)
			idle = (cpuNow(pid) - c0) / 10 * 100
		}
		c, r, err := d.stop()
		if err != nil {
			return err
		}
		if run == 0 {
			cpu, rss = c, r
		}
	}
	made := 0
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "SR-") {
			made++
		}
	}
	t1 := time.Now()
	if err := exec.Command("find", root).Run(); err != nil {
		return fmt.Errorf("find: %w", err)
	}
	findSecs := time.Since(t1).Seconds()
	// The floor for making them: the same folders with plain mkdir calls.
	floor := filepath.Join(w.dir, "mkdir-floor")
	t2 := time.Now()
	for i := range n {
		if err := os.MkdirAll(filepath.Join(floor, fmt.Sprintf("SR-%05d", i)), 0o775); err != nil {
			return err
		}
	}
	mkdirSecs := time.Since(t2).Seconds()
	fmt.Printf("%d requests: first start ready in %.2f s (%d drop folders made; plain mkdir of as many: %.2f s), restart ready in %.2f s; a bare find over the tree: %.2f s (restart/find %.1f); idle after %.1f s, then %.2f %% CPU; RSS %.0f MB; CPU %.1f s\n",
		n, ready[0], made, mkdirSecs, ready[1], findSecs, ready[1]/findSecs, toIdle, idle, rss, cpu)
	if made != n {
		return fmt.Errorf("%d drop folders made, want %d", made, n)
	}
	return nil
}

type status struct {
	Request struct{ State string } `json:"request"`
	Counts  map[string]int         `json:"counts"`
}
