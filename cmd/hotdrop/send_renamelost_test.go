package main

import (
	"bytes"
	"fmt"
	"io"
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
	cfg, src, p := proxiedSend(t, mem, cmd, "none")
	cmd.p = p

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

// proxiedSend starts an SFTP server on mem whose commands go through cmd, behind a proxy the
// test can cut, and returns a config for send to it with that checksum, a 312.5 KiB source
// file a.wav, and the proxy.
func proxiedSend(t *testing.T, mem sftp.Handlers, cmd sftp.FileCmder, checksum string) (cfg, src string, p *sshdtest.Proxy) {
	t.Helper()
	sshPub, pemKey := sshdtest.NewKey(t, "test")
	dir := t.TempDir()
	identity, known := filepath.Join(dir, "id_ed25519"), filepath.Join(dir, "known_hosts")
	must(t, os.WriteFile(identity, pemKey, 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "remote"), 0o755))
	srv, err := sftpd.Start(t.Context(), sftpd.Config{Root: filepath.Join(dir, "remote"), User: "ingest", AuthorizedKey: sshPub,
		Handlers: &sftp.Handlers{FileGet: mem.FileGet, FilePut: truncatingPut{mem}, FileCmd: cmd, FileList: mem.FileList}})
	must(t, err)
	t.Cleanup(func() { srv.Close() })
	p = sshdtest.StartProxy(t, srv.Addr)
	must(t, os.WriteFile(known, []byte(knownhosts.Line([]string{knownhosts.Normalize(p.Addr)}, srv.HostKey)+"\n"), 0o600))
	must(t, os.MkdirAll(filepath.Join(dir, "root"), 0o755))
	cfg = filepath.Join(dir, "hotdrop.toml")
	must(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
[destination]
url = "sftp://ingest@%s/in"
identity_file = %q
known_hosts = %q
checksum = %q
[status]
listen = ""
`, p.Addr, identity, known, checksum)), 0o644))
	src = filepath.Join(dir, "a.wav")
	must(t, os.WriteFile(src, bytes.Repeat([]byte("hotdrop "), 40_000), 0o644))
	return cfg, src, p
}

// truncatingPut opens a file for writing as a real file system does: pkg/sftp's in-memory
// file keeps the error of a transfer the cut ended and refuses every later open of it, even
// one that truncates it ("unexpected EOF"), where a disk starts it anew.
type truncatingPut struct{ mem sftp.Handlers }

func (p truncatingPut) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	if r.Flags&0x10 != 0 { // SSH_FXF_TRUNC
		_ = p.mem.FileCmd.Filecmd(sftp.NewRequest("Remove", r.Filepath))
	}
	return p.mem.FilePut.Filewrite(r)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// cutBeforeSumRename drops every connection through the proxy when the checksum file's
// temporary copy is to be renamed into place, once: the file itself is delivered, its
// checksum file is not, and its temporary copy stays on the server. With renameToo, the
// file's own rename is cut first, after the server did it: the checksum file is then
// written by the attempt that finds the file in place.
type cutBeforeSumRename struct {
	sftp.FileCmder
	renameToo bool
	renamed   atomic.Bool
	done      atomic.Bool
	p         *sshdtest.Proxy
}

func (c *cutBeforeSumRename) Filecmd(r *sftp.Request) error {
	rename := r.Method == "Rename" || r.Method == "PosixRename"
	if rename && strings.HasSuffix(r.Target, "/a.wav.sha256") && c.done.CompareAndSwap(false, true) {
		c.p.Cut()
		return sftp.ErrSSHFxFailure
	}
	err := c.FileCmder.Filecmd(r)
	if rename && c.renameToo && err == nil && strings.HasSuffix(r.Target, "/a.wav") && c.renamed.CompareAndSwap(false, true) {
		c.p.Cut()
	}
	return err
}

// TestSendChecksumFileCut: the link drops while the checksum file of a delivered file is
// renamed into place. send writes it again on the next connection (the file is not sent
// again) and leaves no temporary copy behind; it used to report the file sent with
// "checksum file not written" and leave `.a.wav.sha256.partial` on the server for good.
func TestSendChecksumFileCut(t *testing.T) {
	for _, renameToo := range []bool{false, true} {
		name := "cut at the checksum file"
		if renameToo {
			name = "cut at the file's rename answer, then at the checksum file"
		}
		t.Run(name, func(t *testing.T) { sendChecksumFileCut(t, renameToo) })
	}
}

func sendChecksumFileCut(t *testing.T, renameToo bool) {
	mem := sftp.InMemHandler()
	cmd := &cutBeforeSumRename{FileCmder: mem.FileCmd, renameToo: renameToo}
	cfg, src, p := proxiedSend(t, mem, cmd, "sha256")
	cmd.p = p

	var out, errOut bytes.Buffer
	code := run([]string{"send", src, "--config", cfg}, &out, &errOut)
	all := out.String() + errOut.String()
	if !cmd.done.Load() || cmd.renameToo && !cmd.renamed.Load() {
		t.Fatalf("the checksum file was never renamed (the test cut nothing):\n%s", all)
	}
	if code != 0 || strings.Contains(all, "checksum file not written") || !strings.Contains(all, "retrying the checksum file of") {
		t.Fatalf("send exited %d after a cut while the checksum file was renamed:\n%s", code, all)
	}
	get := sftp.NewRequest("Get", "/in/a.wav.sha256")
	get.Flags = 1 // SSH_FXF_READ
	rd, err := mem.FileGet.Fileread(get)
	if err != nil {
		t.Fatalf("no checksum file on the server: %v\n%s", err, all)
	}
	line := make([]byte, 200)
	n, _ := rd.ReadAt(line, 0)
	if !strings.HasSuffix(string(line[:n]), "  a.wav\n") {
		t.Errorf("checksum file on the server: %q", line[:n])
	}
	ls, err := mem.FileList.Filelist(sftp.NewRequest("List", "/in"))
	must(t, err)
	infos := make([]os.FileInfo, 16)
	n, _ = ls.ListAt(infos, 0)
	var names []string
	for _, fi := range infos[:n] {
		names = append(names, fi.Name())
	}
	if strings.Join(names, " ") != "a.wav a.wav.sha256" {
		t.Errorf("on the server after the send: %v, want a.wav and a.wav.sha256 only", names)
	}
}
