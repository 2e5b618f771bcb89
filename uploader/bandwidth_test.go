package uploader

import (
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

func TestWindowContains(t *testing.T) {
	h := func(s string) time.Duration {
		d, err := ParseTimeOfDay(s)
		must(t, err)
		return d
	}
	day := Window{From: h("08:00"), To: h("20:00")}
	night := Window{From: h("22:00"), To: h("06:00")}
	tests := []struct {
		w    Window
		at   string
		want bool
	}{
		{day, "07:59", false}, {day, "08:00", true}, {day, "19:59", true}, {day, "20:00", false},
		{night, "21:59", false}, {night, "22:00", true}, {night, "23:59:59", true}, {night, "00:00", true},
		{night, "05:59", true}, {night, "06:00", false}, {night, "12:00", false},
	}
	for _, tt := range tests {
		if got := tt.w.contains(h(tt.at)); got != tt.want {
			t.Errorf("%v.contains(%s) = %v, want %v", tt.w, tt.at, got, tt.want)
		}
	}
	for _, bad := range []string{"8", "25:00", "12:60", ""} {
		if _, err := ParseTimeOfDay(bad); err == nil {
			t.Errorf("ParseTimeOfDay(%q) = nil error", bad)
		}
	}
}

// TestSSHDBandwidthSchedule sends 30 MiB through the real sshd with 4 MiB/s
// allowed until 08:00 local time and 2 MiB/s from then on, starting at
// 07:59:55 on the injected clock: 5 simulated seconds at each rate. The
// window opens during the upload and applies to it at once. Both the rate
// before 08:00 and the whole duration must be within 10 %.
func TestSSHDBandwidthSchedule(t *testing.T) {
	s := sshdtest.Start(t)
	y, m, d := time.Now().Date()
	start := time.Date(y, m, d, 7, 59, 55, 0, time.Local)
	clk := clock.NewSkipping(start)
	o := sshdOptions(s)
	o.Clock = clk
	o.Bandwidth = 4 << 20
	o.Schedule = []Window{{From: 8 * time.Hour, To: 20 * time.Hour, Bandwidth: 2 << 20}}
	u := newUploader(t, o)
	const size = 30 << 20
	j, _ := localFile(t, size, "bw/f.bin")
	var atEight int64 = -1
	j.Progress = func(done int64) {
		if atEight < 0 && !clk.Now().Before(start.Add(5*time.Second)) {
			atEight = done
		}
	}
	_, err := u.Upload(t.Context(), j)
	must(t, err)
	took := clk.Now().Sub(start)
	t.Logf("%d MiB in %v simulated; %.1f MiB sent by 08:00", size>>20, took, float64(atEight)/(1<<20))
	if took < 9*time.Second || took > 11*time.Second {
		t.Errorf("30 MiB at 4 then 2 MiB/s took %v simulated, want 10s ± 10%%", took)
	}
	if lo, hi := int64(18<<20), int64(22<<20); atEight < lo || atEight > hi {
		t.Errorf("%d bytes sent in the first 5 s at 4 MiB/s, want 20 MiB ± 10%%", atEight)
	}
}

// TestLimiterShared: with no limit the limiter never waits;
// two uploads together share one limit.
func TestLimiterShared(t *testing.T) {
	clk := clock.NewSkipping(time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local))
	l := newLimiter(clk, 0, nil)
	must(t, l.wait(t.Context(), 1<<30, nil, nil))
	if !clk.Now().Equal(time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local)) {
		t.Fatal("an unlimited limiter waited")
	}
	l.set(1<<20, nil)
	var wg sync.WaitGroup
	t0 := clk.Now()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 40 {
				must(t, l.wait(t.Context(), 128<<10, nil, nil))
			}
		}()
	}
	wg.Wait()
	// 2 x 40 x 128 KiB = 10 MiB at 1 MiB/s together: 10 s, not 5.
	if took := clk.Now().Sub(t0); took < 9*time.Second || took > 11*time.Second {
		t.Errorf("two uploads of 5 MiB at a shared 1 MiB/s took %v, want 10s ± 10%%", took)
	}
}

// manualClock's timers fire only when the test sends on fire, whatever they wait for.
type manualClock struct {
	*clock.Fake
	fire chan time.Time
}

func (c manualClock) After(time.Duration) <-chan time.Time { return c.fire }

// TestLimiterWaitHandlesAcks: while an upload waits for its bandwidth share, the
// acknowledgements of what it sent before are handled at once, not after the wait: at a
// low rate the wait is long, and an acknowledgement kept waiting is a checkpoint not
// written (a kill -9 then re-sent a whole wait's worth of every upload).
func TestLimiterWaitHandlesAcks(t *testing.T) {
	c := manualClock{Fake: clock.NewFake(time.Unix(1e9, 0)), fire: make(chan time.Time)}
	l := newLimiter(c, 32<<10, nil)
	done := make(chan writeDone)
	handled := make(chan writeDone, 1)
	waited := make(chan error, 1)
	go func() { waited <- l.wait(t.Context(), 32<<10, done, func(d writeDone) { handled <- d }) }()
	select {
	case done <- writeDone{off: 0, n: 32 << 10}: // received while the wait is blocked
	case err := <-waited:
		t.Fatalf("wait returned at once (%v); it must block for the rate", err)
	}
	if d := <-handled; d.n != 32<<10 {
		t.Errorf("handled %+v, want the acknowledgement sent", d)
	}
	select {
	case err := <-waited:
		t.Fatalf("wait returned (%v) before its time came", err)
	default:
	}
	for {
		select {
		case c.fire <- c.Now():
		case err := <-waited:
			must(t, err)
			return
		}
	}
}
