package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// timedEvent is an engine event and when the test heard it.
type timedEvent struct {
	delivery.Event
	heard time.Time
}

// eventsOf collects the engine's events of the given types on a channel.
func eventsOf(types ...string) (func(delivery.Event), <-chan timedEvent) {
	ch := make(chan timedEvent, 64)
	want := map[string]bool{}
	for _, t := range types {
		want[t] = true
	}
	return func(ev delivery.Event) {
		if want[ev.Type] {
			select {
			case ch <- timedEvent{ev, time.Now()}:
			default:
			}
		}
	}, ch
}

func nextEvent(t *testing.T, ch <-chan timedEvent, within time.Duration, what string) timedEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(within):
		t.Fatalf("no %s within %v", what, within)
	}
	return timedEvent{}
}

// TestServerBackNoticedOnLogin: the server is away when a file is to be sent, long enough for
// destination.unreachable and a retry backoff of a minute. Once it is back, the engine's
// reachability probe notices within seconds (not at the end of the backoff), and
// destination.back goes out and /healthz turns healthy on the first login, while the file
// (throttled to 1 MiB/s) is still on its way, not when it is done.
func TestServerBackNoticedOnLogin(t *testing.T) {
	srv := sshdtest.Start(t)
	p := sshdtest.StartProxy(t, srv.Addr)
	srv.Pin(t, p.Addr)
	url := fmt.Sprintf("sftp://%s@%s%s", srv.User, p.Addr, srv.Dir)
	e := newE2EWith(t, "", url, srv.IdentityFile, srv.KnownHosts, "poll", "alert_after = \"300ms\"\nbandwidth = \"1MiB\"\n")
	tap, events := eventsOf(delivery.EventDestinationDown, delivery.EventDestinationBack, delivery.EventFileDelivered)
	var eng atomic.Pointer[delivery.Engine]
	e.hooks = daemonHooks{
		// A backoff that has grown to a minute, as after a long outage.
		engineOptions: func(o *delivery.Options) { o.RetryBase, o.RetryMax = time.Minute, time.Minute },
		events:        tap,
		engine:        func(en *delivery.Engine) { eng.Store(en) },
	}
	p.SetDown(true)
	e.start()
	src := filepath.Join(e.folder("SR-1"), "ep1_fr-FR.ttml")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, 6<<20)

	down := nextEvent(t, events, 20*time.Second, "destination.unreachable")
	if down.Type != delivery.EventDestinationDown {
		t.Fatalf("first event = %s, want %s", down.Type, delivery.EventDestinationDown)
	}
	if !eng.Load().Unreachable() {
		t.Errorf("after destination.unreachable, Unreachable() = false (/healthz would answer 200)")
	}
	upAt := time.Now()
	p.SetDown(false)
	back := nextEvent(t, events, 10*time.Second, "destination.back after the server's return")
	took := back.heard.Sub(upAt)
	t.Logf("figure: server back → destination.back in %v (retry backoff %v)", took.Round(time.Millisecond), time.Minute)
	if back.Type != delivery.EventDestinationBack {
		t.Fatalf("event after the server's return = %s, want %s first (on login, before the file is done)", back.Type, delivery.EventDestinationBack)
	}
	if took > 5*time.Second {
		t.Errorf("destination.back %v after the server's return, want within 5s", took)
	}
	if eng.Load().Unreachable() {
		t.Errorf("after destination.back, Unreachable() = true (/healthz would answer 503)")
	}
	done := nextEvent(t, events, 30*time.Second, "file.delivered")
	if done.Type != delivery.EventFileDelivered {
		t.Fatalf("event = %s, want %s", done.Type, delivery.EventFileDelivered)
	}
	t.Logf("figure: destination.back came %v before the file was delivered", done.heard.Sub(back.heard).Round(time.Millisecond))
	if done.File == nil || done.File.Verified != "hash" {
		t.Errorf("file.delivered event file = %+v, want verified \"hash\" (verify = \"auto\" on a server with sha256sum)", done.File)
	}
	sameContent(t, src, filepath.Join(srv.Dir, "PKG-1", "Subtitle", "ep1_fr-FR.ttml"))
}
