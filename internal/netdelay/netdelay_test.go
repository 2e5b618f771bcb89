package netdelay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/cputime"
)

// serve runs handle for every connection to a fresh loopback listener until
// the test ends.
func serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// sink reads an 8-byte length, then that many bytes, and answers with the
// count it read: the answer means every byte arrived.
func sink(c net.Conn) {
	var n int64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return
	}
	got, _ := io.CopyN(io.Discard, c, n)
	_ = binary.Write(c, binary.BigEndian, got)
}

func start(t testing.TB, target string, opt Options) *Proxy {
	t.Helper()
	p, err := Listen(target, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func TestRoundTripIsDelayedByRTT(t *testing.T) {
	const rtt = 80 * time.Millisecond
	const slack = 60 * time.Millisecond // a loaded 2-core CI machine; the best of five pings counts
	p := start(t, serve(t, echo), Options{RTT: rtt})
	c := dial(t, p.Addr())
	best := time.Hour
	buf := make([]byte, 1)
	for i := range 5 {
		t0 := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		d := time.Since(t0)
		if d < rtt {
			t.Fatalf("ping %d took %v through a proxy of RTT %v: the delay is missing", i, d, rtt)
		}
		best = min(best, d)
	}
	if best >= rtt+slack {
		t.Fatalf("best ping took %v, want < %v (RTT %v + slack)", best, rtt+slack, rtt)
	}
	if p.Up() != 5 || p.Down() != 5 {
		t.Errorf("Up, Down = %d, %d; want 5, 5", p.Up(), p.Down())
	}
}

// TestBulkIsNotCappedByTheProxy sends through a proxy of RTT 200 ms: a proxy
// that held one window per round trip (2 MiB, an SSH channel's) would need
// 200 ms per 2 MiB on each connection; the queue must let bytes stream at the
// rate they come.
func TestBulkIsNotCappedByTheProxy(t *testing.T) {
	const rtt = 200 * time.Millisecond
	const conns, per = 4, 16 << 20
	p := start(t, serve(t, sink), Options{RTT: rtt})
	t0 := time.Now()
	if err := eachConn(p.Addr(), conns, func(c net.Conn) error { return toSink(c, per) }); err != nil {
		t.Fatal(err)
	}
	d := time.Since(t0)
	windowed := time.Duration(conns*per/(2<<20)) * rtt / conns // 2 MiB per RTT on each connection
	t.Logf("%d × %d MiB through RTT %v in %v (%.0f MiB/s); one 2 MiB window per RTT would take %v",
		conns, per>>20, rtt, d, float64(conns*per)/(1<<20)/d.Seconds(), windowed)
	if d >= rtt+windowed/2 {
		t.Fatalf("transfer took %v, want < %v (RTT + half the windowed time): the proxy is the window", d, rtt+windowed/2)
	}
	if d < rtt {
		t.Fatalf("transfer and answer took %v, less than the RTT %v", d, rtt)
	}
}

func TestCutAfterDeliversExactlyNBytesThenCutsEveryConnection(t *testing.T) {
	got := make(chan int64, 4)
	target := serve(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		got <- n
	})
	p := start(t, target, Options{RTT: 10 * time.Millisecond})
	idle := dial(t, p.Addr()) // carries one byte; the link drop ends it too
	if _, err := idle.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle byte to arrive", func() bool { return p.Up() == 1 })

	const cut = 50_000
	p.CutAfter(cut)
	busy := dial(t, p.Addr())
	go func() { _, _ = busy.Write(make([]byte, 3*cut)) }() // fails once cut
	a, b := <-got, <-got
	if min(a, b) != 1 || max(a, b) != cut {
		t.Fatalf("server got %d and %d bytes, want 1 and %d", a, b, cut)
	}
	for _, c := range []net.Conn{idle, busy} {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a client connection is still open after the cut")
		}
	}
	if p.Up() != cut+1 || p.Cuts() != 1 {
		t.Fatalf("Up, Cuts = %d, %d; want %d, 1", p.Up(), p.Cuts(), cut+1)
	}

	// The link is back: a later connection passes whole, end of stream included.
	later := dial(t, p.Addr())
	if _, err := later.Write(make([]byte, 2*cut)); err != nil {
		t.Fatal(err)
	}
	if err := later.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != 2*cut {
		t.Fatalf("after the cut the server got %d bytes, want %d", n, 2*cut)
	}
}

