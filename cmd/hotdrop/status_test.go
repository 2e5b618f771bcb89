package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/report"
	"github.com/hotdrop/hotdrop/store"
)

var updateStatus = flag.Bool("update-status", false, "rewrite cmd/hotdrop/testdata/status*.golden")

// statusFixture is a config and a state database holding requests in several states.
func statusFixture(t *testing.T, listen string, extra ...string) (cfgPath string, st *store.Store) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "hotdrop.toml")
	cfg := fmt.Sprintf("state_dir = \"state\"\n[watch]\nroot = \"root\"\n[requests]\nfiles = []\n[destination]\nurl = \"file:///tmp/out\"\n[status]\nlisten = %q\n%s", listen, strings.Join(extra, "\n"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "state", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 6, 30, 0, 0, time.UTC)
	reqs := []store.Request{
		{ID: "SR-1042", Fields: `{"id":"SR-1042","title":"Wednesday","source_type":"Subtitle","language":"fr-FR","package_id":"PKG-77812","status":"open"}`, Status: "open", Files: 1, Folder: "/srv/d/Wednesday/Subtitle fr-FR [SR-1042]", State: "delivered"},
		{ID: "SR-1043", Fields: `{"id":"SR-1043","title":"Wednesday","source_type":"Audio M&E","package_id":"PKG-77812","status":"open"}`, Status: "open", Files: 2, Folder: "/srv/d/Wednesday/Audio M&E [SR-1043]", State: "held"},
		{ID: "SR-1044", Fields: `{"id":"SR-1044","title":"The Very Long Title Of A Documentary Series","source_type":"SDH/CC","language":"en-US","status":"cancelled"}`, Status: "cancelled", Files: 1, Folder: "/srv/d/x", State: "waiting"},
		{ID: "SR-1045", Fields: `{"id":"SR-1045","title":"Wednesday","source_type":"IMF","status":"open"}`, Status: "open", Files: 0, Folder: "/srv/d/Wednesday/IMF [SR-1045]", State: "failed"},
	}
	for _, r := range reqs {
		r.UpdatedAt = at
		if err := st.SaveRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	files := []store.File{
		{Path: "/srv/d/Wednesday/Subtitle fr-FR [SR-1042]/ep103_fr-FR.ttml", RequestID: "SR-1042", Size: 48213, State: "delivered", SHA256: "ab12", RemotePath: "PKG-77812/Subtitle/ep103_fr-FR.ttml", DeliveredAt: at},
		{Path: "/srv/d/Wednesday/Audio M&E [SR-1043]/me_51.wav", RequestID: "SR-1043", Size: 3 << 30, State: "ready"},
		{Path: "/srv/d/Wednesday/Audio M&E [SR-1043]/me_20.wav", RequestID: "SR-1043", Size: 1 << 30, State: "held", Reason: "invalid_name", Message: "the remote path for \"me_20.wav\" cannot be made from destination.path: missing {language}"},
		{Path: "/srv/d/Wednesday/IMF [SR-1045]/CPL.xml", RequestID: "SR-1045", Size: 9000, State: "failed", Reason: "no_space", Message: "the server's disk is full"},
		{Path: "/srv/d/_bin/stray.mov", RequestID: "", Size: 100, State: "held", Reason: "no_matching_request", Message: "no request matches"},
	}
	for _, f := range files {
		f.UpdatedAt, f.CreatedAt = at, at
		if _, err := st.SaveFile(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath, st
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateStatus {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/hotdrop -run Status -update-status)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (refresh with -update-status):\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return o.String(), e.String(), code
}

func TestStatusFromStateDatabase(t *testing.T) {
	cfgPath, _ := statusFixture(t, "")
	out, errOut, code := runCmd(t, "status", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "not running") {
		t.Errorf("stderr %q does not say the daemon is not running", errOut)
	}
	checkGolden(t, "status.golden", out)
	out, _, code = runCmd(t, "status", "SR-1043", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status SR-1043 exit %d", code)
	}
	checkGolden(t, "status_SR-1043.golden", out)
	out, _, _ = runCmd(t, "status", "--json", "--config", cfgPath, "SR-1042")
	if !strings.Contains(out, `"remote_path": "PKG-77812/Subtitle/ep103_fr-FR.ttml"`) {
		t.Errorf("status --json SR-1042 = %s", out)
	}
	if _, errOut, code := runCmd(t, "status", "SR-9", "--config", cfgPath); code != 1 || !strings.Contains(errOut, "SR-9 is not known") {
		t.Errorf("status SR-9 = exit %d, %q; want 1 and a plain message", code, errOut)
	}
	for _, cmd := range []string{"retry", "deliver"} {
		_, errOut, code := runCmd(t, cmd, "SR-1042", "--config", cfgPath)
		if code != 1 || !strings.Contains(errOut, "needs the running daemon") {
			t.Errorf("%s without a daemon = exit %d, %q; want 1 and a plain message", cmd, code, errOut)
		}
	}
}

// recordingControl is the engine as the API's buttons see it.
type recordingControl struct {
	mu    sync.Mutex
	calls []string
}

func (c *recordingControl) note(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, s)
	return nil
}
func (c *recordingControl) Retry(_ context.Context, id string) error { return c.note("retry " + id) }
func (c *recordingControl) RetryFile(_ context.Context, id string) error {
	return c.note("retry-file " + id)
}
func (c *recordingControl) Deliver(_ context.Context, id string) error {
	if id == "SR-1043" {
		return fmt.Errorf("request SR-1043 does not wait for a deliver: it is delivered: %w", delivery.ErrNothingToDo)
	}
	if id != "SR-1045" {
		return fmt.Errorf("request %s: %w", id, delivery.ErrUnknown)
	}
	return c.note("deliver " + id)
}
func (c *recordingControl) Unreachable() bool { return false }

func TestStatusRetryDeliverThroughTheDaemon(t *testing.T) {
	addr := freeAddr(t)
	cfgPath, st := statusFixture(t, addr)
	reqs, _ := st.Requests(context.Background())
	files, _ := st.Files(context.Background())
	hub := report.NewHub(report.HubOptions{Store: st, Logger: quietTestLogger()})
	hub.SetRequests(report.InfoFromStore(reqs, files))
	ctl := &recordingControl{}
	srv, err := report.NewServer(report.ServerOptions{Listen: addr, Socket: fixtureSocket(cfgPath), Hub: hub, Control: ctl, Logger: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	// Bound before Serve runs, as the daemon does, so the commands below find them.
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenSocket(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	// The daemon's answer prints exactly as the journal's.
	out, errOut, code := runCmd(t, "status", "--config", cfgPath)
	if code != 0 || errOut != "" {
		t.Fatalf("status exit %d: %s", code, errOut)
	}
	checkGolden(t, "status.golden", out)

	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"retry", "SR-1045"}, 0, "SR-1045: its failed and held files are being tried again"},
		{[]string{"retry", "/srv/d/Wednesday/IMF [SR-1045]/CPL.xml"}, 0, "CPL.xml: being tried again"},
		{[]string{"retry", "/srv/elsewhere/x.wav"}, 1, "is not a file hotdrop knows"},
		{[]string{"retry", "SR-nope"}, 1, "neither a request ID nor a file"},
		{[]string{"deliver", "SR-1045"}, 0, "SR-1045 released"},
		{[]string{"deliver", "SR-1043"}, 1, "hotdrop: request SR-1043 does not wait for a deliver: it is delivered: nothing to do"},
		{[]string{"deliver", "SR-9"}, 1, "request SR-9: unknown"},
	} {
		out, errOut, code := runCmd(t, append(tc.args, "--config", cfgPath)...)
		if code != tc.code || !strings.Contains(out+errOut, tc.out) {
			t.Errorf("hotdrop %s = exit %d, %q; want exit %d and %q", strings.Join(tc.args, " "), code, out+errOut, tc.code, tc.out)
		}
	}
	ctl.mu.Lock()
	defer ctl.mu.Unlock()
	want := "retry SR-1045|retry-file 4|deliver SR-1045"
	if got := strings.Join(ctl.calls, "|"); got != want {
		t.Errorf("engine calls = %q, want %q", got, want)
	}
}

func quietTestLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fixtureSocket is the daemon's socket for statusFixture's config.
func fixtureSocket(cfgPath string) string {
	return filepath.Join(filepath.Dir(cfgPath), "state", "hotdrop.sock")
}

// TestCommandsNeverSendTheTokenToTheListenPort: with the daemon stopped, any local user may
// hold status.listen. The commands talk to the daemon over its socket in state_dir only, so
// whatever holds the port gets neither a request nor the token; with the daemon running
// (a token on the port) they work through the socket without the token.
func TestCommandsNeverSendTheTokenToTheListenPort(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600)

	var squatted atomic.Int32
	squatter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		squatted.Add(1)
		if strings.Contains(r.Header.Get("Authorization"), "s3cret") {
			t.Errorf("the process on status.listen received the token")
		}
		fmt.Fprint(w, `{"requests": []}`)
	}))
	defer squatter.Close()
	addr := squatter.Listener.Addr().String()
	cfgPath, st := statusFixture(t, addr, fmt.Sprintf("token_file = %q\n", tokenFile))

	if out, errOut, code := runCmd(t, "status", "--config", cfgPath); code != 0 || !strings.Contains(errOut, "not running") || !strings.Contains(out, "SR-1045") {
		t.Errorf("status with the daemon stopped = exit %d, %q, %q; want the journal's view", code, out, errOut)
	}
	if _, errOut, code := runCmd(t, "deliver", "SR-1045", "--config", cfgPath); code != 1 || !strings.Contains(errOut, "needs the running daemon") {
		t.Errorf("deliver with the daemon stopped = exit %d, %q; want it to say the daemon is needed", code, errOut)
	}
	if n := squatted.Load(); n != 0 {
		t.Fatalf("the process on status.listen got %d requests from the commands, want none", n)
	}

	reqs, _ := st.Requests(context.Background())
	files, _ := st.Files(context.Background())
	hub := report.NewHub(report.HubOptions{Logger: quietTestLogger()})
	hub.SetRequests(report.InfoFromStore(reqs, files))
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeTestCert(t, certFile, keyFile)
	listen := freeAddr(t)
	srv, err := report.NewServer(report.ServerOptions{Listen: listen, Socket: fixtureSocket(cfgPath), Token: "s3cret-token",
		TLSCert: certFile, TLSKey: keyFile, Hub: hub, Control: &recordingControl{}, Logger: quietTestLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenSocket(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	if fi, err := os.Stat(fixtureSocket(cfgPath)); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, %v; want 0660", fi, err)
	}
	out, errOut, code := runCmd(t, "deliver", "SR-1045", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "released") {
		t.Fatalf("deliver through the socket: exit %d, %q, %q", code, out, errOut)
	}
	if n := squatted.Load(); n != 0 {
		t.Errorf("the process on status.listen got %d requests, want none", n)
	}
	// The port itself serves HTTPS with the token as before.
	pem, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("POST", "https://"+listen+"/api/requests/SR-1045/deliver", nil)
	req.Header.Set("Authorization", "Bearer s3cret-token")
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Errorf("POST over HTTPS with the token = %v, %v; want 202", resp, err)
	}
	if resp != nil {
		resp.Body.Close()
	}
}

