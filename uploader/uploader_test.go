package uploader

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

func TestUploadSFTP(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	j, data := localFile(t, 1<<20+123, "PKG-1/Subtitle/sub/ep103_fr-FR.ttml")
	var last int64
	j.Progress = func(done int64) { last = done }
	renamed := false
	j.BeforeRename = func(context.Context) error { renamed = true; return nil }

	res, err := u.Upload(t.Context(), j)
	must(t, err)
	want := filepath.Join(ts.root, "PKG-1/Subtitle/sub/ep103_fr-FR.ttml")
	if res.Remote != want || res.Size != int64(len(data)) || res.SHA256 != sum(data) {
		t.Errorf("Upload() = %+v, want remote %s size %d sha256 %s", res, want, len(data), sum(data))
	}
	assertFile(t, want, data)
	assertNoPartial(t, ts.root)
	if last != int64(len(data)) {
		t.Errorf("last progress = %d, want %d", last, len(data))
	}
	if !renamed {
		t.Error("BeforeRename was not called")
	}
	size, exists, err := u.Stat(t.Context(), "PKG-1/Subtitle/sub/ep103_fr-FR.ttml")
	if err != nil || !exists || size != int64(len(data)) {
		t.Errorf("Stat() = %d, %v, %v; want %d, true, nil", size, exists, err, len(data))
	}
	if _, exists, err := u.Stat(t.Context(), "PKG-1/missing"); exists || err != nil {
		t.Errorf("Stat(missing) = %v, %v; want false, nil", exists, err)
	}
}

func TestUploadEmptyFile(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	j, _ := localFile(t, 0, "empty.txt")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	if res.Size != 0 || res.SHA256 != sum(nil) {
		t.Errorf("Upload(empty) = %+v", res)
	}
	assertFile(t, filepath.Join(ts.root, "empty.txt"), nil)
}

func TestRemoteExistsAndReplace(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	final := filepath.Join(ts.root, "a", "f.bin")
	must(t, os.MkdirAll(filepath.Dir(final), 0o755))
	must(t, os.WriteFile(final, []byte("theirs"), 0o644))

	j, data := localFile(t, 70000, "a/f.bin")
	_, err := u.Upload(t.Context(), j)
	e := wantCode(t, err, CodeRemoteExists, false)
	if !strings.Contains(e.Msg, final) {
		t.Errorf("message %q does not name the remote path %s", e.Msg, final)
	}
	assertFile(t, final, []byte("theirs"))

	j.Replace = true
	_, err = u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, final, data)
	assertNoPartial(t, ts.root)
}

// TestRemoteExistsAfterUpload covers a file that appears on the server while
// ours is still uploading: it is not overwritten.
func TestRemoteExistsAfterUpload(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	j, _ := localFile(t, 100000, "late.bin")
	final := filepath.Join(ts.root, "late.bin")
	j.Progress = func(done int64) {
		if done == j.Size {
			must(t, os.WriteFile(final, []byte("theirs"), 0o644))
		}
	}
	_, err := u.Upload(t.Context(), j)
	wantCode(t, err, CodeRemoteExists, false)
	assertFile(t, final, []byte("theirs"))
	assertNoPartial(t, ts.root)
}

func TestChangedDuringUpload(t *testing.T) {
	tests := []struct {
		name   string
		change func(p string) error
	}{
		{"appended", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write([]byte("more"))
			return errors.Join(err, f.Close())
		}},
		{"touched", func(p string) error {
			return os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))
		}},
		{"truncated", func(p string) error { return os.Truncate(p, 10) }},
		{"replaced", func(p string) error {
			tmp := p + ".new"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(tmp, b, 0o644); err != nil {
				return err
			}
			fi, _ := os.Stat(p)
			_ = os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
			return os.Rename(tmp, p)
		}},
	}
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel := "changed/" + tt.name + ".bin"
			j, _ := localFile(t, 300000, rel)
			once := false
			j.Progress = func(int64) {
				if !once {
					once = true
					must(t, tt.change(j.LocalPath))
				}
			}
			_, err := u.Upload(t.Context(), j)
			wantCode(t, err, CodeChanged, false)
			if _, err := os.Stat(filepath.Join(ts.root, rel)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("final file exists after a change during upload (stat err %v)", err)
			}
			assertNoPartial(t, ts.root)
		})
	}
}

