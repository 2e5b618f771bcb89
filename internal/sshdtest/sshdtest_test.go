package sshdtest

import (
	"io"
	"net"
	"os"
	"path"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestStartLogsIn proves the helper's promise: the key logs in, the host key
// is pinned, and Dir is writable by User.
func TestStartLogsIn(t *testing.T) {
	s := Start(t)
	client := dialSSH(t, s, s.Addr)
	sc, err := sftp.NewClient(client)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	p := path.Join(s.Dir, "hello.txt")
	f, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		t.Fatalf("OpenFile(%s): %v", p, err)
	}
	if _, err := f.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := sc.HasExtension("posix-rename@openssh.com"); !ok {
		t.Errorf("sshd does not advertise posix-rename@openssh.com")
	}
	if want := "sftp://" + s.User + "@" + s.Addr + s.Dir; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
}

// TestProxyCutsAtByte: the proxy forwards until the armed byte count, cuts that connection
// exactly there, and lets the next one through untouched.
func TestProxyCutsAtByte(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan int, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				got <- int(n)
			}()
		}
	}()
	p := StartProxy(t, ln.Addr().String())
	p.CutAfter(1000)
	for i, want := range []int{1000, 5000} {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(make([]byte, 5000))
		if i == 1 {
			c.Close()
		}
		if n := <-got; n != want {
			t.Errorf("connection %d: server got %d bytes, want %d", i, n, want)
		}
		c.Close()
	}
	if p.Cuts() != 1 || p.Up() != 6000 {
		t.Errorf("Cuts() = %d, Up() = %d; want 1, 6000", p.Cuts(), p.Up())
	}
}

// dialSSH logs in to s at addr with its key, checking its pinned host key;
// the client closes when the test ends.
func dialSSH(t *testing.T, s *Server, addr string) *ssh.Client {
	t.Helper()
	key, err := os.ReadFile(s.IdentityFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(s.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hk, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh.Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// TestDelayProxyDelaysSSH logs in to a real sshd through a delay proxy: the
// login works with the host key pinned for the proxy's address, and its round
// trips (version, key exchange, auth) show in the time it takes.
func TestDelayProxyDelaysSSH(t *testing.T) {
	const rtt = 50 * time.Millisecond
	s := Start(t)
	p := StartDelayProxy(t, s.Addr, rtt)
	s.Pin(t, p.Addr())
	t0 := time.Now()
	client := dialSSH(t, s, p.Addr())
	d := time.Since(t0)
	t.Logf("login through RTT %v took %v", rtt, d)
	if d < 3*rtt {
		t.Errorf("login through RTT %v took %v, want ≥ 3 round trips", rtt, d)
	}
	if _, _, err := client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatal(err)
	}
	if p.Up() == 0 || p.Down() == 0 {
		t.Errorf("proxy counted Up %d, Down %d; want both > 0", p.Up(), p.Down())
	}
}
