package uploader

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// Transfer-engine tests against the real OpenSSH sshd, logged in as the
// unprivileged test user.

func sshdOptions(s *sshdtest.Server) Options {
	return Options{URL: s.URL(), IdentityFile: s.IdentityFile, KnownHosts: s.KnownHosts, Logger: discardLogger()}
}

// viaOptions are sshdOptions for reaching s through a proxy listening at addr, whose
// address s's known_hosts then pins too.
func viaOptions(t testing.TB, s *sshdtest.Server, addr string) Options {
	t.Helper()
	s.Pin(t, addr)
	o := sshdOptions(s)
	o.URL = fmt.Sprintf("sftp://%s@%s%s", s.User, addr, s.Dir)
	return o
}

// checkpoints collects what an upload asks the journal to record.
type checkpoints struct {
	mu   sync.Mutex
	list []Checkpoint
}

func (c *checkpoints) save(k Checkpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, k)
}

func (c *checkpoints) last() *Checkpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.list) == 0 {
		return nil
	}
	k := c.list[len(c.list)-1]
	return &k
}

// TestSSHDResumeAfterCut drops the link mid-file through a proxy: the
// upload fails as transient, keeps its partial and checkpoints the
// acknowledged offset; the next Upload resumes from it, re-sends less than
// 1 % of the file, reads the file exactly once more, and delivers it intact.
func TestSSHDResumeAfterCut(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 384 MiB")
	}
	s := sshdtest.Start(t)
	p := sshdtest.StartProxy(t, s.Addr)
	o := viaOptions(t, s, p.Addr)
	o.Checksum = ChecksumXXH64
	o.Streams = 1 // one connection for the proxy to cut; striped: TestSSHDStripedResumeAfterCut
	u := newUploader(t, o)

	const size = 384 << 20
	j, data := localFile(t, size, "big/movie.mxf")
	var ck checkpoints
	j.Checkpoint = ck.save
	cut := int64(size * 2 / 5)
	p.CutAfter(cut)
	_, err := u.Upload(t.Context(), j)
	wantCode(t, err, CodeTransient, true)
	if p.Cuts() != 1 {
		t.Fatalf("proxy cut %d connections, want 1", p.Cuts())
	}
	last := ck.last()
	if last == nil || last.Offset <= 0 {
		t.Fatalf("no checkpoint after the cut: %+v", ck.list)
	}
	partial := filepath.Join(s.Dir, "big", ".movie.mxf.partial")
	if fi, err := os.Stat(partial); err != nil || fi.Size() < last.Offset {
		t.Fatalf("partial after the cut: %v, %v; want at least %d bytes", fi, err, last.Offset)
	}
	if last.Partial != partial || last.Size != size || last.Inode == 0 {
		t.Errorf("checkpoint = %+v, want partial %s, size %d and an inode", last, partial, size)
	}

	firstUp := p.Up()
	u.readBytes.Store(0)
	j.Resume = last
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "big", "movie.mxf"), data)
	assertNoPartial(t, s.Dir)
	// At least from the checkpoint; further where the partial held more that reads back
	// identical (writes whose acknowledgements the cut lost).
	if res.Resumed < last.Offset || res.SHA256 != sum(data) {
		t.Errorf("resumed Upload() = %+v, want Resumed >= %d and sha256 %s", res, last.Offset, sum(data))
	}
	if want := fmt.Sprintf("%016x", xxhash.Sum64(data)); res.Checksum != want {
		t.Errorf("xxh64 after resume = %s, want %s", res.Checksum, want)
	}
	// What reached the server in the first attempt beyond the point the
	// second one started sending from was sent twice; SSH and SFTP framing
	// (~0.2 %) counts against us too. That point is the checkpoint or, where
	// the partial's tail read back identical, further: a checkpoint is taken
	// every 16 MiB or 250 ms, so on a slow machine the checkpoint alone can
	// lag the cut by more than 1 % of this file, and reading the tail back is
	// what keeps the re-send small.
	resent := firstUp - res.Resumed
	total := p.Up()
	t.Logf("cut at %d, checkpoint at %d, resumed at %d (%.2f%% re-sent); %d bytes over the wire for %d (%.2f%% overhead)",
		cut, last.Offset, res.Resumed, 100*float64(resent)/size, total, size, 100*float64(total-size)/size)
	if resent > size/100 {
		t.Errorf("re-sent %d bytes (%.2f%%), want < 1%%", resent, 100*float64(resent)/size)
	}
	if total-size > size/100 {
		t.Errorf("%d bytes over the wire for a %d byte file: more than 1%% extra", total, size)
	}
	if got := u.readBytes.Load(); got != size {
		t.Errorf("resumed upload read %d local bytes, want %d (the prefix re-hashed once, the rest sent once)", got, size)
	}
}