func TestChangedBeforeUpload(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	j, _ := localFile(t, 1000, "x.bin")
	j.Size++
	_, err := u.Upload(t.Context(), j)
	wantCode(t, err, CodeChanged, false)
	j.Size--
	must(t, os.Remove(j.LocalPath))
	_, err = u.Upload(t.Context(), j)
	wantCode(t, err, CodeChanged, false)
}

func TestBeforeRenameErrorAborts(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	j, _ := localFile(t, 50000, "br/f.bin")
	boom := errors.New("journal is read-only")
	j.BeforeRename = func(context.Context) error { return boom }
	_, err := u.Upload(t.Context(), j)
	if !errors.Is(err, boom) {
		t.Fatalf("Upload() error = %v, want it to wrap %v", err, boom)
	}
	if got := files(t, ts.root); len(got) != 0 {
		t.Errorf("files on server after aborted rename = %v, want none", got)
	}
	// The journal's own words are in the sentence people read, and a full disk says where.
	if e := Classify(err); !strings.Contains(e.Msg, "journal is read-only") {
		t.Errorf("message %q lacks the journal's words", e.Msg)
	}
	j.BeforeRename = func(context.Context) error { return fmt.Errorf("journal: %w", syscall.ENOSPC) }
	_, err = u.Upload(t.Context(), j)
	if e := Classify(err); !strings.Contains(e.Msg, "state_dir is full: free space there") {
		t.Errorf("journal on a full disk: message %q, want it to say state_dir is full", e.Msg)
	}
}

func TestCancelRemovesPartial(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	j, _ := localFile(t, 1<<20, "cancel.bin")
	ctx, cancel := context.WithCancel(t.Context())
	j.Progress = func(int64) { cancel() }
	_, err := u.Upload(ctx, j)
	wantCode(t, err, CodeTransient, true)
	if got := files(t, ts.root); len(got) != 0 {
		t.Errorf("files on server after cancel = %v, want none", got)
	}
}

func TestHostKeyUnknown(t *testing.T) {
	ts := startServer(t, "")
	other := newHostKey(t)
	ts.pin(t, "elsewhere.example:22", other)
	u := newUploader(t, ts.options())
	j, _ := localFile(t, 10, "f.bin")
	_, err := u.Upload(t.Context(), j)
	e := wantCode(t, err, CodeHostKeyUnknown, false)
	wantLine := knownhosts.Line([]string{knownhosts.Normalize(ts.Addr)}, ts.HostKey)
	for _, want := range []string{ssh.FingerprintSHA256(ts.HostKey), wantLine, ts.knownHosts} {
		if !strings.Contains(e.Msg, want) {
			t.Errorf("message %q lacks %q", e.Msg, want)
		}
	}
	if got := files(t, ts.root); len(got) != 0 {
		t.Errorf("files on server = %v, want none", got)
	}
}

func TestHostKeyChanged(t *testing.T) {
	ts := startServer(t, "")
	old := newHostKey(t)
	ts.pin(t, ts.Addr, old)
	u := newUploader(t, ts.options())
	j, _ := localFile(t, 10, "f.bin")
	_, err := u.Upload(t.Context(), j)
	e := wantCode(t, err, CodeHostKeyChanged, false)
	wantLine := knownhosts.Line([]string{knownhosts.Normalize(ts.Addr)}, ts.HostKey)
	for _, want := range []string{ssh.FingerprintSHA256(ts.HostKey), wantLine, ssh.FingerprintSHA256(old)} {
		if !strings.Contains(e.Msg, want) {
			t.Errorf("message %q lacks %q", e.Msg, want)
		}
	}
}

