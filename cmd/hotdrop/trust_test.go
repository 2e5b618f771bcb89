package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// trustConfig writes a config for srv whose known_hosts is the file given (not srv's own).
func trustConfig(t *testing.T, srv *sshdtest.Server, knownHosts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
[requests]
files = ["requests.d/*.toml"]
[destination]
url = %q
identity_file = %q
known_hosts = %q
[status]
listen = ""
`, srv.URL(), srv.IdentityFile, knownHosts)
	path := filepath.Join(dir, "hotdrop.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func hotdrop(args ...string) (code int, stdout, stderr string) {
	var out, errb strings.Builder
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestTrustThenCheckConnect: check --connect fails before trust (host_key_unknown, with the
// fingerprint), trust pins exactly the server's key, and check --connect then passes.
func TestTrustThenCheckConnect(t *testing.T) {
	srv := sshdtest.Start(t)
	known := filepath.Join(t.TempDir(), "etc", "known_hosts") // does not exist yet
	cfg := trustConfig(t, srv, known)
	fp := ssh.FingerprintSHA256(srv.HostKey)

	// A missing known_hosts is a config error (the service could not start), and the probe
	// still shows the key to compare.
	code, out, errOut := hotdrop("check", "--connect", "--config", cfg)
	if code != exitConfig || !strings.Contains(out, "host_key_unknown") || !strings.Contains(out, fp) ||
		!strings.Contains(errOut, "destination.known_hosts: "+known+" does not exist; hotdrop trust pins") {
		t.Fatalf("check --connect before trust: exit %d, want 78 with host_key_unknown and %s:\n%s%s", code, fp, out, errOut)
	}
	t.Logf("check --connect before trust:\n%s%s", out, errOut)

	// Without a terminal and without --yes nobody confirmed the fingerprint.
	var stdout, stderr strings.Builder
	if err := trust([]string{"--config", cfg}, strings.NewReader("y\n"), false, &stdout, &stderr); err == nil {
		t.Fatal("trust pinned a key with no terminal and no --yes")
	}
	// A person who answers no pins nothing.
	if err := trust([]string{"--config", cfg}, strings.NewReader("n\n"), true, &stdout, &stderr); err == nil {
		t.Fatal("trust pinned a key the person refused")
	}
	if _, err := os.Stat(known); err == nil {
		t.Fatal("known_hosts was written without a confirmation")
	}
	// A person who answers yes pins it.
	stdout.Reset()
	if err := trust([]string{"--config", cfg}, strings.NewReader("yes\n"), true, &stdout, &stderr); err != nil {
		t.Fatalf("trust: %v", err)
	}
	t.Logf("trust:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), fp) || !strings.Contains(stdout.String(), "ssh-ed25519") {
		t.Errorf("trust did not show the key type and fingerprint %s:\n%s", fp, stdout.String())
	}
	data, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	wantLine := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, srv.HostKey)
	if string(data) != wantLine+"\n" {
		t.Errorf("known_hosts = %q, want %q", data, wantLine+"\n")
	}

	// Again: nothing to do, nothing appended.
	code, out, errOut = hotdrop("trust", "--yes", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "already pinned") {
		t.Errorf("second trust: exit %d:\n%s%s", code, out, errOut)
	}
	if again, _ := os.ReadFile(known); string(again) != string(data) {
		t.Errorf("second trust changed known_hosts to %q", again)
	}

	code, out, errOut = hotdrop("check", "--connect", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "login: ok") || !strings.Contains(out, "rename and delete a test file in the folder: ok") {
		t.Fatalf("check --connect after trust: exit %d:\n%s%s", code, out, errOut)
	}
	t.Logf("check --connect after trust:\n%s", out)
	left, err := os.ReadDir(srv.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("the probe left %d file(s) in the remote folder: %v", len(left), left[0].Name())
	}
}

// TestTrustRefusesChangedKey: when known_hosts pins another key for the server, trust does
// not add a second one, and check --connect reports host_key_changed.
func TestTrustRefusesChangedKey(t *testing.T) {
	srv := sshdtest.Start(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(t.TempDir(), "known_hosts")
	old := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, other) + "\n"
	if err := os.WriteFile(known, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := trustConfig(t, srv, known)

	code, out, errOut := hotdrop("trust", "--yes", "--config", cfg)
	if code != exitFail || !strings.Contains(errOut, "HOST KEY CHANGED") || !strings.Contains(errOut, ssh.FingerprintSHA256(srv.HostKey)) {
		t.Errorf("trust with another key pinned: exit %d:\n%s%s", code, out, errOut)
	}
	t.Logf("trust with another key pinned:\n%s", errOut)
	if data, _ := os.ReadFile(known); string(data) != old {
		t.Errorf("trust changed known_hosts to %q", data)
	}
	code, out, errOut = hotdrop("check", "--connect", "--config", cfg)
	if code != exitFail || !strings.Contains(out, "host_key_changed") {
		t.Errorf("check --connect with another key pinned: exit %d:\n%s%s", code, out, errOut)
	}
}

// TestCheckConnectFileDestination: the probe works on file:// destinations too, and a
// missing destination folder is reported rather than created.
func TestCheckConnectFileDestination(t *testing.T) {
	dir := t.TempDir()
	cfg := writeServiceConfig(t, dir, "")
	code, out, _ := hotdrop("check", "--connect", "--config", cfg.File)
	if code != exitFail || !strings.Contains(out, "does not exist") {
		t.Errorf("check --connect, outbox missing: exit %d:\n%s", code, out)
	}
	if err := os.Mkdir(filepath.Join(dir, "outbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := hotdrop("check", "--connect", "--config", cfg.File)
	if code != exitOK || !strings.Contains(out, "test file in the folder: ok") {
		t.Errorf("check --connect: exit %d:\n%s%s", code, out, errOut)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "outbox")); len(left) != 0 {
		t.Errorf("the probe left %v", left[0].Name())
	}
}
