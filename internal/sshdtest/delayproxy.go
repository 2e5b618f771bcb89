package sshdtest

import (
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/netdelay"
)

// StartDelayProxy puts a link of the given round trip in front of target (a
// Server's Addr, say) until the test ends: dial its Addr() instead, after
// Pin-ning that address when it is an sshd. RTT 0 still proxies, undelayed.
func StartDelayProxy(t testing.TB, target string, rtt time.Duration) *netdelay.Proxy {
	t.Helper()
	return StartDelayProxyWith(t, target, netdelay.Options{RTT: rtt})
}

// StartDelayProxyWith is StartDelayProxy with every option: a rate cap, a
// cut after N bytes, a queue size.
func StartDelayProxyWith(t testing.TB, target string, opt netdelay.Options) *netdelay.Proxy {
	t.Helper()
	p, err := netdelay.Listen(target, opt)
	must(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}