// TestSSHDResumeRefused: a journal point that no longer matches (another
// local file, a partial shorter than the offset) starts over, never trusting
// the remote size.
func TestSSHDResumeRefused(t *testing.T) {
	s := sshdtest.Start(t)
	u := newUploader(t, sshdOptions(s))
	j, data := localFile(t, 3<<20, "r/f.bin")
	partial := filepath.Join(s.Dir, "r", ".f.bin.partial")
	must(t, os.MkdirAll(filepath.Dir(partial), 0o777))
	fi, err := os.Stat(j.LocalPath)
	must(t, err)
	good := Checkpoint{Partial: partial, Offset: 1 << 20, Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi)}
	for _, tt := range []struct {
		name    string
		ck      Checkpoint
		partial []byte
	}{
		{"other file", func() Checkpoint { c := good; c.Inode++; return c }(), data[:2<<20]},
		{"short partial", good, data[:100]},
		{"other partial", func() Checkpoint { c := good; c.Partial += "x"; return c }(), data[:2<<20]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Garbage where the resume would start proves the start-over.
			junk := append([]byte(nil), tt.partial...)
			for i := range junk {
				junk[i] ^= 0xff
			}
			must(t, os.WriteFile(partial, junk, 0o666))
			if os.Geteuid() == 0 {
				uid, gid := lookupIDs(t, s.User)
				must(t, os.Chown(filepath.Dir(partial), uid, gid))
				must(t, os.Chown(partial, uid, gid))
			}
			j.Resume = &tt.ck
			j.Replace = true
			res, err := u.Upload(t.Context(), j)
			must(t, err)
			if res.Resumed != 0 {
				t.Errorf("Resumed = %d, want 0", res.Resumed)
			}
			assertFile(t, filepath.Join(s.Dir, "r", "f.bin"), data)
		})
	}
}

// TestSSHDGrownDuringUpload: a file that grows while it is sent is never
// published, and its partial is discarded even when resuming is possible.
func TestSSHDGrownDuringUpload(t *testing.T) {
	s := sshdtest.Start(t)
	u := newUploader(t, sshdOptions(s))
	j, _ := localFile(t, 8<<20, "grow/render.exr")
	j.Checkpoint = func(Checkpoint) {}
	grown := false
	j.Progress = func(done int64) {
		if !grown && done > 1<<20 {
			grown = true
			f, err := os.OpenFile(j.LocalPath, os.O_WRONLY|os.O_APPEND, 0)
			must(t, err)
			_, err = f.Write(make([]byte, 4096))
			must(t, errors.Join(err, f.Close()))
		}
	}
	_, err := u.Upload(t.Context(), j)
	wantCode(t, err, CodeChanged, false)
	if _, err := os.Stat(filepath.Join(s.Dir, "grow", "render.exr")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("grown file was published (stat err %v)", err)
	}
	assertNoPartial(t, s.Dir)
}