func TestKnownHostsMissing(t *testing.T) {
	ts := startServer(t, "")
	o := ts.options()
	o.KnownHosts = filepath.Join(t.TempDir(), "nope")
	u := newUploader(t, o)
	_, _, err := u.Stat(t.Context(), "x")
	e := wantCode(t, err, CodeHostKeyUnknown, false)
	if !strings.Contains(e.Msg, o.KnownHosts) || !strings.Contains(e.Msg, "does not exist") {
		t.Errorf("message %q should say %s does not exist", e.Msg, o.KnownHosts)
	}
}

// TestHostKeyAlgorithms: only the key types pinned for the host are asked
// for, so a server preferring another type is not mistaken for a changed key.
func TestHostKeyAlgorithms(t *testing.T) {
	f := filepath.Join(t.TempDir(), "known_hosts")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	rsaPub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	must(t, err)
	host := []string{knownhosts.Normalize("ingest.example:2222")}
	content := knownhosts.Line(host, newHostKey(t)) + "\n" + knownhosts.Line(host, rsaPub) + "\n" +
		knownhosts.Line([]string{"rsa-only.example"}, rsaPub) + "\n"
	must(t, os.WriteFile(f, []byte(content), 0o600))
	tests := []struct {
		addr string
		want []string
	}{
		{"ingest.example:2222", []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}},
		{"rsa-only.example:22", []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}},
		{"ingest.example:22", nil}, // another port is another host
		{"other.example:22", nil},
	}
	for _, tt := range tests {
		_, algos, err := newHostKeyCheck(f, tt.addr)
		must(t, err)
		if !slices.Equal(algos, tt.want) {
			t.Errorf("algorithms for %s = %v, want %v", tt.addr, algos, tt.want)
		}
	}
}

func TestAuth(t *testing.T) {
	ts := startServer(t, "s3cret")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	must(t, os.WriteFile(pwFile, []byte("s3cret\n"), 0o600))
	badPw := filepath.Join(dir, "badpw")
	must(t, os.WriteFile(badPw, []byte("guess\n"), 0o600))
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(otherPriv, "")
	must(t, err)
	otherKey := filepath.Join(dir, "other")
	must(t, os.WriteFile(otherKey, pemEncode(block), 0o600))

	tests := []struct {
		name               string
		identity, password string
		agentSock          string
		wantCode           string
	}{
		{"key", ts.identityFile, "", "", ""},
		{"password", "", pwFile, "", ""},
		{"wrong password", "", badPw, "", CodeAuthFailed},
		{"wrong key", otherKey, "", "", CodeAuthFailed},
		{"no method, no agent", "", "", "", CodeAuthFailed},
		{"agent unreachable", "", "", filepath.Join(dir, "no-agent.sock"), CodeAuthFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SSH_AUTH_SOCK", tt.agentSock)
			o := ts.options()
			o.IdentityFile, o.PasswordFile = tt.identity, tt.password
			u := newUploader(t, o)
			_, _, err := u.Stat(t.Context(), "x")
			if tt.wantCode == "" {
				must(t, err)
				return
			}
			e := wantCode(t, err, tt.wantCode, false)
			if strings.Contains(e.Error(), "s3cret") || strings.Contains(e.Error(), "guess") {
				t.Errorf("error %q shows the password", e.Error())
			}
		})
	}
}

