package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// BenchmarkDaemonVsSend delivers the same small files to a real sshd twice in one run: with
// `hotdrop send` and through the daemon (drop folder, settle, _READY, upload, verify,
// journal). They share the engine; the daemon must not add a bottleneck of its own (issue 11:
// at least 90 % of send's files/s). HOTDROP_BENCH_FILES sets the count (default 2,000; the
// issue's figure is 20,000).
//
//	go test ./cmd/hotdrop -run '^$' -bench DaemonVsSend -benchtime 1x
func BenchmarkDaemonVsSend(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("HOTDROP_BENCH_FILES")); err == nil && v > 0 {
		n = v
	}
	srv := sshdtest.Start(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "data")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4096)
	for i := range n {
		copy(buf, fmt.Sprintf("%010d", i))
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("shot.%06d.exr", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for i := range b.N {
		// send
		cfgPath := writeBenchConfig(b, filepath.Join(dir, fmt.Sprintf("send%d", i)), srv, "")
		t0, cpu0 := time.Now(), processCPU()
		if code := run([]string{"send", src, "--to", fmt.Sprintf("send%d", i), "--config", cfgPath}, io.Discard, io.Discard); code != 0 {
			b.Fatalf("send exited %d", code)
		}
		sendSecs, sendCPU := time.Since(t0).Seconds(), processCPU()-cpu0

		// the daemon
		home := filepath.Join(dir, fmt.Sprintf("daemon%d", i))
		cfgPath = writeBenchConfig(b, home, srv, fmt.Sprintf(`[[request]]
id = "SR-B%d"
title = "Bench"
source_type = "VFX"
status = "open"
files = 0
`, i))
		cfg, err := config.Load(cfgPath)
		if err != nil {
			b.Fatal(err)
		}
		var delivered atomic.Int64
		var firstUpload atomic.Int64 // unix nanos
		all := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		started, done := make(chan struct{}), make(chan error, 1)
		go func() {
			done <- runDaemon(ctx, cfg, newLogger(io.Discard), daemonHooks{started: started, events: func(ev delivery.Event) {
				if ev.Type == delivery.EventFileUploading {
					firstUpload.CompareAndSwap(0, time.Now().UnixNano())
				}
				if ev.Type == delivery.EventFileDelivered && delivered.Add(1) == int64(n) {
					close(all)
				}
			}})
		}()
		select {
		case <-started:
		case err := <-done:
			b.Fatalf("daemon: %v", err)
		}
		drop := filepath.Join(home, "root", fmt.Sprintf("SR-B%d", i))
		if p := os.Getenv("HOTDROP_BENCH_CPUPROFILE"); p != "" {
			// The daemon's phase alone (go test -cpuprofile would mix in send's).
			f, err := os.Create(p)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				b.Fatal(err)
			}
		}
		t1, cpu1 := time.Now(), processCPU()
		for j := range n {
			name := fmt.Sprintf("shot.%06d.exr", j)
			if err := os.Link(filepath.Join(src, name), filepath.Join(drop, name)); err != nil {
				b.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(drop, "_READY"), nil, 0o644); err != nil {
			b.Fatal(err)
		}
		tReady := time.Now() // the render farm is done
		select {
		case <-all:
		case <-time.After(time.Duration(n)*20*time.Millisecond + time.Minute):
			b.Fatalf("%d of %d files delivered", delivered.Load(), n)
		}
		daemonSecs := time.Since(t1).Seconds() - cfg.Watch.Settle.Seconds()
		readySecs := time.Since(tReady).Seconds() - cfg.Watch.Settle.Seconds()
		writeSecs := tReady.Sub(t1).Seconds()
		uploadSecs := time.Since(time.Unix(0, firstUpload.Load())).Seconds()
		daemonCPU := processCPU() - cpu1
		pprof.StopCPUProfile()
		cancel()
		if err := <-done; err != nil {
			b.Fatalf("daemon: %v", err)
		}
		b.ReportMetric(float64(n)/sendSecs, "send-files/s")
		b.ReportMetric(float64(n)/daemonSecs, "daemon-files/s")
		b.ReportMetric(sendSecs/daemonSecs, "daemon/send")
		// The same from the moment the last frame and the marker are written: the daemon's
		// wait after the render farm is done (its work while the frames are being written
		// is in its CPU, not in this time). writing-s is how long writing them took here.
		b.ReportMetric(sendSecs/readySecs, "ready-daemon/send")
		b.ReportMetric(writeSecs, "writing-s")
		// From the first upload on: what the engine does once the request is complete.
		b.ReportMetric(float64(n)/uploadSecs, "daemon-upload-files/s")
		// CPU of this process (the client side; sshd's is not counted) per file.
		b.ReportMetric(sendCPU.Seconds()*1e3/float64(n), "send-cpu-ms/file")
		b.ReportMetric(daemonCPU.Seconds()*1e3/float64(n), "daemon-cpu-ms/file")
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeBenchConfig writes a config for srv in home, with requests (none: an empty list).
func writeBenchConfig(b *testing.B, home string, srv *sshdtest.Server, requests string) string {
	b.Helper()
	for _, d := range []string{"root", "requests.d"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "requests.d", "r.toml"), []byte(requests), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
folder = "{id}"
settle = "1s"
mode = "events"
[requests]
files = ["requests.d/*.toml"]
[destination]
url = %q
identity_file = %q
known_hosts = %q
path = "{id}/{name}"
concurrency = 8
names = "any"
[status]
listen = ""
`, srv.URL(), srv.IdentityFile, srv.KnownHosts)
	p := filepath.Join(home, "hotdrop.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}
