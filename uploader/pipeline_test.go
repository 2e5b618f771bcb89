package uploader

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
)

func TestAckTracker(t *testing.T) {
	a := newAckTracker(100)
	steps := []struct {
		off, n, want int64
	}{
		{200, 100, 100}, // a hole at 100..200
		{400, 50, 100},
		{100, 100, 300}, // fills the hole; 200..300 joins
		{300, 100, 450}, // joins 400..450
		{450, 10, 460},
	}
	for _, s := range steps {
		if got := a.ack(s.off, s.n); got != s.want {
			t.Fatalf("ack(%d, %d) = %d, want %d", s.off, s.n, got, s.want)
		}
	}
	if len(a.above) != 0 {
		t.Errorf("ranges left above the contiguous offset: %v", a.above)
	}
}

// shuffledWriter completes writes after random delays, so acknowledgements
// arrive out of order, and fails every write at or past failAt.
type shuffledWriter struct {
	mu     sync.Mutex
	buf    []byte
	failAt int64
}

var errInjected = errors.New("injected write failure")

func (w *shuffledWriter) WriteAt(p []byte, off int64) (int, error) {
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	if w.failAt >= 0 && off+int64(len(p)) > w.failAt {
		return 0, errInjected
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	copy(w.buf[off:], p)
	return len(p), nil
}

func TestPumpOutOfOrderAndFailure(t *testing.T) {
	data := make([]byte, 1<<20+777)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, failAt := range []int64{-1, 300000} {
		w := &shuffledWriter{buf: make([]byte, len(data)), failAt: failAt}
		var mu sync.Mutex
		var offers []int64
		h := newHashes(ChecksumMD5)
		res := pump(context.Background(), pumpConfig{
			src: bytes.NewReader(data), dst: w, end: int64(len(data)), chunk: 4096, inflight: 16,
			hashes: h, clock: clock.Real{},
			checkpoint: func(off int64) { mu.Lock(); offers = append(offers, off); mu.Unlock() },
		})
		if failAt < 0 {
			if res.sendErr != nil || res.readErr != nil || res.acked != int64(len(data)) || !bytes.Equal(w.buf, data) {
				t.Errorf("pump() = %+v, copy equal %v", res, bytes.Equal(w.buf, data))
			}
			if sha, _ := h.sums(); sha != sum(data) {
				t.Errorf("sha256 = %s, want %s", sha, sum(data))
			}
			continue
		}
		if !errors.Is(res.sendErr, errInjected) {
			t.Errorf("sendErr = %v, want the injected failure", res.sendErr)
		}
		// Everything below acked was written, whatever order the acks came in.
		if res.acked > failAt || !bytes.Equal(w.buf[:res.acked], data[:res.acked]) {
			t.Errorf("acked = %d with failures from %d; the acknowledged prefix must be intact", res.acked, failAt)
		}
		for _, o := range offers {
			if o > res.acked {
				t.Errorf("checkpoint offered %d beyond the acknowledged %d", o, res.acked)
			}
		}
	}
}

func TestPumpShrunkSource(t *testing.T) {
	w := &shuffledWriter{buf: make([]byte, 100000), failAt: -1}
	res := pump(context.Background(), pumpConfig{
		src: io.LimitReader(bytes.NewReader(make([]byte, 100000)), 5000), dst: w, end: 100000,
		chunk: 4096, inflight: 4, hashes: newHashes(""), clock: clock.Real{},
	})
	if !errors.Is(res.readErr, io.ErrUnexpectedEOF) {
		t.Errorf("readErr = %v, want io.ErrUnexpectedEOF", res.readErr)
	}
}

// orderWriter records every write's offset and size.
type orderWriter struct {
	mu     sync.Mutex
	buf    []byte
	writes [][2]int64
}

func (w *orderWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	copy(w.buf[off:], p)
	w.writes = append(w.writes, [2]int64{off, int64(len(p))})
	return len(p), nil
}

// TestPumpSequential: in sequential mode every write starts where the last one ended, in
// bursts of several chunks; the bytes arrive whole. A concurrent pump afterwards (its
// buffers from the same pool) still writes one chunk at a time: a burst-sized pooled
// buffer must not turn into one huge write.
func TestPumpSequential(t *testing.T) {
	data := make([]byte, 3<<20+555)
	for i := range data {
		data[i] = byte(i * 13)
	}
	run := func(seq bool) *orderWriter {
		w := &orderWriter{buf: make([]byte, len(data))}
		pr := pump(t.Context(), pumpConfig{src: bytes.NewReader(data), dst: w, end: int64(len(data)),
			chunk: 32 << 10, inflight: 16, sequential: seq, hashes: newHashes(""), clock: clock.Real{}})
		if pr.readErr != nil || pr.sendErr != nil || pr.acked != int64(len(data)) {
			t.Fatalf("pump(sequential=%v) = %+v", seq, pr)
		}
		if !bytes.Equal(w.buf, data) {
			t.Fatalf("pump(sequential=%v): the bytes written differ", seq)
		}
		return w
	}
	w := run(true)
	next := int64(0)
	for _, wr := range w.writes {
		if wr[0] != next {
			t.Fatalf("sequential write at %d, want %d (writes %v)", wr[0], next, w.writes)
		}
		next += wr[1]
	}
	if w.writes[0][1] != 16*32<<10 {
		t.Errorf("sequential burst = %d bytes, want 16 chunks of 32 KiB", w.writes[0][1])
	}
	for _, wr := range run(false).writes {
		if wr[1] > 32<<10 {
			t.Fatalf("concurrent write of %d bytes after a sequential pump, want at most one 32 KiB chunk", wr[1])
		}
	}
}
