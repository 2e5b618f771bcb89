package report

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
)

// fakeControl records the buttons pressed.
type fakeControl struct {
	calls       atomic.Int32
	unreachable atomic.Bool
}

func (f *fakeControl) Retry(_ context.Context, id string) error {
	f.calls.Add(1)
	if id != "SR-1" {
		return delivery.ErrUnknown
	}
	return nil
}
func (f *fakeControl) RetryFile(context.Context, string) error { f.calls.Add(1); return nil }
func (f *fakeControl) Deliver(context.Context, string) error   { f.calls.Add(1); return nil }
func (f *fakeControl) Unreachable() bool                       { return f.unreachable.Load() }

func newTestServer(t *testing.T, listen, token string) (*httptest.Server, *Hub, *Metrics, *fakeControl) {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "state.db"))
	t.Cleanup(func() { st.Close() })
	m := NewMetrics()
	h := NewHub(HubOptions{Store: st, Metrics: m, Logger: quietLogger()})
	ctl := &fakeControl{}
	s, err := NewServer(ServerOptions{Listen: listen, Token: token, Hub: h, Metrics: m, Store: st, Control: ctl, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts, h, m, ctl
}

func do(t *testing.T, method, u string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestReportServerRefusesForeignHostAndOrigin(t *testing.T) {
	ts, _, _, ctl := newTestServer(t, "127.0.0.1:8470", "")
	retry := ts.URL + "/api/requests/SR-1/retry"
	tests := []struct {
		name   string
		method string
		url    string
		hdr    map[string]string
		want   int
	}{
		{"own host", "GET", ts.URL + "/api/requests", nil, 200},
		{"localhost", "GET", ts.URL + "/api/requests", map[string]string{"Host": "localhost:8470"}, 200},
		{"foreign host (DNS rebinding)", "GET", ts.URL + "/api/requests", map[string]string{"Host": "evil.example:8470"}, 403},
		{"foreign host on POST", "POST", retry, map[string]string{"Host": "attacker.test"}, 403},
		{"POST with foreign Origin", "POST", retry, map[string]string{"Origin": "https://evil.example"}, 403},
		{"POST cross-site fetch", "POST", retry, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"POST same origin", "POST", retry, map[string]string{"Origin": ts.URL}, 202},
		{"POST from a non-browser client", "POST", retry, nil, 202},
		{"POST for an unknown request", "POST", ts.URL + "/api/requests/SR-9/retry", nil, 404},
	}
	for _, tt := range tests {
		resp, body := do(t, tt.method, tt.url, tt.hdr)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s = %d (%s), want %d", tt.name, tt.method, tt.url, resp.StatusCode, strings.TrimSpace(body), tt.want)
		}
	}
	if n := ctl.calls.Load(); n != 3 {
		t.Errorf("engine control called %d times, want 3 (refused requests must not reach it)", n)
	}
	// The refusal names the Host and the setting that allows it (operator review, item 3).
	want := `Forbidden: the Host "evil.example" is not one hotdrop answers to (a guard against DNS rebinding); expected the listen address or a name in status.hosts: use the listen address, or add "evil.example" to status.hosts under [status]`
	if _, body := do(t, "GET", ts.URL+"/api/requests", map[string]string{"Host": "Evil.Example.:8470"}); !strings.Contains(body, want) {
		t.Errorf("foreign Host refused with %q, want it saying %q", strings.TrimSpace(body), want)
	}
}

// TestReportServerLoopbackPostNeedsTokenWhenSet: on loopback any local user can connect, so
// with a token configured, retry and deliver need it (or the logged-in dashboard's cookie);
// reading stays open as before.
func TestReportServerLoopbackPostNeedsTokenWhenSet(t *testing.T) {
	ts, _, _, ctl := newTestServer(t, "127.0.0.1:8470", "t0ken")
	retry := ts.URL + "/api/requests/SR-1/retry"
	if resp, _ := do(t, "GET", ts.URL+"/api/requests", nil); resp.StatusCode != 200 {
		t.Errorf("GET on loopback without the token = %d, want 200", resp.StatusCode)
	}
	if resp, body := do(t, "POST", retry, nil); resp.StatusCode != 401 || !strings.Contains(body, "status.token_file") {
		t.Errorf("POST on loopback without the token = %d %q, want 401 naming status.token_file", resp.StatusCode, body)
	}
	if resp, _ := do(t, "POST", retry, map[string]string{"Origin": ts.URL}); resp.StatusCode != 401 {
		t.Errorf("same-origin POST on loopback without the token = %d, want 401", resp.StatusCode)
	}
	if n := ctl.calls.Load(); n != 0 {
		t.Fatalf("engine control called %d times without the token, want 0", n)
	}
	if resp, _ := do(t, "POST", retry, map[string]string{"Authorization": "Bearer t0ken"}); resp.StatusCode != 202 {
		t.Errorf("POST with the token = %d, want 202", resp.StatusCode)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(ts.URL+"/login", url.Values{"token": {"t0ken"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cookies))
	}
	if resp, _ := do(t, "POST", retry, map[string]string{"Cookie": cookies[0].Name + "=" + cookies[0].Value, "Origin": ts.URL}); resp.StatusCode != 202 {
		t.Errorf("dashboard POST with its session cookie = %d, want 202", resp.StatusCode)
	}
}

func TestReportServerOffLoopbackNeedsToken(t *testing.T) {
	if _, err := NewServer(ServerOptions{Listen: "0.0.0.0:8470"}); err == nil {
		t.Fatal("NewServer accepted a non-loopback address without a token")
	}
	ts, _, _, ctl := newTestServer(t, "0.0.0.0:8470", "t0ken")
	u := ts.URL + "/api/requests"
	if resp, _ := do(t, "GET", u, nil); resp.StatusCode != 401 {
		t.Errorf("GET without token = %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", ts.URL+"/", map[string]string{"Accept": "text/html"}); resp.StatusCode != 303 || resp.Header.Get("Location") != "/login" {
		t.Errorf("GET / without token = %d to %q, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := do(t, "GET", u, map[string]string{"Authorization": "Bearer wrong"}); resp.StatusCode != 401 {
		t.Errorf("GET with a wrong token = %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", u, map[string]string{"Authorization": "Bearer t0ken"}); resp.StatusCode != 200 {
		t.Errorf("GET with the token = %d, want 200", resp.StatusCode)
	}
	// Bearer token passes a foreign Origin: it is not a browser's ambient credential.
	if resp, _ := do(t, "POST", ts.URL+"/api/requests/SR-1/deliver", map[string]string{"Authorization": "Bearer t0ken", "Origin": "https://other.example"}); resp.StatusCode != 202 {
		t.Errorf("POST with the token = %d, want 202", resp.StatusCode)
	}
	// The login form sets an HTTP-only cookie that then opens the API.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.PostForm(ts.URL+"/login", url.Values{"token": {"t0ken"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		cookie = c
	}
	if cookie == nil || !cookie.HttpOnly || cookie.Value == "t0ken" {
		t.Fatalf("login cookie = %+v, want an HTTP-only session cookie that is not the token", cookie)
	}
	if resp, _ := do(t, "GET", u, map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}); resp.StatusCode != 200 {
		t.Errorf("GET with the session cookie = %d, want 200", resp.StatusCode)
	}
	if resp, _ := do(t, "POST", ts.URL+"/api/requests/SR-1/retry", map[string]string{"Cookie": cookie.Name + "=" + cookie.Value, "Origin": "https://evil.example"}); resp.StatusCode != 403 {
		t.Errorf("cross-origin POST with the cookie = %d, want 403", resp.StatusCode)
	}
	if n := ctl.calls.Load(); n != 1 {
		t.Errorf("engine control called %d times, want 1", n)
	}
}

func TestReportMetricsAndHealth(t *testing.T) {
	ts, h, _, ctl := newTestServer(t, "127.0.0.1:8470", "")
	at := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	req := &delivery.EventRequest{ID: "SR-1", State: "uploading"}
	h.RequestChanged(delivery.RequestView{ID: "SR-1", State: delivery.Uploading, Fields: map[string]string{"title": "W"},
		Files: []delivery.FileView{{ID: 1, Name: "a.wav", State: delivery.Uploading, Size: 1000, Done: 400}}})
	h.RequestChanged(delivery.RequestView{ID: "SR-2", State: delivery.Held,
		Files: []delivery.FileView{{ID: 2, Name: "b.wav", State: delivery.Held, Reason: "too_many_files", Message: "x"}}})
	h.Emit(delivery.Event{ID: "e1", Type: delivery.EventFileUploading, At: at, Request: req, File: &delivery.EventFile{ID: 1, Size: 1000}})
	h.Emit(delivery.Event{ID: "e2", Type: delivery.EventFileDelivered, At: at.Add(90 * time.Second), Request: req, File: &delivery.EventFile{ID: 1, Size: 1000}})
	h.Emit(delivery.Event{ID: "e3", Type: delivery.EventFileFailed, At: at, Request: req, File: &delivery.EventFile{ID: 3}, Reason: &delivery.EventReason{Code: "no_space"}})

	_, body := do(t, "GET", ts.URL+"/metrics", nil)
	for _, want := range []string{
		"hotdrop_files_delivered_total 1",
		"hotdrop_bytes_delivered_total 1000",
		`hotdrop_errors_total{kind="no_space"} 1`,
		`hotdrop_requests{state="uploading"} 1`,
		`hotdrop_requests{state="held"} 1`,
		`hotdrop_requests{state="delivered"} 0`,
		"hotdrop_queue_bytes 600",
		"hotdrop_upload_duration_seconds_count 1",
		"hotdrop_upload_duration_seconds_sum 90",
		"hotdrop_last_delivery_timestamp_seconds " + strconv.FormatFloat(float64(at.Add(90*time.Second).Unix()), 'g', -1, 64),
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if resp, _ := do(t, "GET", ts.URL+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("/healthz = %d, want 200", resp.StatusCode)
	}
	ctl.unreachable.Store(true)
	if resp, _ := do(t, "GET", ts.URL+"/healthz", nil); resp.StatusCode != 503 {
		t.Errorf("/healthz while unreachable = %d, want 503", resp.StatusCode)
	}
	_, body = do(t, "GET", ts.URL+"/api/requests/SR-1", nil)
	if !strings.Contains(body, `"id":"e2"`) || !strings.Contains(body, `"done":400`) {
		t.Errorf("/api/requests/SR-1 = %s, want its journaled events and progress", body)
	}
}

func TestReportEventStream(t *testing.T) {
	ts, h, _, _ := newTestServer(t, "127.0.0.1:8470", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	waitFor(t, "the subscription", func() bool { return h.subscribers() == 1 })
	h.Emit(delivery.Event{ID: "ev_x", Type: delivery.EventFileDelivered, At: time.Now(), Request: &delivery.EventRequest{ID: "SR-1"}, File: &delivery.EventFile{ID: 1}})
	h.Emit(delivery.Event{ID: "ev_p", Type: delivery.EventFileProgress, At: time.Now(), Request: &delivery.EventRequest{ID: "SR-1"}, File: &delivery.EventFile{ID: 1}, Progress: &delivery.Progress{Bytes: 5, Total: 10}})
	sc := bufio.NewScanner(resp.Body)
	var seen []string
	for len(seen) < 2 && sc.Scan() {
		if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			seen = append(seen, ev)
		}
	}
	if len(seen) < 2 || seen[0] != "file.delivered" || seen[1] != "file.progress" {
		t.Errorf("stream events = %v, want file.delivered, file.progress", seen)
	}
	evs, _ := h.st.Events(ctx, 0, "", 100)
	for _, ev := range evs {
		if ev.Type == delivery.EventFileProgress {
			t.Errorf("file.progress was journaled")
		}
	}
}

func TestReportSlowSubscriberIsToldToResync(t *testing.T) {
	h := NewHub(HubOptions{Logger: quietLogger()})
	sub, leave := h.subscribe()
	defer leave()
	done := make(chan struct{})
	go func() {
		// The engine's loop never waits for a subscriber that does not read.
		for i := 0; i < subscriberBuffer+10; i++ {
			h.Emit(delivery.Event{ID: "p", Type: delivery.EventFileProgress, At: time.Now()})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Emit blocked on a subscriber that does not read")
	}
	select {
	case <-sub.lost:
	default:
		t.Error("the subscriber was not told it lost frames")
	}
	if len(sub.ch) != subscriberBuffer {
		t.Errorf("buffer holds %d frames, want %d", len(sub.ch), subscriberBuffer)
	}
}

// selfSigned writes a throw-away certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hotdrop test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

func TestReportServerHTTPS(t *testing.T) {
	cert, key := selfSigned(t)
	s, err := NewServer(ServerOptions{Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key, Hub: NewHub(HubOptions{}), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	pool := x509.NewCertPool()
	pemData, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pemData)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz over HTTPS = %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP answered on the HTTPS address")
	}
}
