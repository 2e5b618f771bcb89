package sftpd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dial(s *Server, user string, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	return ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: ssh.FixedHostKey(s.HostKey), Timeout: 5 * time.Second,
	})
}

func TestAuth(t *testing.T) {
	key, other := newSigner(t), newSigner(t)
	s, err := Start(t.Context(), Config{Root: t.TempDir(), User: "ingest", AuthorizedKey: key.PublicKey(), Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kbd := func(secret string) ssh.AuthMethod {
		return ssh.KeyboardInteractive(func(_, _ string, q []string, _ []bool) ([]string, error) {
			a := make([]string, len(q))
			for i := range a {
				a[i] = secret
			}
			return a, nil
		})
	}
	tests := []struct {
		name, user string
		auth       ssh.AuthMethod
		ok         bool
	}{
		{"key", "ingest", ssh.PublicKeys(key), true},
		{"other key", "ingest", ssh.PublicKeys(other), false},
		{"key wrong user", "root", ssh.PublicKeys(key), false},
		{"password", "ingest", ssh.Password("s3cret"), true},
		{"wrong password", "ingest", ssh.Password("guess"), false},
		{"keyboard-interactive", "ingest", kbd("s3cret"), true},
		{"keyboard-interactive wrong", "ingest", kbd("guess"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := dial(s, tt.user, tt.auth)
			if c != nil {
				c.Close()
			}
			if (err == nil) != tt.ok {
				t.Errorf("login(%s) error = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestStartNeedsAuth(t *testing.T) {
	if _, err := Start(t.Context(), Config{Root: t.TempDir()}); err == nil {
		t.Fatal("Start without key or password succeeded, want an error")
	}
	if _, err := Start(t.Context(), Config{Root: filepath.Join(t.TempDir(), "missing"), Password: "x"}); err == nil {
		t.Fatal("Start with a missing root succeeded, want an error")
	}
}

// TestConcurrentClientsAndClean serves many connections at once, then checks
// that Close (and ctx cancel) leave no goroutine behind.
func TestConcurrentClientsAndClean(t *testing.T) {
	before := runtime.NumGoroutine()
	root := t.TempDir()
	key := newSigner(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Config{Root: root, AuthorizedKey: key.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- put(s, key, fmt.Sprintf("f%d.txt", i))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i := range n {
		b, err := os.ReadFile(filepath.Join(root, fmt.Sprintf("f%d.txt", i)))
		if err != nil || string(b) != "hello" {
			t.Errorf("f%d.txt = %q, %v; want \"hello\"", i, b, err)
		}
	}
	// A client still connected when the server stops must not keep it alive.
	idle, err := dial(s, "any", ssh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	s.Close()
	idle.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines = %d after Close, want <= %d\n%s", g, before, buf[:runtime.Stack(buf, true)])
	}
}

func put(s *Server, key ssh.Signer, name string) error {
	c, err := dial(s, "any", ssh.PublicKeys(key))
	if err != nil {
		return err
	}
	defer c.Close()
	sc, err := sftp.NewClient(c)
	if err != nil {
		return err
	}
	defer sc.Close()
	f, err := sc.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write([]byte("hello")); err != nil {
		return err
	}
	return f.Close()
}