// TestSSHDOneReadPass counts the bytes read from the local file: each byte
// once, with sha256, the configured checksum, verify = "hash" and the
// checksum file all fed from that one pass.
func TestSSHDOneReadPass(t *testing.T) {
	s := sshdtest.Start(t)
	o := sshdOptions(s)
	o.Checksum, o.Verify = ChecksumMD5, VerifyHash
	u := newUploader(t, o)
	j, data := localFile(t, 5<<20+17, "pass/f.bin")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	if got := u.readBytes.Load(); got != int64(len(data)) {
		t.Errorf("read %d bytes from the local file, want %d", got, len(data))
	}
	m := md5.Sum(data)
	if res.SHA256 != sum(data) || res.Checksum != hex.EncodeToString(m[:]) || res.Verified != VerifyHash {
		t.Errorf("Upload() = %+v", res)
	}
}

// TestSSHDChecksumFile: NAME.sha256 / .md5 / .xxh64 in sha256sum format,
// written after the rename; the sha256 and md5 ones pass `sha256sum -c` /
// `md5sum -c` in the remote folder.
func TestSSHDChecksumFile(t *testing.T) {
	s := sshdtest.Start(t)
	for _, kind := range []string{ChecksumSHA256, ChecksumMD5, ChecksumXXH64} {
		t.Run(kind, func(t *testing.T) {
			o := sshdOptions(s)
			o.Checksum = kind
			u := newUploader(t, o)
			rel := "sums/ep103 " + kind + ".mxf"
			j, data := localFile(t, 1<<20+3, rel)
			res, err := u.Upload(t.Context(), j)
			must(t, err)
			var want string
			switch kind {
			case ChecksumSHA256:
				want = sum(data)
			case ChecksumMD5:
				m := md5.Sum(data)
				want = hex.EncodeToString(m[:])
			case ChecksumXXH64:
				want = fmt.Sprintf("%016x", xxhash.Sum64(data))
			}
			p := filepath.Join(s.Dir, filepath.FromSlash(rel)) + "." + kind
			if res.ChecksumFile != p || res.ChecksumErr != nil || res.Checksum != want {
				t.Errorf("Upload() = %+v, want checksum file %s with %s", res, p, want)
			}
			assertFile(t, p, []byte(want+"  "+filepath.Base(rel)+"\n"))
			if tool := map[string]string{ChecksumSHA256: "sha256sum", ChecksumMD5: "md5sum"}[kind]; tool != "" {
				cmd := exec.Command(tool, "-c", filepath.Base(p))
				cmd.Dir = filepath.Dir(p)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s -c %s: %v\n%s", tool, p, err, out)
				}
			}
		})
	}
	assertNoPartial(t, s.Dir)
}

// TestSSHDChecksumFileWrittenAgain: a checksum file whose rename landed but
// whose answer the link lost is written again (the engine finishes the
// publish again); the server already holds the same line, so that is done,
// and its temporary copy is gone as well. One that disagrees is refused, and
// its temporary copy is gone too.
func TestSSHDChecksumFileWrittenAgain(t *testing.T) {
	s := sshdtest.Start(t)
	o := sshdOptions(s)
	o.Checksum = ChecksumSHA256
	u := newUploader(t, o)
	j, _ := localFile(t, 300000, "again/take 1.mxf")
	first, err := u.Upload(t.Context(), j)
	must(t, err)
	res, err := u.FinishPublish(t.Context(), j)
	must(t, err)
	if res.ChecksumErr != nil || res.ChecksumFile != first.ChecksumFile {
		t.Errorf("FinishPublish() = %+v, want the checksum file %s done", res, first.ChecksumFile)
	}
	assertNoPartial(t, s.Dir)

	must(t, os.WriteFile(first.ChecksumFile, []byte("0000  take 1.mxf\n"), 0o644))
	res, err = u.FinishPublish(t.Context(), j)
	must(t, err)
	if res.ChecksumErr == nil {
		t.Errorf("FinishPublish() over a disagreeing checksum file = %+v, want it refused", res)
	}
	assertNoPartial(t, s.Dir)
}

