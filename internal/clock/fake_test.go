package clock

import (
	"testing"
	"time"
)

func TestFakeTicker(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(t0)
	tk := c.NewTicker(10 * time.Second)
	defer tk.Stop()
	never := c.NewTicker(0)
	defer never.Stop()

	tests := []struct {
		advance time.Duration
		fires   bool
		tick    time.Duration // since t0, when fires
	}{
		{9 * time.Second, false, 0},
		{1 * time.Second, true, 10 * time.Second},
		{5 * time.Second, false, 0},
		{30 * time.Second, true, 40 * time.Second}, // several periods: one tick, the last due
		{10 * time.Second, true, 50 * time.Second},
	}
	elapsed := time.Duration(0)
	for i, tt := range tests {
		elapsed += tt.advance
		c.Advance(tt.advance)
		if got := c.Now(); !got.Equal(t0.Add(elapsed)) {
			t.Fatalf("step %d: Now() = %v, want %v", i, got, t0.Add(elapsed))
		}
		select {
		case got := <-tk.C():
			if !tt.fires {
				t.Fatalf("step %d: ticker fired at %v, want no tick", i, got)
			}
			if want := t0.Add(tt.tick); !got.Equal(want) {
				t.Fatalf("step %d: tick = %v, want %v", i, got, want)
			}
		default:
			if tt.fires {
				t.Fatalf("step %d: ticker did not fire", i)
			}
		}
		select {
		case <-never.C():
			t.Fatalf("step %d: a ticker with period 0 fired", i)
		default:
		}
	}

	// An unread tick is dropped, never blocking Advance; Stop silences it.
	c.Advance(10 * time.Second)
	c.Advance(10 * time.Second)
	<-tk.C()
	tk.Stop()
	c.Advance(time.Minute)
	select {
	case <-tk.C():
		t.Fatal("stopped ticker fired")
	default:
	}
}

// After fires once the fake time reaches it, never before; a skipping Fake moves by what is
// waited for and fires at once.
func TestFakeAfter(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFake(t0)
	late, soon := c.After(10*time.Second), c.After(5*time.Second)
	if n := c.Advance(4 * time.Second); n != 0 {
		t.Fatalf("Advance(4s) fired %d timers, want 0", n)
	}
	select {
	case <-soon:
		t.Fatal("a 5 s timer fired at 4 s")
	default:
	}
	if n := c.Advance(6 * time.Second); n != 2 {
		t.Fatalf("Advance to 10 s fired %d timers, want 2", n)
	}
	if got := <-soon; !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("5 s timer carried %v, want its due time", got)
	}
	if got := <-late; !got.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("10 s timer carried %v, want its due time", got)
	}
	if n := c.Advance(time.Hour); n != 0 {
		t.Errorf("fired timers fired again: %d", n)
	}

	s := NewSkipping(t0)
	if got := <-s.After(time.Hour); !got.Equal(t0.Add(time.Hour)) || !s.Now().Equal(got) {
		t.Errorf("skipping After(1h) = %v, Now %v; want both an hour on", got, s.Now())
	}
}
