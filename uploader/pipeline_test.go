package uploader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// TestPumpSkipsPresentRanges: ranges the partial already holds are read and hashed with
// the rest but not written, and chunks stop short of them; the acknowledged offset still
// reaches the end.
func TestPumpSkipsPresentRanges(t *testing.T) {
	data := make([]byte, 1<<20+333)
	for i := range data {
		data[i] = byte(i*13 + 5)
	}
	present := []span{{10000, 50000}, {50000, 70001}, {300000, 300001}, {1 << 20, 1<<20 + 333}}
	w := &orderWriter{buf: make([]byte, len(data))}
	h := newHashes("")
	res := pump(context.Background(), pumpConfig{
		src: bytes.NewReader(data), dst: w, end: int64(len(data)), chunk: 32 << 10, inflight: 8,
		present: present, hashes: h, clock: clock.Real{},
	})
	if res.sendErr != nil || res.readErr != nil || res.acked != int64(len(data)) {
		t.Fatalf("pump() = %+v", res)
	}
	if sha, _ := h.sums(); sha != sum(data) {
		t.Errorf("sha256 = %s, want %s: present ranges must be hashed too", sha, sum(data))
	}
	var skipped int64
	for _, p := range present {
		skipped += p.end - p.off
	}
	if res.skipped != skipped {
		t.Errorf("skipped %d bytes, want %d", res.skipped, skipped)
	}
	covered := make([]bool, len(data))
	for _, wr := range w.writes {
		for i := wr[0]; i < wr[0]+wr[1]; i++ {
			if covered[i] {
				t.Fatalf("byte %d written twice", i)
			}
			covered[i] = true
		}
	}
	for _, p := range present {
		for i := p.off; i < p.end; i++ {
			if covered[i] {
				t.Fatalf("byte %d of present range %v was written", i, p)
			}
			covered[i] = true
		}
	}
	for i, c := range covered {
		if !c {
			t.Fatalf("byte %d neither written nor present", i)
		}
	}
	if !bytes.Equal(w.buf[:10000], data[:10000]) || !bytes.Equal(w.buf[70001:300000], data[70001:300000]) {
		t.Error("the bytes written differ from the file's")
	}
}

// lostWriter writes into a shared buffer until its stream is "lost" after n writes; from
// then on every write fails as a dropped connection does.
type lostWriter struct {
	to    *shuffledWriter
	mu    sync.Mutex
	left  int
	fails int
}

func (w *lostWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	lost := w.left <= 0
	w.left--
	if lost {
		w.fails++
	}
	w.mu.Unlock()
	if lost {
		return 0, fmt.Errorf("%w: %w", errStreamLost, io.EOF)
	}
	return w.to.WriteAt(p, off)
}

// TestPumpStreamsJoinAndLeave: streams that join take chunks from the same queue; one
// whose connection is lost leaves, and its chunks go over the others; the copy is whole.
func TestPumpStreamsJoinAndLeave(t *testing.T) {
	data := make([]byte, 3<<20+999)
	for i := range data {
		data[i] = byte(i * 31)
	}
	w := &shuffledWriter{buf: make([]byte, len(data)), failAt: -1}
	lost := &lostWriter{to: w, left: 5}
	join := make(chan io.WriterAt)
	go func() {
		join <- lost
		join <- &shuffledWriter{buf: w.buf, failAt: -1} // shares the buffer: another handle on the file
	}()
	h := newHashes("")
	var sent int64
	res := pump(context.Background(), pumpConfig{
		src: bytes.NewReader(data), dst: w, end: int64(len(data)), chunk: 16 << 10, inflight: 2,
		join: join, perStream: 4, hashes: h, clock: clock.Real{}, acked: func(n, _ int64) { sent = n },
	})
	if res.sendErr != nil || res.readErr != nil || res.acked != int64(len(data)) {
		t.Fatalf("pump() = %+v", res)
	}
	if !bytes.Equal(w.buf, data) {
		t.Error("the copy differs from the file")
	}
	if lost.fails == 0 || res.again == 0 {
		t.Errorf("%d writes failed on the lost stream and %d bytes were sent again; want both", lost.fails, res.again)
	}
	if sent != int64(len(data)) {
		t.Errorf("the meter saw %d bytes acknowledged, want %d", sent, len(data))
	}
}