// TestSSHDVerifyHash: the server's sha256sum agrees; a partial changed on
// the server fails verify_mismatch and nothing is published; an SFTP-only
// account says plainly that it cannot hash.
func TestSSHDVerifyHash(t *testing.T) {
	s := sshdtest.Start(t)
	o := sshdOptions(s)
	o.Verify = VerifyHash
	u := newUploader(t, o)
	j, _ := localFile(t, 700000, "v/it's a file.mxf") // the quote proves the shell quoting
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	if res.Verified != VerifyHash {
		t.Errorf("Verified = %q, want hash", res.Verified)
	}

	j2, _ := localFile(t, 700000, "v/tampered.mxf")
	u.beforeVerify = func(partial string) {
		f, err := os.OpenFile(partial, os.O_WRONLY, 0)
		must(t, err)
		_, err = f.WriteAt([]byte("X"), 1000)
		must(t, errors.Join(err, f.Close()))
	}
	_, err = u.Upload(t.Context(), j2)
	e := wantCode(t, err, CodeVerifyMismatch, false)
	if !strings.Contains(e.Msg, "sha256") {
		t.Errorf("mismatch message %q does not say which hash", e.Msg)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "v", "tampered.mxf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a mismatching file was published (stat err %v)", err)
	}
	assertNoPartial(t, s.Dir)

	t.Run("sftp only", func(t *testing.T) {
		s := sshdtest.StartWith(t, sshdtest.Options{SFTPOnly: true})
		o := sshdOptions(s)
		o.Verify = VerifyHash
		u := newUploader(t, o)
		j, _ := localFile(t, 1000, "f.bin")
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		_, err := u.Upload(ctx, j)
		e := wantCode(t, err, CodeHashUnavailable, false)
		if !strings.Contains(e.Msg, `verify = "size"`) {
			t.Errorf("message %q does not say what to do", e.Msg)
		}
		assertNoPartial(t, s.Dir)
	})
}

// TestFailurePastTheCopyResumesAtTheEnd: an attempt that fails for a passing reason after
// the server acknowledged every byte (here the source cannot be looked at again while the
// partial closes: EIO) records a checkpoint at the file's end, so the next attempt sends
// none of it again: it checks, verifies and publishes the partial. A small file has no
// checkpoint otherwise; with many in flight, those between their last write and their
// rename were what a dropped link made hotdrop send twice.
func TestFailurePastTheCopyResumesAtTheEnd(t *testing.T) {
	dests := map[string]func(t *testing.T) (Options, string){
		"file": func(t *testing.T) (Options, string) {
			root := t.TempDir()
			return Options{URL: "file://" + root, Logger: discardLogger()}, root
		},
		"sshd": func(t *testing.T) (Options, string) {
			s := sshdtest.Start(t)
			return sshdOptions(s), s.Dir
		},
	}
	for name, dest := range dests {
		t.Run(name, func(t *testing.T) {
			o, root := dest(t)
			u := newUploader(t, o)
			const size = 3 << 20 // a few writes, no checkpoint of its own
			j, data := localFile(t, size, "SR-1/shot.1001.exr")
			var ck checkpoints
			j.Checkpoint = ck.save
			var opens atomic.Int32
			j.Open = func() (*os.File, error) {
				if opens.Add(1) == 2 { // the look at the source after its last byte
					return nil, &os.PathError{Op: "open", Path: j.LocalPath, Err: syscall.EIO}
				}
				return os.Open(j.LocalPath)
			}
			_, err := u.Upload(t.Context(), j)
			if err == nil || !Classify(err).Transient {
				t.Fatalf("first Upload() = %v, want a transient failure", err)
			}
			last := ck.last()
			if last == nil || last.Offset != size {
				t.Fatalf("checkpoints after a failure past the copy: %+v, want one at %d (the end)", ck.list, size)
			}

			u.readBytes.Store(0)
			j.Resume = last
			res, err := u.Upload(t.Context(), j)
			must(t, err)
			assertFile(t, filepath.Join(root, "SR-1", "shot.1001.exr"), data)
			assertNoPartial(t, root)
			if res.Resumed != size || res.SHA256 != sum(data) {
				t.Errorf("second Upload() = %+v, want Resumed %d (nothing sent again) and sha256 %s", res, size, sum(data))
			}
		})
	}
}
