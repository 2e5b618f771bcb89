package watcher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

func TestQueue(t *testing.T) {
	tests := []struct {
		name         string
		events       int
		errs         []error
		wantEvents   int
		wantErrs     int
		wantOverflow bool
	}{
		{"events kept in order", 3, nil, 3, 0, false},
		{"kernel overflow flags a rescan", 2, []error{fsnotify.ErrEventOverflow}, 2, 0, true},
		{"wrapped overflow too", 0, []error{errors.Join(errors.New("x"), fsnotify.ErrEventOverflow)}, 0, 0, true},
		{"other errors are kept", 0, []error{errors.New("read failed")}, 0, 1, false},
		{"too many events become a rescan", maxQueued + 5, nil, 4, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueue()
			for i := range tt.events {
				q.pushEvent(fsnotify.Event{Name: string(rune('a' + i%26)), Op: fsnotify.Write})
			}
			for _, err := range tt.errs {
				q.pushErr(err)
			}
			select {
			case <-q.ready:
			default:
				if tt.events > 0 || len(tt.errs) > 0 {
					t.Fatal("queue not signalled")
				}
			}
			evs, errs, overflow := q.take()
			if len(evs) != tt.wantEvents || len(errs) != tt.wantErrs || overflow != tt.wantOverflow {
				t.Fatalf("take() = %d events, %d errors, overflow %v; want %d, %d, %v",
					len(evs), len(errs), overflow, tt.wantEvents, tt.wantErrs, tt.wantOverflow)
			}
			if tt.name == "events kept in order" && (evs[0].Name != "a" || evs[2].Name != "c") {
				t.Fatalf("order lost: %v", evs)
			}
		})
	}
}

// drain must keep taking from fsnotify while nobody takes from the queue.
func TestDrainNeverBlocks(t *testing.T) {
	q := newQueue()
	events, errs := make(chan fsnotify.Event), make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { drain(ctx, events, errs, q); close(done) }()
	for i := range 1000 {
		select {
		case events <- fsnotify.Event{Name: "f", Op: fsnotify.Write}:
		case <-time.After(5 * time.Second):
			t.Fatalf("drain blocked after %d events", i)
		}
	}
	errs <- fsnotify.ErrEventOverflow
	cancel()
	<-done
	evs, _, overflow := q.take()
	if len(evs) != 1000 || !overflow {
		t.Fatalf("queued %d events, overflow %v; want 1000, true", len(evs), overflow)
	}

	// Channels closed behind the watcher's back: reported, then drain ends.
	q = newQueue()
	events, errs = make(chan fsnotify.Event), make(chan error)
	close(events)
	close(errs)
	drain(context.Background(), events, errs, q)
	if _, e, _ := q.take(); len(e) != 1 || !errors.Is(e[0], errNotifierClosed) {
		t.Fatalf("closed channels reported %v, want errNotifierClosed", e)
	}
}
