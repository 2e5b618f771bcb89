package delivery

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/watcher"
)

type discardReporter struct{}

func (discardReporter) RequestChanged(RequestView) {}

// BenchmarkManyFilesOneRequest measures the engine's own bookkeeping for a files = 0 request
// of n small files (an image sequence): events in, state machine, journal and views, with an
// uploader and a journal that cost nothing. It guards against work that grows with the square
// of the request's size.
func BenchmarkManyFilesOneRequest(b *testing.B) {
	for _, n := range []int{500, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for range b.N {
				root := b.TempDir()
				up := newFakeUploader()
				var started atomic.Int64
				allStarted := make(chan struct{})
				up.during = func(context.Context, Job) error {
					if started.Add(1) == int64(n) {
						close(allStarted)
					}
					return nil
				}
				eng := New(Options{Root: root, FolderTemplate: "{id}", FolderMode: 0o2775, ReadyMarker: "_READY",
					Concurrency: 4, AutoDeliver: true, Names: "any",
					RemotePath: func(r Request, name string) (string, error) { return r.ID + "/" + name, nil },
					Clock:      clock.NewSkipping(time.Unix(0, 0)), Logger: discardLogger()}, up, newMemStore(), discardReporter{})
				if err := eng.SetRequests(context.Background(), []Request{req("SR-B", 0)}); err != nil {
					b.Fatal(err)
				}
				events := make(chan watcher.Event, 64)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- eng.Run(ctx, events) }()
				for i := 0; i < n; i++ {
					rel := fmt.Sprintf("SR-B/f%05d.exr", i)
					ev := watcher.Event{Path: filepath.Join(root, rel), Rel: rel, Info: watcher.FileInfo{Size: 4096, ModTime: time.Unix(1, 0), Inode: uint64(i)}}
					ev.Kind = watcher.Settling
					events <- ev
					ev.Kind = watcher.Ready
					events <- ev
				}
				events <- watcher.Event{Kind: watcher.Ready, Path: filepath.Join(root, "SR-B", "_READY"), Rel: "SR-B/_READY"}
				<-allStarted // the last upload is under way: every file went through the engine
				cancel()
				<-done
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