func TestKeyboardInteractiveAnswersSecret(t *testing.T) {
	got, err := answerAll("pw")("", "", []string{"Password: ", "Again: "}, []bool{false, false})
	if err != nil || !slices.Equal(got, []string{"pw", "pw"}) {
		t.Errorf("answerAll = %v, %v; want [pw pw]", got, err)
	}
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	kh := filepath.Join(dir, "known_hosts")
	tests := []struct {
		name    string
		o       Options
		wantErr string
		base    string
	}{
		{"sftp", Options{URL: "sftp://u@h:2222/incoming", KnownHosts: kh}, "", "/incoming"},
		{"sftp home", Options{URL: "sftp://u@h/~/in", KnownHosts: kh}, "", "in"},
		{"sftp no path", Options{URL: "sftp://u@h", KnownHosts: kh}, "", "."},
		{"file", Options{URL: "file:///mnt/outbox/"}, "", "/mnt/outbox"},
		{"no known_hosts", Options{URL: "sftp://u@h/in"}, "known_hosts", ""},
		{"password in url", Options{URL: "sftp://u:pw@h/in", KnownHosts: kh}, "password_file", ""},
		{"bad scheme", Options{URL: "ftp://h/in"}, "scheme", ""},
		{"bad scheme with password", Options{URL: "ftp://u:pw@h/in"}, "scheme", ""},
		{"unparsable with password", Options{URL: "sftp://u:pw@h:port/in"}, "destination url", ""},
		{"no host", Options{URL: "sftp:///in", KnownHosts: kh}, "no host", ""},
		{"file with host", Options{URL: "file://server/share"}, "local folder", ""},
		{"missing identity", Options{URL: "sftp://u@h/in", KnownHosts: kh, IdentityFile: filepath.Join(dir, "none")}, "identity_file", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := New(tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%q) error = %v, want one mentioning %q", tt.o.URL, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), ":pw@") {
					t.Errorf("error %q repeats the password", err)
				}
				return
			}
			must(t, err)
			if u.base != tt.base {
				t.Errorf("New(%q) base = %q, want %q", tt.o.URL, u.base, tt.base)
			}
		})
	}
}

// TestConnectionReuseAndRedial: one connection serves several uploads, and a
// dead one is replaced.
func TestConnectionReuseAndRedial(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	upload := func(rel string) {
		t.Helper()
		j, _ := localFile(t, 1000, rel)
		_, err := u.Upload(t.Context(), j)
		must(t, err)
	}
	upload("1.bin")
	first := u.firstConn()
	upload("2.bin")
	if u.firstConn() != first {
		t.Fatal("second upload dialled a new connection, want the first one reused")
	}
	first.close()
	<-first.done
	upload("3.bin")
	if c := u.firstConn(); c == first || c == nil {
		t.Fatal("upload after the connection died did not redial")
	}
}

// TestKeepaliveClosesFrozenLink: a link that silently stops carrying bytes is
// noticed by the keepalive, and the next upload dials again.
func TestKeepaliveClosesFrozenLink(t *testing.T) {
	ts := startServer(t, "")
	p := sshdtest.StartProxy(t, ts.Addr)
	ts.pin(t, p.Addr, ts.HostKey)
	o := ts.options()
	o.URL = "sftp://ingest@" + p.Addr + ts.root
	u := newUploader(t, o)
	u.kaInterval, u.kaTimeout = 20*time.Millisecond, 100*time.Millisecond
	j, _ := localFile(t, 1000, "a.bin")
	_, err := u.Upload(t.Context(), j)
	must(t, err)
	c := u.firstConn()
	p.Freeze()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		t.Fatal("keepalive did not close a frozen connection within 5s")
	}
	j.RemoteRel = "b.bin"
	_, err = u.Upload(t.Context(), j)
	must(t, err)
}

// fakeTarget fails writes the way OpenSSH reports a full disk.
type fakeTarget struct {
	localTarget
	free     int64
	writeErr error
}

type failingFile struct {
	*os.File
	err error
}

func (f failingFile) WriteAt(b []byte, off int64) (int, error) {
	if off > 0 {
		return 0, f.err
	}
	n, _ := f.File.WriteAt(b[:min(len(b), 100)], off)
	return n, f.err
}

func (f fakeTarget) create(p string) (remoteFile, error) {
	w, err := f.localTarget.create(p)
	if err != nil {
		return nil, err
	}
	return failingFile{File: w.(*os.File), err: f.writeErr}, nil
}
func (f fakeTarget) freeSpace(string) (int64, bool) { return f.free, f.free >= 0 }

