package sshdtest

import (
	"io"
	"net"
	"testing"
	"time"
)

// greeter is a TCP server that writes its name to every connection and keeps it open.
func greeter(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Write([]byte(name))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func greeting(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return "(silent)"
		}
		return "(closed)"
	}
	return string(buf)
}

// TestProxyRetargetAndCutAll: CutAll ends the connections open now; Retarget sends later
// ones elsewhere, or nowhere (a dead address: accepted, then closed); Accepted counts dials.
func TestProxyRetargetAndCutAll(t *testing.T) {
	p := StartProxy(t, greeter(t, "A"))
	old, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if g := greeting(t, old); g != "A" {
		t.Fatalf("first connection greeted by %q, want A", g)
	}
	dead, err := DeadAddr()
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ target, want string }{{greeter(t, "B"), "B"}, {dead, "(closed)"}} {
		p.Retarget(step.target)
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if g := greeting(t, c); g != step.want {
			t.Errorf("after Retarget: greeted by %q, want %q", g, step.want)
		}
		c.Close()
	}
	p.CutAll()
	if g := greeting(t, old); g != "(closed)" {
		t.Errorf("after CutAll the old connection still carries %q", g)
	}
	if n := p.Accepted(); n != 3 {
		t.Errorf("Accepted() = %d, want 3", n)
	}
}
