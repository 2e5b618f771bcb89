// Command scale drives the real hotdrop daemon at render-farm sizes (issue 11) and prints what
// it costs: files/s end to end, the daemon's peak RSS and CPU, the status file's size, and how a
// restart with everything delivered goes back to idle. The destination is a file:// folder, so
// what is measured is the daemon, not SSH.
//
//	go run ./bench/scale                       # 1k, 10k and 100k files; 10,000 requests
//	go run ./bench/scale -sizes 1000,10000 -requests 1000
//
// Every run checks its own result: each file delivered exactly once with its size, and the
// restart sends nothing. A check that fails makes the command exit 1.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	flagSizes    = flag.String("sizes", "1000,10000,100000", "files in the one request, per run (\"\": none)")
	flagRequests = flag.Int("requests", 10000, "requests for the many-requests run (0: skip)")
	flagFileSize = flag.Int("file-size", 4096, "bytes per file")
	flagMode     = flag.String("mode", "marker,count", "how the request is complete: marker (files = 0 and _READY), count (files = N)")
	flagRestart  = flag.Bool("restart", true, "after the largest run, restart the daemon and measure its way back to idle")
	flagRestarts = flag.Int("restarts", 3, "restarts in the many-requests run (the median is shown)")
	flagBaseline = flag.String("baseline", "", "another hotdrop binary restarted after each restart of -hotdrop in the many-requests run, on the same tree, to compare")
	flagBin      = flag.String("hotdrop", "", "the hotdrop binary (default: build ./cmd/hotdrop)")
	flagKeep     = flag.Bool("keep", false, "keep the work folders")
	flagProfile  = flag.String("cpuprofile", "", "write each daemon's CPU profile to this file (the last run's is kept)")
	flagMemProf  = flag.String("memprofile", "", "write each daemon's heap profile at its peak live heap to this file (the last run's is kept; the peaks are in daemon.log)")
)

