package backoff

import (
	"testing"
	"time"
)

func TestStep(t *testing.T) {
	p := Policy{Base: time.Second, Max: 5 * time.Minute}
	for _, tt := range []struct {
		failures int
		want     time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second},
		{9, 256 * time.Second}, {10, 5 * time.Minute}, {1000, 5 * time.Minute},
	} {
		if got := p.Step(tt.failures); got != tt.want {
			t.Errorf("Step(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
	if got := (Policy{Base: time.Minute, Max: time.Second}).Step(3); got != time.Minute {
		t.Errorf("Step with Max below Base = %v, want Base (1m)", got)
	}
}

// TestDelayJitter: the wait lies in [step/2, step], each end reached by the draw that gives it.
func TestDelayJitter(t *testing.T) {
	var asked int64
	low := Policy{Base: 2 * time.Second, Max: 10 * time.Minute, Rand: func(n int64) int64 { asked = n; return 0 }}
	if got := low.Delay(3); got != 4*time.Second {
		t.Errorf("Delay(3) drawing 0 = %v, want 4s (half of the 8s step)", got)
	}
	if asked != int64(4*time.Second)+1 {
		t.Errorf("Delay(3) drew from [0, %d), want [0, %d)", asked, int64(4*time.Second)+1)
	}
	high := low
	high.Rand = func(n int64) int64 { return n - 1 }
	if got := high.Delay(3); got != 8*time.Second {
		t.Errorf("Delay(3) drawing the most = %v, want the whole 8s step", got)
	}
	if got := high.Delay(100); got != 10*time.Minute {
		t.Errorf("Delay(100) = %v, want the 10m cap", got)
	}
}

// TestDelayRandom: with the real source, waits stay in bounds and are not all the same.
func TestDelayRandom(t *testing.T) {
	p := Policy{Base: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Delay(4)
		if d < 4*time.Second || d > 8*time.Second {
			t.Fatalf("Delay(4) = %v, want within [4s, 8s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Errorf("200 delays took %d distinct values: no jitter", len(seen))
	}
	if got := (Policy{}).Delay(3); got != 0 {
		t.Errorf("zero Policy Delay = %v, want 0", got)
	}
}
