package report

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
)

// servedOnLoopback runs a Server on 127.0.0.1 until the test ends.
func servedOnLoopback(t *testing.T, h *Hub) *Server {
	t.Helper()
	s, err := NewServer(ServerOptions{Listen: "127.0.0.1:0", Hub: h, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// TestAHeldBackBodyIsCut: a client that sends its headers and then holds back the body it
// promised (POST /login takes no token) is cut once the request took readTimeout; it held
// its connection, and a descriptor, for good (found by an attacker's review).
func TestAHeldBackBodyIsCut(t *testing.T) {
	defer func(d time.Duration) { readTimeout = d }(readTimeout)
	readTimeout = 300 * time.Millisecond
	s := servedOnLoopback(t, NewHub(HubOptions{}))
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /login HTTP/1.1\r\nHost: "+s.Addr()+"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 4000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c) // the answer, if any, then the end of the connection
	if err != nil {
		t.Fatalf("the connection was not closed by the server: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	}
}

// TestEventStreamOutlivesTheReadTimeout: the event stream clears the read deadline the
// server sets on every request.
func TestEventStreamOutlivesTheReadTimeout(t *testing.T) {
	defer func(d time.Duration) { readTimeout = d }(readTimeout)
	readTimeout = 200 * time.Millisecond
	h := NewHub(HubOptions{})
	s := servedOnLoopback(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Addr()+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	waitFor(t, "the subscription", func() bool { return h.subscribers() == 1 })
	<-time.After(3 * readTimeout) // past the read deadline a request would have had
	h.Emit(delivery.Event{ID: "ev_late", Type: delivery.EventFileDelivered, At: time.Now(), Request: &delivery.EventRequest{ID: "SR-1"}, File: &delivery.EventFile{ID: 1}})
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "ev_late") {
			return
		}
	}
	t.Fatalf("the stream ended before the event sent after the read timeout: %v", sc.Err())
}

// fakeListener hands out the connections sent on conns.
type fakeListener struct {
	conns chan net.Conn
	once  sync.Once
	done  chan struct{}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *fakeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestConnectionsAreCapped: beyond maxConns open connections, the next is taken only once one
// of them closes.
func TestConnectionsAreCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := &fakeListener{conns: make(chan net.Conn, 3), done: make(chan struct{})}
		for range 3 {
			a, b := net.Pipe()
			defer b.Close()
			inner.conns <- a
		}
		ln := limitConns(inner, 2)
		defer ln.Close()
		first, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ln.Accept(); err != nil {
			t.Fatal(err)
		}
		third := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				third <- c
			}
		}()
		synctest.Wait()
		if len(inner.conns) != 1 || len(third) != 0 {
			t.Fatalf("a third connection was taken with two open and a cap of two")
		}
		first.Close()
		first.Close() // closing twice frees one place, not two
		synctest.Wait()
		if c := <-third; c == nil {
			t.Fatal("no third connection")
		} else {
			c.Close()
		}
	})
}

// TestWrongTokensAreThrottled: wrong tokens from one address, as Authorization or to the
// login form, are answered 401 until its bucket is empty, then 429 without being looked at;
// the right token costs nothing, and a session cookie is never throttled.
func TestWrongTokensAreThrottled(t *testing.T) {
	ts, _, _, _ := newTestServer(t, "0.0.0.0:8470", "the-right-token-0123456789")
	u := ts.URL + "/api/requests"
	right := map[string]string{"Authorization": "Bearer the-right-token-0123456789"}
	for i := range 50 {
		if resp, _ := do(t, "GET", u, right); resp.StatusCode != 200 {
			t.Fatalf("right token #%d = %d, want 200: the right token costs nothing", i, resp.StatusCode)
		}
	}
	codes := map[int]int{}
	for i := range 30 {
		hdr := map[string]string{"Authorization": fmt.Sprintf("Bearer guess-%d", i)}
		resp, _ := do(t, "GET", u, hdr)
		codes[resp.StatusCode]++
	}
	if codes[401] > guessBurst+2 || codes[429] == 0 {
		t.Errorf("30 wrong tokens at once: %v; want at most about %d answered 401, the rest 429", codes, guessBurst)
	}
	resp, err := http.PostForm(ts.URL+"/login", url.Values{"token": {"another-guess"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the login form right after = %d, want 429", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", ts.URL+"/app.css", map[string]string{"Cookie": sessionCookie + "=stale"}); resp.StatusCode != 200 {
		t.Errorf("a stale session cookie = %d, want it not throttled (200 for a public file)", resp.StatusCode)
	}
}

// stuckControl is an engine whose loop does not answer until released.
type stuckControl struct {
	fakeControl
	release chan struct{}
	waiting atomic.Int32
}

func (c *stuckControl) Retry(ctx context.Context, id string) error {
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	<-c.release
	return nil
}

// TestButtonPressesAreCapped: presses repeated against an engine that does not answer leave at
// most maxControls calls waiting on it (each outlives its request); beyond, a press is answered
// busy at once, and once the engine answers the places are free again.
func TestButtonPressesAreCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctl := &stuckControl{release: make(chan struct{})}
		s, err := NewServer(ServerOptions{Listen: "127.0.0.1:8470", Control: ctl, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		press := func() *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, httptest.NewRequest("POST", "http://127.0.0.1:8470/api/requests/SR-1/retry", nil))
			return w
		}
		codes := map[int]int{}
		for range 3 * maxControls {
			codes[press().Code]++ // each waits controlTimeout (fake time), then answers busy
		}
		synctest.Wait()
		if n := ctl.waiting.Load(); n != maxControls {
			t.Errorf("%d calls wait on the engine after %d presses, want %d", n, 3*maxControls, maxControls)
		}
		if codes[http.StatusServiceUnavailable] != 3*maxControls {
			t.Errorf("answers %v, want all %d busy (503)", codes, 3*maxControls)
		}
		close(ctl.release)
		synctest.Wait()
		if w := press(); w.Code != http.StatusAccepted {
			t.Errorf("a press once the engine answers: %d %s, want 202", w.Code, w.Body)
		}
	})
}
