package uploader

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// Benchmarks against the real sshd on loopback. HOTDROP_BENCH_INFLIGHT,
// HOTDROP_BENCH_CONNS and HOTDROP_BENCH_VERIFY (auto, size, hash) override the
// tuning, for measuring it:
//
//	go test -run '^$' -bench SSHD -benchtime 3x ./uploader/

func benchOptions(b *testing.B, s *sshdtest.Server, concurrency int) Options {
	o := sshdOptions(s)
	o.Concurrency = concurrency
	o.Checksum = ChecksumSHA256
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

func runBench(b *testing.B, n, size, concurrency int) {
	s := sshdtest.Start(b)
	u, err := New(benchOptions(b, s, concurrency))
	must(b, err)
	defer u.Close()
	jobs := benchFiles(b, n, size)
	b.SetBytes(int64(n) * int64(size))
	b.ResetTimer()
	for i := range b.N {
		work := make(chan Job)
		var wg sync.WaitGroup
		for range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range work {
					if _, err := u.Upload(b.Context(), j); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for k, j := range jobs {
			j.RemoteRel = fmt.Sprintf("run%d/%s", i, filepath.Base(j.LocalPath))
			_ = k
			work <- j
		}
		close(work)
		wg.Wait()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "files/s")
}

func BenchmarkSSHDOneLargeFile(b *testing.B) { runBench(b, 1, 512<<20, 1) }
func BenchmarkSSHD1MiBFiles(b *testing.B)    { runBench(b, 200, 1<<20, 8) }
func BenchmarkSSHD4KiBFiles(b *testing.B)    { runBench(b, 2000, 4<<10, 8) }
