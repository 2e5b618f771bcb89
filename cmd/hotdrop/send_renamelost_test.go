package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sftpd"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh/knownhosts"
)

// renameThenCut renames, then drops every connection through the proxy before the
// answer can go back: the server did the rename, the client never hears of it.
type renameThenCut struct {
	sftp.FileCmder
	done atomic.Bool
	p    *sshdtest.Proxy
}

func (c *renameThenCut) Filecmd(r *sftp.Request) error {
	err := c.FileCmder.Filecmd(r)
	if (r.Method == "Rename" || r.Method == "PosixRename") && err == nil && strings.HasSuffix(r.Target, "/a.wav") && c.done.CompareAndSwap(false, true) {
		c.p.Cut()
	}
	return err
}

// TestSendRenameAnswerLost: the link drops after the server renamed the file and before its
// answer came. The next attempt asks the server which side of the rename it is on, and
// reports the file sent; it used to upload it again, find the name taken by that very
// file, and say it was "already on the server (perhaps from an earlier send)".
func TestSendRenameAnswerLost(t *testing.T) {
	mem := sftp.InMemHandler()
	cmd := &renameThenCut{FileCmder: mem.FileCmd}
	sshPub, pemKey := sshdtest.NewKey(t, "test")
	dir := t.TempDir()
	identity, known := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	must(t, os.WriteFile(identity, pemKey, 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "remote"), 0o755))
	srv, err := sftpd.Start(t.Context(), sftpd.Config{Root: filepath.Join(dir, "remote"), User: "ingest", AuthorizedKey: sshPub,
		Handlers: &sftp.Handlers{FileGet: mem.FileGet, FilePut: mem.FilePut, FileCmd: cmd, FileList: mem.FileList}})
	must(t, err)
	t.Cleanup(func() { srv.Close() })
	p := sshdtest.StartProxy(t, srv.Addr)
	cmd.p = p
	must(t, os.WriteFile(known, []byte(knownhosts.Line([]string{knownhosts.Normalize(p.Addr)}, srv.HostKey)+"\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "root"), 0o755))
	cfg := filepath.Join(dir, "hotdrop.toml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
[destination]
url = "sftp://ingest@%s/in"
identity_file = %q
known_hosts = %q
checksum = "none"
[status]
listen = ""
`, p.Addr, identity, known)), 0o644))
	src := filepath.Join(dir, "a.wav")
	must(t, os.WriteFile(src, bytes.Repeat([]byte("hotdrop "), 40_000), 0o644))

	var out, errOut bytes.Buffer
	code := run([]string{"send", src, "--config", cfg}, &out, &errOut)
	if code != 0 || strings.Contains(out.String()+errOut.String(), "already on the server") {
		t.Fatalf("send exited %d after a lost rename answer:\n%s%s", code, out.String(), errOut.String())
	}
	if !cmd.done.Load() {
		t.Fatalf("the server never renamed a.wav (the test cut nothing):\n%s", out.String())
	}
	if !strings.Contains(out.String(), "retrying") {
		t.Errorf("send did not say it tried again:\n%s", out.String())
	}
	// The bytes went in this run: the summary counts them once.
	if !strings.Contains(out.String(), "1 of 1 files delivered") || strings.Contains(out.String(), " 0 B sent") {
		t.Errorf("summary after a lost rename answer:\n%s", out.String())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