// writeTestCert writes a fresh self-signed certificate for 127.0.0.1 and its key.
func writeTestCert(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "hotdrop test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestStatusWithABrokenConfig: an operator who broke the config (and whose SIGHUP the daemon
// refused) got only the config's error from status, not the table the README promises. What
// decodes is enough to read the state: the table is shown, the error above it.
func TestStatusWithABrokenConfig(t *testing.T) {
	cfgPath, _ := statusFixture(t, "")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(b), "root = \"root\"\n", "root = \"root\"\nsettle = \"1 sec\"\n", 1)
	if err := os.WriteFile(cfgPath, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCmd(t, "status", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "PROBLEM: the config or requests files have errors") ||
		!strings.Contains(out, `watch.settle: "1 sec" is not a duration`) || !strings.Contains(out, "SR-1043") {
		t.Errorf("status with a broken config: exit %d, stderr %q, stdout:\n%s\nwant the error above the table", code, errOut, out)
	}
	// A file that does not decode at all still says only why.
	if err := os.WriteFile(cfgPath, []byte("state_dir = [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCmd(t, "status", "--config", cfgPath); code != exitConfig || !strings.Contains(errOut, "hotdrop.toml:") {
		t.Errorf("status with a config that does not decode: exit %d, %q; want %d and where", code, errOut, exitConfig)
	}
}

// TestStatusFromStateDatabaseSaysWhyNoFolder: without the daemon, a waiting request whose
// drop folder could not be made (its name is too long for the file system) says so, as the
// running daemon's view does; before, it showed "waiting" and no reason. One whose folder is
// there shows none.
func TestStatusFromStateDatabaseSaysWhyNoFolder(t *testing.T) {
	cfgPath, st := statusFixture(t, "")
	root := filepath.Join(filepath.Dir(cfgPath), "root")
	there := filepath.Join(root, "Wednesday", "Music [SR-1047]")
	must(t, os.MkdirAll(there, 0o755))
	for _, r := range []store.Request{
		{ID: "SR-1046", Fields: `{"id":"SR-1046","title":"Wednesday","source_type":"Music","status":"open"}`, Status: "open", Files: 1,
			Folder: filepath.Join(root, "Wednesday", strings.Repeat("Music ", 50)+"[SR-1046]"), State: "waiting"},
		{ID: "SR-1047", Fields: `{"id":"SR-1047","title":"Wednesday","source_type":"Music","status":"open"}`, Status: "open", Files: 1,
			Folder: there, State: "waiting"},
		{ID: "SR-1048", Fields: `{"id":"SR-1048","title":"Wednesday","source_type":"Music","status":"open"}`, Status: "open", Files: 1,
			Folder: filepath.Join(root, "Wednesday", "Music [SR-1048]"), State: "waiting"},
	} {
		must(t, st.SaveRequest(context.Background(), r))
	}
	out, errOut, code := runCmd(t, "status", "--wide", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "SR-1046 ") && !strings.Contains(line, "no drop folder: file name too long (fix the request or watch.folder)"):
			t.Errorf("the request whose folder name is too long:\n%s", line)
		case strings.HasPrefix(line, "SR-1047 ") && !strings.HasSuffix(strings.TrimSpace(line), " -"):
			t.Errorf("the request whose folder is there gives a reason:\n%s", line)
		case strings.HasPrefix(line, "SR-1048 ") && !strings.Contains(line, "no drop folder (the daemon makes it again when it starts)"):
			t.Errorf("the request whose folder was removed:\n%s", line)
		}
	}
	if !strings.Contains(out, "SR-1046 ") || !strings.Contains(out, "SR-1047 ") || !strings.Contains(out, "SR-1048 ") {
		t.Errorf("status does not list SR-1046, SR-1047 and SR-1048:\n%s", out)
	}
}