func TestWriteFailureClassified(t *testing.T) {
	failure := &sftp.StatusError{Code: uint32(sftp.ErrSSHFxFailure)}
	tests := []struct {
		name  string
		free  int64
		err   error
		code  string
		trans bool
	}{
		{"full disk", 10, failure, CodeNoSpace, false},
		{"failure with room", 1 << 30, failure, CodeRemoteError, false},
		{"failure, no statvfs", -1, failure, CodeRemoteError, false},
		{"permission", 10, os.ErrPermission, CodePermissionDenied, false},
		{"connection lost", 10, sftp.ErrSSHFxConnectionLost, CodeTransient, true},
		{"eof", 10, io.EOF, CodeTransient, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			u := &Uploader{log: discardLogger()}
			must(t, u.applyTuning(Options{}))
			tg := fakeTarget{localTarget: localTargetAt(t, root, ""), free: tt.free, writeErr: tt.err}
			j, _ := localFile(t, 5000, "d/f.bin")
			f, fi, err := openLocal(j)
			must(t, err)
			defer f.Close()
			_, err = u.transfer(t.Context(), tg, f, fi, j, tg.abs(j.RemoteRel))
			wantCode(t, err, tt.code, tt.trans)
			if got := files(t, root); len(got) != 0 {
				t.Errorf("files left = %v, want none", got)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	own := &Error{Code: CodeNoSpace, Msg: "full"}
	tests := []struct {
		err   error
		code  string
		trans bool
	}{
		{io.EOF, CodeTransient, true},
		{io.ErrUnexpectedEOF, CodeTransient, true},
		{context.DeadlineExceeded, CodeTransient, true},
		{os.ErrPermission, CodePermissionDenied, false},
		{sftp.ErrSSHFxPermissionDenied, CodePermissionDenied, false},
		{&sftp.StatusError{Code: uint32(sftp.ErrSSHFxPermissionDenied)}, CodePermissionDenied, false},
		{sftp.ErrSSHFxConnectionLost, CodeTransient, true},
		{errors.New("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none]"), CodeAuthFailed, false},
		{&sftp.StatusError{Code: uint32(sftp.ErrSSHFxFailure)}, CodeRemoteError, false},
		{errors.Join(errors.New("wrapped"), own), CodeNoSpace, false},
		// A link where a file:// destination has a folder or a partial: permanent, not retried.
		{&os.PathError{Op: "create", Path: "/out/.a.partial", Err: &safefs.UnsafeError{Path: "/out/.a.partial", Reason: safefs.TypeRefusal(fs.ModeSymlink)}}, CodeRemoteError, false},
	}
	for _, tt := range tests {
		e := Classify(tt.err)
		if e.Code != tt.code || e.Transient != tt.trans {
			t.Errorf("Classify(%v) = %s/%v, want %s/%v", tt.err, e.Code, e.Transient, tt.code, tt.trans)
		}
	}
	if Classify(nil) != nil {
		t.Error("Classify(nil) != nil")
	}
}

func newHostKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	k, err := ssh.NewPublicKey(pub)
	must(t, err)
	return k
}

// TestConcurrentUploads shares one connection between parallel uploads.
func TestConcurrentUploads(t *testing.T) {
	ts := startServer(t, "")
	u := newUploader(t, ts.options())
	const n = 6
	errs := make(chan error, n)
	want := map[string][]byte{}
	var jobs []Job
	for i := range n {
		rel := fmt.Sprintf("par/%d.bin", i)
		j, data := localFile(t, 200000+i, rel)
		jobs = append(jobs, j)
		want[rel] = data
	}
	for _, j := range jobs {
		go func() {
			_, err := u.Upload(t.Context(), j)
			errs <- err
		}()
	}
	for range n {
		must(t, <-errs)
	}
	for rel, data := range want {
		assertFile(t, filepath.Join(ts.root, rel), data)
	}
}

// TestCloseLeavesNoGoroutines: the keepalive and watch goroutines end with Close.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	// Counted before the server starts, and after it stops (sftpd's own test holds it to
	// leaving nothing): no guess at when the server's goroutines are all up.
	before := runtime.NumGoroutine()
	ts := startServer(t, "")
	u, err := New(ts.options())
	must(t, err)
	j, _ := localFile(t, 100000, "g.bin")
	_, err = u.Upload(t.Context(), j)
	must(t, err)
	must(t, u.Close())
	must(t, ts.Close())
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines = %d after Close, want <= %d\n%s", g, before, buf[:runtime.Stack(buf, true)])
	}
	_, err = u.Upload(t.Context(), j)
	wantCode(t, err, CodeTransient, true)
}
