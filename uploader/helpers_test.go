package uploader

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sftpd"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an in-process SFTP server plus the client files that reach it.
type testServer struct {
	*sftpd.Server
	root         string
	identityFile string
	knownHosts   string
}

func startServer(t *testing.T, password string) *testServer {
	t.Helper()
	return startServerWith(t, password, nil)
}

// startServerWith is startServer with handlers instead of the real filesystem
// (pkg/sftp's request server), for behaviour no installable server shows.
func startServerWith(t *testing.T, password string, handlers *sftp.Handlers) *testServer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(priv, "test")
	must(t, err)
	dir := t.TempDir()
	ts := &testServer{
		root:         filepath.Join(dir, "remote"),
		identityFile: filepath.Join(dir, "id_ed25519"),
		knownHosts:   filepath.Join(dir, "known_hosts"),
	}
	must(t, os.Mkdir(ts.root, 0o755))
	must(t, os.WriteFile(ts.identityFile, pem.EncodeToMemory(block), 0o600))
	ts.Server, err = sftpd.Start(t.Context(), sftpd.Config{Root: ts.root, User: "ingest", AuthorizedKey: sshPub, Password: password, Handlers: handlers})
	must(t, err)
	t.Cleanup(func() { ts.Close() })
	ts.pin(t, ts.Addr, ts.HostKey)
	return ts
}

// pin writes a known_hosts holding key for addr.
func (ts *testServer) pin(t *testing.T, addr string, key ssh.PublicKey) {
	t.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	must(t, os.WriteFile(ts.knownHosts, []byte(line+"\n"), 0o600))
}

func (ts *testServer) options() Options {
	return Options{
		URL:          "sftp://ingest@" + ts.Addr + ts.root,
		IdentityFile: ts.identityFile,
		KnownHosts:   ts.knownHosts,
		DialTimeout:  5 * time.Second,
		Logger:       discardLogger(),
	}
}

func newUploader(t *testing.T, o Options) *Uploader {
	t.Helper()
	u, err := New(o)
	must(t, err)
	t.Cleanup(func() { u.Close() })
	return u
}

// localFile writes size random bytes and returns a job for them.
func localFile(t *testing.T, size int, rel string) (Job, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	p := filepath.Join(t.TempDir(), filepath.Base(rel))
	must(t, os.WriteFile(p, data, 0o644))
	fi, err := os.Stat(p)
	must(t, err)
	return Job{LocalPath: p, RemoteRel: rel, Size: fi.Size(), ModTime: fi.ModTime()}, data
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// files lists every file below root, slash paths relative to it.
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	must(t, err)
	return out
}

func wantCode(t *testing.T, err error, code string, transient bool) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("error = nil, want code %s", code)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Code != code || e.Transient != transient {
		t.Fatalf("error code = %s transient=%v (%v), want %s transient=%v", e.Code, e.Transient, err, code, transient)
	}
	return e
}

func assertFile(t *testing.T, p string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d sent", p, len(got), len(want))
	}
}

func assertNoPartial(t *testing.T, root string) {
	t.Helper()
	for _, f := range files(t, root) {
		if strings.HasSuffix(f, ".partial") {
			t.Errorf("partial file %s left on the server", f)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// firstConn is the pool's first connection: the one sequential uploads use.
func (u *Uploader) firstConn() *sftpConn {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.slots[0].conn
}
