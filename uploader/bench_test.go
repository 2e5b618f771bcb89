package uploader

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/cputime"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// Benchmarks against the real sshd on loopback, or through the delay proxy
// (internal/netdelay) for a long link. HOTDROP_BENCH_RTT (e.g. 100ms) sets
// the round trip; HOTDROP_BENCH_STREAMS (a number; unset is auto),
// HOTDROP_BENCH_INFLIGHT, HOTDROP_BENCH_CONNS and HOTDROP_BENCH_VERIFY (auto,
// size, hash) the tuning, for measuring it:
//
//	go test -run '^$' -bench SSHD -benchtime 3x ./uploader/
//	HOTDROP_BENCH_RTT=100ms go test -run '^$' -bench SSHDOneLargeFile -benchtime 1x ./uploader/
//
// Small files run as hotdrop send runs them: FilesInFlight of them at once.
// Each reports MB/s, files/s and the client's CPU seconds per GB (the
// server's is in bench/run.sh).

func benchOptions(b *testing.B, s *sshdtest.Server, concurrency int) Options {
	o := sshdOptions(s)
	o.Concurrency = concurrency
	o.Checksum = ChecksumSHA256
	if d, err := time.ParseDuration(os.Getenv("HOTDROP_BENCH_RTT")); err == nil {
		p := sshdtest.StartDelayProxy(b, s.Addr, d)
		o.URL = viaOptions(b, s, p.Addr()).URL
	}
	if v, err := strconv.Atoi(os.Getenv("HOTDROP_BENCH_STREAMS")); err == nil {
		o.Streams = v
	}
	if v, err := strconv.Atoi(os.Getenv("HOTDROP_BENCH_INFLIGHT")); err == nil {
		o.RequestsInFlight = v
	}
	if v, err := strconv.Atoi(os.Getenv("HOTDROP_BENCH_CONNS")); err == nil {
		o.Connections = v
	}
	if v := os.Getenv("HOTDROP_BENCH_VERIFY"); v != "" {
		o.Verify = v
	}
	return o
}

func benchFiles(b *testing.B, n, size int) []Job {
	b.Helper()
	dir := b.TempDir()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	jobs := make([]Job, n)
	for i := range jobs {
		p := filepath.Join(dir, fmt.Sprintf("f%05d.bin", i))
		must(b, os.WriteFile(p, data, 0o644))
		fi, err := os.Stat(p)
		must(b, err)
		jobs[i] = Job{LocalPath: p, Size: fi.Size(), ModTime: fi.ModTime(), Replace: true}
	}
	return jobs
}

// cpuTime is the process's user and system time so far.
func cpuTime() time.Duration { return cputime.Self() }

func runBench(b *testing.B, n, size, concurrency int) {
	s := sshdtest.Start(b)
	u, err := New(benchOptions(b, s, concurrency))
	must(b, err)
	defer u.Close()
	jobs := benchFiles(b, n, size)
	b.SetBytes(int64(n) * int64(size))
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := range b.N {
		var wg sync.WaitGroup
		var mu sync.Mutex
		active := 0
		cond := sync.NewCond(&mu)
		for _, j := range jobs {
			j.RemoteRel = fmt.Sprintf("run%d/%s", i, filepath.Base(j.LocalPath))
			mu.Lock()
			// As hotdrop send admits them: more small files once the link
			// showed itself long.
			for active >= limitFor(u, concurrency, j.Size) {
				cond.Wait()
			}
			active++
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := u.Upload(b.Context(), j); err != nil {
					b.Error(err)
				}
				mu.Lock()
				active--
				cond.Broadcast()
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "files/s")
	b.ReportMetric((cpuTime()-cpu0).Seconds()/(float64(n*size*b.N)/1e9), "cpu-s/GB")
}

func limitFor(u *Uploader, concurrency int, size int64) int {
	if size >= SmallFileMax {
		return concurrency
	}
	return u.FilesInFlight(concurrency)
}

func BenchmarkSSHDOneLargeFile(b *testing.B) { runBench(b, 1, 1<<30, 1) }
func BenchmarkSSHD1MiBFiles(b *testing.B)    { runBench(b, 200, 1<<20, 8) }
func BenchmarkSSHD4KiBFiles(b *testing.B)    { runBench(b, 2000, 4<<10, 8) }