func main() {
	flag.Parse()
	bin := *flagBin
	if bin == "" {
		bin = filepath.Join(os.TempDir(), "hotdrop-scale-bin")
		build := exec.Command("go", "build", "-o", bin, "./cmd/hotdrop")
		build.Stdout, build.Stderr = os.Stdout, os.Stderr
		if err := build.Run(); err != nil {
			fatal("build: %v", err)
		}
	}
	failed := false
	fmt.Printf("%-8s %-7s %9s %9s %9s %9s %10s %11s %12s\n", "files", "mode", "seconds", "files/s", "RSS MB", "CPU s", "CPU ms/file", "status KB", "check")
	var sizes []int
	for _, s := range strings.Split(*flagSizes, ",") {
		if strings.TrimSpace(s) == "" {
			continue // -sizes "": the many-requests run only
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fatal("-sizes: %q is not a count", s)
		}
		sizes = append(sizes, n)
	}
	modes := strings.Split(*flagMode, ",")
	for i, n := range sizes {
		for j, mode := range modes {
			last := i == len(sizes)-1 && j == len(modes)-1
			r, err := oneRequest(bin, n, mode, last && *flagRestart)
			check := "ok"
			if err != nil {
				check, failed = "FAIL", true
			}
			fmt.Printf("%-8d %-7s %9.1f %9.0f %9.0f %9.1f %10.1f %11.1f %12s\n", n, mode, r.secs, float64(n)/r.secs, r.rssMB, r.cpu,
				1000*r.cpu/float64(n), float64(r.statusBytes)/1024, check)
			if err != nil {
				fmt.Printf("    %v\n", err)
			}
			if r.memPeaks != "" {
				fmt.Printf("    %s\n", r.memPeaks)
			}
			if r.restartCPU >= 0 {
				fmt.Printf("    restart with %d delivered: %.2f s of CPU to idle (%.1f s wall), RSS %.0f MB, %d files sent again\n", n, r.restartCPU, r.restartWall, r.restartRSS, r.resent)
			}
		}
	}
	if *flagRequests > 0 {
		if err := manyRequests(bin, *flagRequests); err != nil {
			fmt.Printf("    %v\n", err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func fatal(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "scale: "+f+"\n", a...)
	os.Exit(2)
}

type result struct {
	secs, rssMB, cpu        float64
	statusBytes             int64
	restartCPU, restartWall float64
	restartRSS              float64
	resent                  int
	memPeaks                string // the daemon's own line on its heap peaks (-memprofile)
}

// memPeaks is the last line the daemon wrote about its heap peaks (-memprofile), or "".
func memPeaks(w work) string {
	if *flagMemProf == "" {
		return ""
	}
	b, _ := os.ReadFile(filepath.Join(w.dir, "daemon.log"))
	i := bytes.LastIndex(b, []byte("HOTDROP_MEMPROFILE: "))
	if i < 0 {
		return ""
	}
	line, _, _ := bytes.Cut(b[i+len("HOTDROP_MEMPROFILE: "):], []byte("\n"))
	return string(line)
}

const config = `state_dir = "state"

[watch]
root = "watch"
folder = "{id}"
settle = "1s"
mode = "events"
rescan = "1h"

[requests]
files = ["requests.toml"]

[destination]
url = "file://%s"
path = "{id}/{name}"
concurrency = 4

[status]
listen = ""
`

type work struct {
	dir, out string
}

func newWork(requests string) (work, error) {
	dir, err := os.MkdirTemp("", "hotdrop-scale-")
	if err != nil {
		return work{}, err
	}
	w := work{dir: dir, out: filepath.Join(dir, "out")}
	for _, d := range []string{w.out, filepath.Join(dir, "watch")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return w, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "hotdrop.toml"), []byte(fmt.Sprintf(config, filepath.ToSlash(w.out))), 0o644); err != nil {
		return w, err
	}
	return w, os.WriteFile(filepath.Join(dir, "requests.toml"), []byte(requests), 0o644)
}

func (w work) cleanup() {
	if !*flagKeep {
		os.RemoveAll(w.dir)
	} else {
		fmt.Printf("    kept %s\n", w.dir)
	}
}

type daemon struct {
	cmd     *exec.Cmd
	done    chan error
	started time.Time // just before the process was started
}

func start(bin string, w work) (*daemon, error) {
	log, err := os.OpenFile(filepath.Join(w.dir, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", filepath.Join(w.dir, "hotdrop.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = os.Environ()
	if *flagProfile != "" {
		cmd.Env = append(cmd.Env, "HOTDROP_CPUPROFILE="+*flagProfile)
	}
	if *flagMemProf != "" {
		cmd.Env = append(cmd.Env, "HOTDROP_MEMPROFILE="+*flagMemProf)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, done: make(chan error, 1), started: t0}
	go func() { d.done <- cmd.Wait(); log.Close() }()
	return d, nil
}

// stop ends the daemon with SIGTERM and returns its CPU seconds and peak RSS, shutdown included.
func (d *daemon) stop() (cpu, rssMB float64, err error) {
	rss := peakRSS(d.cmd.Process.Pid)
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err = <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		err = <-d.done
		err = fmt.Errorf("did not stop within 30 s of SIGTERM (%v)", err)
	}
	if ps := d.cmd.ProcessState; ps != nil {
		cpu = (ps.UserTime() + ps.SystemTime()).Seconds()
		// The peak over its whole life, its shutdown included (the final flush of views and
		// journal), which VmHWM read before SIGTERM cannot see. Linux: kilobytes.
		rss = max(rss, exitedPeakRSS(ps))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 0 {
		err = nil
	}
	return cpu, rss, err
}

// cpuNow is the daemon's CPU seconds so far, from /proc.
func cpuNow(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100 // USER_HZ
}

func peakRSS(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// delivered counts the delivered files of a request: what the destination holds, less
// checksum files, temporaries and the manifest.
func delivered(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".sha256") || strings.HasSuffix(name, ".hotdrop.json") {
			continue
		}
		n++
	}
	return n, nil
}

func frameName(i int) string { return fmt.Sprintf("shot_010.%07d.exr", 1001+i) }

// oneRequest delivers n frames of one request (files = n, or a ready marker after them) and,
// with restart, starts the daemon again to see that it sends none of them twice.
func oneRequest(bin string, n int, mode string, restart bool) (r result, err error) {
	r.restartCPU = -1
	files := "0"
	if mode == "count" {
		files = strconv.Itoa(n)
	}
	w, err := newWork(fmt.Sprintf("[[request]]\nid = \"SR-1\"\ntitle = \"Shot\"\nsource_type = \"VFX\"\nstatus = \"open\"\nfiles = %s\n", files))
	if err != nil {
		return r, err
	}
	defer w.cleanup()
	d, err := start(bin, w)
	if err != nil {
		return r, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _, _ = d.stop()
		}
	}()
	drop := filepath.Join(w.dir, "watch", "SR-1")
	if err := waitFor(30*time.Second, func() bool { _, err := os.Stat(drop); return err == nil }); err != nil {
		return r, fmt.Errorf("drop folder %s never appeared: %w", drop, err)
	}
	t0 := time.Now()
	if err := writeFrames(drop, n, mode); err != nil {
		return r, err
	}
	out := filepath.Join(w.out, "SR-1")
	got, err := waitRequestDelivered(drop, n)
	r.secs = time.Since(t0).Seconds()
	if st, serr := os.Stat(filepath.Join(drop, ".hotdrop-status.json")); serr == nil {
		r.statusBytes = st.Size()
	}
	if err != nil {
		r.cpu, r.rssMB, _ = d.stop()
		stopped = true
		return r, fmt.Errorf("%d of %d files delivered after %.0f s", got, n, r.secs)
	}
	// The manifest follows the last file: wait for it, so the restart has nothing left to do.
	_ = waitFor(time.Minute, func() bool {
		_, err := os.Stat(filepath.Join(out, "SR-1.hotdrop.json"))
		return err == nil
	})
	r.cpu, r.rssMB, err = d.stop()
	stopped = true
	r.memPeaks = memPeaks(w)
	if err != nil {
		return r, err
	}
	if err := checkOnce(out, n); err != nil {
		return r, err
	}
	if !restart {
		return r, nil
	}
	return r, restartSendsNothing(bin, w, out, &r)
}

// writeFrames writes n frames into drop, each its own content, and the ready marker after
// them in mode "marker".
func writeFrames(drop string, n int, mode string) error {
	data := bytes.Repeat([]byte("f"), *flagFileSize)
	for i := range n {
		binaryStamp(data, i)
		if err := os.WriteFile(filepath.Join(drop, frameName(i)), data, 0o644); err != nil {
			return err
		}
	}
	if mode == "marker" {
		return os.WriteFile(filepath.Join(drop, "_READY"), nil, 0o644)
	}
	return nil
}

// waitRequestDelivered waits until the request in drop has its n files delivered; it returns
// how many were.
func waitRequestDelivered(drop string, n int) (got int, err error) {
	deadline := time.Duration(n)*10*time.Millisecond + time.Minute
	// Progress from the daemon's status file (small: counts), not a listing of the
	// destination, which at 100,000 files costs the machine more than the daemon does.
	// checkOnce then checks the destination itself.
	err = waitFor(deadline, func() bool {
		s, err := readStatus(drop)
		got = s.Counts["delivered"]
		return err == nil && got >= n && s.Request.State == "delivered"
	})
	return got, err
}

// restartSendsNothing starts the daemon again on the delivered request and measures its
// start until idle (r.restartWall, r.restartCPU); it fails when a file in out was written
// again (r.resent).
func restartSendsNothing(bin string, w work, out string, r *result) error {
	before := modTimes(out)
	d, err := start(bin, w)
	if err != nil {
		return err
	}
	t1 := time.Now()
	waitIdle(d.cmd.Process.Pid)
	r.restartWall = time.Since(t1).Seconds() - 1
	r.restartCPU, r.restartRSS, err = d.stop()
	if err != nil {
		return err
	}
	for name, mt := range modTimes(out) {
		if t, ok := before[name]; !ok || !t.Equal(mt) {
			if !strings.HasPrefix(name, ".") {
				r.resent++
			}
		}
	}
	if r.resent > 0 {
		return fmt.Errorf("the restart wrote %d files again", r.resent)
	}
	return nil
}

// modTimes is the modification time of each file in dir, by name.
func modTimes(dir string) map[string]time.Time {
	m := map[string]time.Time{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if info, err := e.Info(); err == nil {
			m[e.Name()] = info.ModTime()
		}
	}
	return m
}

// binaryStamp makes every file's content its own.
func binaryStamp(b []byte, i int) {
	copy(b, fmt.Sprintf("%010d", i))
}

// checkOnce checks the destination holds each file once, whole, and the manifest lists each once.
func checkOnce(out string, n int) error {
	for i := range n {
		st, err := os.Stat(filepath.Join(out, frameName(i)))
		if err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		if st.Size() != int64(*flagFileSize) {
			return fmt.Errorf("%s: %d bytes, want %d", frameName(i), st.Size(), *flagFileSize)
		}
	}
	got, err := delivered(out)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("the destination holds %d files, want %d", got, n)
	}
	b, err := os.ReadFile(filepath.Join(out, "SR-1.hotdrop.json"))
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	var m struct {
		Files []struct{ Name string } `json:"files"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if seen[f.Name] {
			return fmt.Errorf("manifest lists %s twice", f.Name)
		}
		seen[f.Name] = true
	}
	if len(seen) != n {
		return fmt.Errorf("manifest lists %d files, want %d", len(seen), n)
	}
	return nil
}

func readStatus(dir string) (status, error) {
	var s status
	b, err := os.ReadFile(filepath.Join(dir, ".hotdrop-status.json"))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// waitIdle waits (at most 2 minutes) until the process has used no CPU for a whole second,
// measured at 4 Hz.
func waitIdle(pid int) {
	last, still := cpuNow(pid), 0
	_ = waitFor(2*time.Minute, func() bool {
		c := cpuNow(pid)
		if c == last {
			still++
		} else {
			still = 0
		}
		last = c
		return still >= 4
	})
}

func waitFor(d time.Duration, ok func() bool) error {
	return waitEvery(d, 250*time.Millisecond, ok)
}

// waitEvery is waitFor polling every step: a timing taken with it is late by up to one step.
func waitEvery(d, step time.Duration, ok func() bool) error {
	end := time.Now().Add(d)
	for {
		if ok() {
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("timed out after %s", d)
		}
		time.Sleep(step)
	}
}
