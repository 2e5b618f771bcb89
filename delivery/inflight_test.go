package delivery

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/hotdrop/hotdrop/watcher"
)

// inFlightUploader is the fake uploader with InFlighter's advice: six files at once, of
// which those of 1,000 bytes or more count toward Concurrency alone.
type inFlightUploader struct {
	*fakeUploader
	mu               sync.Mutex
	small, big       int // uploads in progress
	maxSmall, maxBig int
	short            bool // advise Concurrency, as on a short link
}

func (u *inFlightUploader) FilesInFlight(c int) int {
	if u.short {
		return c
	}
	return 6
}
func (u *inFlightUploader) SmallFileMax() int64 { return 1000 }

func (u *inFlightUploader) count(j Job, d int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if j.Size >= 1000 {
		u.big += d
		u.maxBig = max(u.maxBig, u.big)
	} else {
		u.small += d
		u.maxSmall = max(u.maxSmall, u.small)
	}
}

func (u *inFlightUploader) inProgress() (small, big int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.small, u.big
}

// TestInFlighterAdmitsSmallFiles: an uploader that advises more files in flight (a long link)
// gets that many small files at once; large ones stay at Concurrency, the rest waiting for a
// place.
func TestInFlighterAdmitsSmallFiles(t *testing.T) {
	up := &inFlightUploader{fakeUploader: newFakeUploader()}
	small, big := make(chan struct{}), make(chan struct{})
	up.during = func(ctx context.Context, j Job) error {
		up.count(j, 1)
		defer up.count(j, -1)
		release := small
		if j.Size >= 1000 {
			release = big
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	st := newMemStore()
	h := newHarnessFor(t, t.TempDir(), st, up, up.fakeUploader, func(o *Options) { o.Concurrency = 2 }, req("SR-1", 8), req("SR-2", 4))
	for i := range 8 {
		h.drop("SR-1", fmt.Sprintf("s%02d.mxf", i), watcher.Ready, 10)
	}
	waitFor(t, "six small uploads at once", func() bool { s, _ := up.inProgress(); return s == 6 })
	close(small)
	h.waitState("SR-1", Delivered)

	for i := range 4 {
		h.drop("SR-2", fmt.Sprintf("b%02d.mxf", i), watcher.Ready, 5000)
	}
	waitFor(t, "two large uploads going and two waiting for a place", func() bool {
		h.eng.big.mu.Lock()
		defer h.eng.big.mu.Unlock()
		_, b := up.inProgress()
		return b == 2 && h.eng.big.waiting == 2
	})
	close(big)
	h.waitState("SR-2", Delivered)
	if up.maxSmall != 6 || up.maxBig != 2 {
		t.Errorf("at most %d small and %d large uploads at once, want 6 and 2 (Concurrency)", up.maxSmall, up.maxBig)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(cond) {
		t.Fatalf("gave up waiting for %s", what)
	}
}

// TestSmallFilesCoverTheJournalWait: on a short link, where the uploader advises no more
// than Concurrency, the engine still keeps twice that many small files going (each waits
// at its rename for the journal's group commit), and no more; a Concurrency of 1 stays one.
func TestSmallFilesCoverTheJournalWait(t *testing.T) {
	for _, tt := range []struct{ concurrency, want int }{{2, 4}, {1, 1}} {
		t.Run(fmt.Sprintf("concurrency=%d", tt.concurrency), func(t *testing.T) {
			up := &inFlightUploader{fakeUploader: newFakeUploader(), short: true}
			release := make(chan struct{})
			up.during = func(ctx context.Context, j Job) error {
				up.count(j, 1)
				defer up.count(j, -1)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}
			h := newHarnessFor(t, t.TempDir(), newMemStore(), up, up.fakeUploader, func(o *Options) { o.Concurrency = tt.concurrency }, req("SR-1", 8))
			for i := range 8 {
				h.drop("SR-1", fmt.Sprintf("s%02d.mxf", i), watcher.Ready, 10)
			}
			waitFor(t, fmt.Sprintf("%d small uploads at once", tt.want), func() bool { s, _ := up.inProgress(); return s == tt.want })
			close(release)
			h.waitState("SR-1", Delivered)
			up.mu.Lock()
			defer up.mu.Unlock()
			if up.maxSmall != tt.want {
				t.Errorf("at most %d small uploads at once, want %d", up.maxSmall, tt.want)
			}
		})
	}
}

// TestBigSlotsServeInTicketOrder: large uploads get their places in the order the loop
// dispatched them, however their goroutines wake; one that gives up leaves the line.
func TestBigSlotsServeInTicketOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var b bigSlots
		b.setLimit(1)
		t0, t1, t2 := b.ticket(), b.ticket(), b.ticket()
		var mu sync.Mutex
		var got []uint64
		served := func() []uint64 { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
		ctx1, cancel1 := context.WithCancel(t.Context())
		ask := func(ctx context.Context, tk uint64) {
			go func() {
				if b.take(ctx, tk) {
					mu.Lock()
					got = append(got, tk)
					mu.Unlock()
				}
			}()
			synctest.Wait()
		}
		ask(t.Context(), t2) // the later tickets ask first
		ask(ctx1, t1)
		if s := served(); len(s) != 0 {
			t.Fatalf("served %v before the first ticket asked", s)
		}
		ask(t.Context(), t0)
		if s := served(); !slices.Equal(s, []uint64{t0}) {
			t.Fatalf("served %v, want only the first ticket %d", s, t0)
		}
		cancel1() // the second gives up
		synctest.Wait()
		b.give()
		synctest.Wait()
		if s := served(); !slices.Equal(s, []uint64{t0, t2}) {
			t.Fatalf("served %v, want %d then %d (%d gave up)", s, t0, t2, t1)
		}
	})
}
