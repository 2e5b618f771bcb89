package uploader

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestKnownHostsCheck: the one check both the uploader's dial and `hotdrop trust` use, for
// each answer a known_hosts file can give.
func TestKnownHostsCheck(t *testing.T) {
	const addr = "ingest.example:2222"
	pinned, other, revoked := newHostKey(t), newHostKey(t), newHostKey(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "known_hosts")
	host := []string{knownhosts.Normalize(addr)}
	must(t, os.WriteFile(f, []byte(knownhosts.Line(host, pinned)+"\n@revoked * "+
		strings.TrimPrefix(knownhosts.Line([]string{"x"}, revoked), "x ")+"\n"), 0o600))
	k, err := ReadKnownHosts(f)
	must(t, err)
	remote := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 2222}
	tests := []struct {
		name, addr string
		key        ssh.PublicKey
		code       string // "" = accepted
		says       string
	}{
		{"pinned", addr, pinned, "", ""},
		{"another key pinned", addr, other, CodeHostKeyChanged, "HOST KEY CHANGED"},
		{"revoked", addr, revoked, CodeHostKeyChanged, "revoked"},
		{"nothing pinned for the host", "new.example:22", other, CodeHostKeyUnknown, "does not pin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := k.Check(tt.addr, remote, tt.key)
			switch {
			case tt.code == "" && e != nil:
				t.Fatalf("Check = %v, want accepted", e)
			case tt.code == "":
				return
			case e == nil:
				t.Fatalf("Check accepted the key, want %s", tt.code)
			}
			if e.Code != tt.code || !strings.Contains(e.Msg, tt.says) || !strings.Contains(e.Msg, ssh.FingerprintSHA256(tt.key)) {
				t.Errorf("Check = %s %q, want %s saying %q and the fingerprint", e.Code, e.Msg, tt.code, tt.says)
			}
		})
	}
	if got := k.Pinned(addr); len(got) != 1 || ssh.FingerprintSHA256(got[0].Key) != ssh.FingerprintSHA256(pinned) {
		t.Errorf("Pinned(%s) = %v, want the one pinned key", addr, got)
	}

	missing, err := ReadKnownHosts(filepath.Join(dir, "absent"))
	must(t, err)
	if missing.Exists() || missing.Pinned(addr) != nil {
		t.Errorf("a missing known_hosts exists or pins keys")
	}
	if e := missing.Check(addr, remote, pinned); e == nil || e.Code != CodeHostKeyUnknown || !strings.Contains(e.Msg, "hotdrop trust") {
		t.Errorf("Check with no known_hosts = %v, want host_key_unknown naming hotdrop trust", e)
	}
}