func TestRateCapsTheLink(t *testing.T) {
	const rate = 16 << 20
	const size = 4 << 20
	p := start(t, serve(t, sink), Options{RTT: 2 * time.Millisecond, Rate: rate})
	c := dial(t, p.Addr())
	t0 := time.Now()
	if err := binary.Write(c, binary.BigEndian, int64(size)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil || got != size {
		t.Fatalf("sink read %d of %d: %v", got, size, err)
	}
	d := time.Since(t0)
	if want := time.Duration(size) * time.Second / rate; d < want {
		t.Fatalf("%d bytes at %d B/s took %v, want ≥ %v", size, rate, d, want)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestCloseEndsEveryGoroutine(t *testing.T) {
	// A server that never reads: the proxy's queue fills and its reader blocks.
	stuck := make(chan struct{})
	target := serve(t, func(c net.Conn) { <-stuck })
	t.Cleanup(func() { close(stuck) }) // before serve's cleanup waits for its handlers
	p, err := Listen(target, Options{RTT: time.Hour, QueueBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		c := dial(t, p.Addr())
		go func() { _, _ = c.Write(make([]byte, 4<<20)) }() // ends when c closes
	}
	// Wait until the proxy holds all three connections, writers parked on an
	// hour-long timer and readers on a full queue.
	waitFor(t, "three proxied connections", func() bool { return countProxyGoroutines() >= 3*5+1 })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// Close joined them; a stack may take a moment to unwind after Done.
	waitFor(t, "no proxy goroutine after Close", func() bool { return countProxyGoroutines() == 0 })
}

func proxyStacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("netdelay.(*Proxy)")) || bytes.Contains(g, []byte("netdelay.(*queue)")) {
			out = append(out, string(g))
		}
	}
	return strings.Join(out, "\n\n")
}

func countProxyGoroutines() int {
	s := proxyStacks()
	if s == "" {
		return 0
	}
	return strings.Count(s, "\n\ngoroutine ") + 1
}

// BenchmarkBulk reports what the proxy itself costs: CPU seconds per GB
// carried, 4 connections through RTT 20 ms.
func BenchmarkBulk(b *testing.B) {
	const conns, per = 4, 64 << 20
	p := start(b, serve(b, sink), Options{RTT: 20 * time.Millisecond})
	cpu0 := cpuTime()
	t0 := time.Now()
	for range b.N {
		if err := eachConn(p.Addr(), conns, func(c net.Conn) error { return toSink(c, per) }); err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(t0)
	cpu := cpuTime() - cpu0
	gb := float64(b.N*conns*per) / 1e9
	b.ReportMetric(gb*1e3/d.Seconds(), "MB/s")
	b.ReportMetric(cpu.Seconds()/gb, "cpu-s/GB")
}

// BenchmarkSmall: many connections exchanging small messages, as SFTP
// requests for small files do; reports CPU per message through the proxy.
func BenchmarkSmall(b *testing.B) {
	const conns, msgs = 16, 200
	p := start(b, serve(b, echo), Options{RTT: 2 * time.Millisecond})
	cpu0 := cpuTime()
	for range b.N {
		err := eachConn(p.Addr(), conns, func(c net.Conn) error {
			buf := make([]byte, 100)
			for range msgs {
				if _, err := c.Write(buf); err != nil {
					return err
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*conns*msgs), "cpu-µs/roundtrip")
}

// cpuTime is the CPU this process used so far: client, proxy and server of
// a benchmark together.
func cpuTime() time.Duration { return cputime.Self() }

// eachConn dials addr n times at once and runs talk on each connection; it
// returns the first error.
func eachConn(addr string, n int, talk func(net.Conn) error) error {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				err = talk(c)
				c.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// toSink sends n bytes to a sink and waits for its count.
func toSink(c net.Conn, n int) error {
	if err := binary.Write(c, binary.BigEndian, int64(n)); err != nil {
		return err
	}
	payload := make([]byte, 256<<10)
	for sent := 0; sent < n; sent += len(payload) {
		if _, err := c.Write(payload[:min(len(payload), n-sent)]); err != nil {
			return err
		}
	}
	var got int64
	if err := binary.Read(c, binary.BigEndian, &got); err != nil || got != int64(n) {
		return fmt.Errorf("sink read %d of %d: %v", got, n, err)
	}
	return nil
}
