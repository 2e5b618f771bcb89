package uploader

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/pkg/sftp"
)

// Tests against servers that are not OpenSSH, each for the way it differs. Real servers
// where Debian has them (rclone serve sftp, ProFTPD mod_sftp); a fake on pkg/sftp's
// request server only for a stat that lags behind the close, which no installable
// server does on a local disk.

// loggedUploader is an uploader for s whose log the test can read.
func loggedUploader(t *testing.T, s *sshdtest.Server, change func(*Options)) (*Uploader, *syncBuffer) {
	t.Helper()
	var logs syncBuffer
	o := Options{URL: s.URL(), IdentityFile: s.IdentityFile, KnownHosts: s.KnownHosts,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if change != nil {
		change(&o)
	}
	return newUploader(t, o), &logs
}

// TestRcloneSequentialOnly: rclone serve sftp without a VFS cache refuses writes out of
// order. The first large file is refused once, sent again in order and delivered; the
// destination is then known as sequential-only (logged once) and the next file goes in
// order at once. A resume there starts again (rclone cannot reopen a file for writing),
// and says so.
func TestRcloneSequentialOnly(t *testing.T) {
	s := sshdtest.StartRclone(t)
	u, logs := loggedUploader(t, s, nil)
	// Concurrent writes reach the server out of order nearly always, not always: a run whose
	// writes all happened to arrive in order is tried again with a new file (three in all).
	for i := range 3 {
		name := fmt.Sprintf("SR-901/big%d.mov", i)
		j, data := localFile(t, 20<<20, name)
		res, err := u.Upload(t.Context(), j)
		must(t, err)
		assertFile(t, filepath.Join(s.Dir, filepath.FromSlash(name)), data)
		if res.Remote != "/"+name {
			t.Errorf("remote path = %q, want the server's own, relative to its root", res.Remote)
		}
		if u.sequential.Load() {
			break
		}
	}
	if !u.sequential.Load() {
		t.Fatalf("the destination is not remembered as sequential-only; log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), `Illegal seek`) {
		t.Errorf("the log does not carry rclone's own words for the refusal:\n%s", logs)
	}

	j2, data2 := localFile(t, 8<<20, "SR-901/second.mov")
	_, err := u.Upload(t.Context(), j2)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "SR-901", "second.mov"), data2)
	if n := strings.Count(logs.String(), "refused a write sent out of order"); n != 1 {
		t.Errorf("out-of-order refusals = %d, want 1 (the second file goes in order at once)", n)
	}
	if n := strings.Count(logs.String(), "accepts only in-order writes"); n != 1 {
		t.Errorf("the sequential-only finding was logged %d times, want once", n)
	}

	// A partial the journal says is half sent: rclone cannot reopen it for writing.
	j3, data3 := localFile(t, 4<<20, "SR-901/third.mov")
	partial := filepath.Join(s.Dir, "SR-901", ".third.mov.partial")
	must(t, os.WriteFile(partial, data3[:1<<20], 0o644))
	if os.Geteuid() == 0 {
		uid, gid := lookupIDs(t, s.User) // as rclone itself would have left it
		must(t, os.Chown(partial, uid, gid))
	}
	fi, serr := os.Stat(j3.LocalPath)
	must(t, serr)
	j3.Resume = &Checkpoint{Partial: "/SR-901/.third.mov.partial", Offset: 1 << 20, Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi)}
	res, err := u.Upload(t.Context(), j3)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "SR-901", "third.mov"), data3)
	said := strings.Contains(logs.String(), "refused to continue the resumed partial") ||
		strings.Contains(logs.String(), "starting over instead of resuming")
	if res.Resumed != 0 || !said {
		t.Errorf("resumed from %d; the log should say it started again:\n%s", res.Resumed, logs.String())
	}
	assertNoPartial(t, s.Dir)
}

// TestProFTPDWithoutRenameAndStatvfs: ProFTPD told not to offer posix-rename or statvfs.
// New files are published by the plain rename; a redelivery moves the old file aside and
// never leaves the name holding a partial. A full disk (a tmpfs) is still no_space, from
// the server's own words, with no free-space check to ask.
func TestProFTPDWithoutRenameAndStatvfs(t *testing.T) {
	s := sshdtest.StartProFTPD(t, sshdtest.ProFTPDOptions{NoExtensions: []string{"posixRename", "statvfs"}})
	u, logs := loggedUploader(t, s, nil)
	j, _ := localFile(t, 3<<20, "PKG/a.mxf")
	_, err := u.Upload(t.Context(), j)
	must(t, err)
	c := u.firstConn()
	if c.posixRename || c.statvfs {
		t.Fatalf("ProFTPD still offers posix-rename=%v statvfs=%v", c.posixRename, c.statvfs)
	}
	_, err = u.Upload(t.Context(), j)
	wantCode(t, err, CodeRemoteExists, false)
	j2, data2 := localFile(t, 1<<20, "PKG/a.mxf")
	j2.Replace = true
	_, err = u.Upload(t.Context(), j2)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "PKG", "a.mxf"), data2)
	if !strings.Contains(logs.String(), "move aside, rename, remove the old file") {
		t.Errorf("the log shows no move-aside publish:\n%s", logs)
	}
	if got := files(t, s.Dir); strings.Join(got, " ") != "PKG/a.mxf" {
		t.Errorf("remote files = %v, want the file only; log:\n%s", got, logs.String())
	}
	// A replace cut short left an older copy aside, once beside a file in place and once
	// with the name empty: the next replaces go through, and no copy stays behind.
	aside := filepath.Join(s.Dir, "PKG", ".a.mxf.partial.replaced")
	for _, emptyName := range []bool{false, true} {
		must(t, os.WriteFile(aside, []byte("an older copy"), 0o644))
		uid, gid := lookupIDs(t, s.User)
		must(t, os.Chown(aside, uid, gid))
		if emptyName {
			must(t, os.Remove(filepath.Join(s.Dir, "PKG", "a.mxf")))
		}
		j4, data4 := localFile(t, 1<<20, "PKG/a.mxf")
		j4.Replace = true
		_, err = u.Upload(t.Context(), j4)
		must(t, err)
		assertFile(t, filepath.Join(s.Dir, "PKG", "a.mxf"), data4)
		if got := files(t, s.Dir); strings.Join(got, " ") != "PKG/a.mxf" {
			t.Errorf("empty name %v: remote files = %v, want the file only", emptyName, got)
		}
	}

	if os.Geteuid() != 0 {
		t.Skip("the full-disk half needs root to mount a tmpfs")
	}
	full := filepath.Join(s.Dir, "full")
	must(t, os.Mkdir(full, 0o755))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", full).Run() })
	uid, gid := lookupIDs(t, s.User)
	must(t, os.Chown(full, uid, gid))
	j3, _ := localFile(t, 2<<20, "full/big.bin")
	_, err = u.Upload(t.Context(), j3)
	e := wantCode(t, err, CodeNoSpace, false)
	if r := e.Reason(); !strings.Contains(r, "the server said: SSH_FX_") || !strings.Contains(strings.ToLower(r), "no space") {
		t.Errorf("no_space reason %q does not carry the server's words", r)
	}
	t.Logf("no_space without statvfs: %s", e.Reason())
	assertNoPartial(t, s.Dir)
}

// TestProFTPDNoExec: mod_sftp runs no commands. verify = "hash" fails
// remote_hash_unavailable with the reason; "auto" verifies by size and says why once.
func TestProFTPDNoExec(t *testing.T) {
	s := sshdtest.StartProFTPD(t, sshdtest.ProFTPDOptions{})
	uh, _ := loggedUploader(t, s, func(o *Options) { o.Verify = VerifyHash })
	j, _ := localFile(t, 1<<20, "h/a.bin")
	_, err := uh.Upload(t.Context(), j)
	e := wantCode(t, err, CodeHashUnavailable, false)
	if !strings.Contains(e.Error(), "refused") {
		t.Errorf("remote_hash_unavailable %q does not say the server refused the command", e.Error())
	}
	assertNoPartial(t, s.Dir)

	ua, logs := loggedUploader(t, s, nil)
	for _, name := range []string{"a/1.bin", "a/2.bin"} {
		j, data := localFile(t, 1<<20, name)
		res, err := ua.Upload(t.Context(), j)
		must(t, err)
		assertFile(t, filepath.Join(s.Dir, filepath.FromSlash(name)), data)
		if res.Verified != VerifySize {
			t.Errorf("%s verified by %q, want size", name, res.Verified)
		}
	}
	if n := strings.Count(logs.String(), "the server cannot hash files"); n != 1 {
		t.Errorf("verify = auto said %d times that it falls back, want once:\n%s", n, logs)
	}
}

// TestProFTPDDotfilesRefused: a server that refuses dotfiles (PathDenyFilter) refuses the
// default temporary name, in its own words; temp_name "{name}.partial" or a folder
// "_partial/{name}" delivers, the rename staying within the destination folder.
func TestProFTPDDotfilesRefused(t *testing.T) {
	s := sshdtest.StartProFTPD(t, sshdtest.ProFTPDOptions{DenyDotfiles: true})
	u, _ := loggedUploader(t, s, nil)
	j, _ := localFile(t, 1000, "d/a.wav")
	_, err := u.Upload(t.Context(), j)
	e := wantCode(t, err, CodePermissionDenied, false)
	if !strings.Contains(e.Reason(), "the server said: SSH_FX_PERMISSION_DENIED") {
		t.Errorf("permission_denied reason %q does not carry the server's status", e.Reason())
	}
	for _, tmpl := range []string{"{name}.partial", "_partial/{name}"} {
		t.Run(strings.ReplaceAll(tmpl, "/", "_"), func(t *testing.T) {
			u, _ := loggedUploader(t, s, func(o *Options) { o.TempName = tmpl })
			j, data := localFile(t, 300<<10, "d/"+strings.NewReplacer("{", "", "}", "", "/", "_").Replace(tmpl)+".wav")
			_, err := u.Upload(t.Context(), j)
			must(t, err)
			assertFile(t, filepath.Join(s.Dir, filepath.FromSlash(j.RemoteRel)), data)
			assertNoPartial(t, s.Dir)
		})
	}
}

// laggingFS is pkg/sftp's in-memory server whose stat of a newly written file shows no
// bytes the first lagStats times it is asked, as object-store gateways do (they store
// after they answer). Counting stats, not time, keeps the test independent of speed.
type laggingFS struct {
	sftp.Handlers
	lagStats atomic.Int64 // for files written from now on
	mu       sync.Mutex
	left     map[string]int64 // stats still to answer with no bytes, by path
}

func newLaggingFS() (*laggingFS, *sftp.Handlers) {
	l := &laggingFS{Handlers: sftp.InMemHandler(), left: map[string]int64{}}
	return l, &sftp.Handlers{FileGet: l.FileGet, FilePut: l, FileCmd: l.FileCmd, FileList: l}
}

func (l *laggingFS) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	l.mu.Lock()
	l.left[r.Filepath] = l.lagStats.Load()
	l.mu.Unlock()
	return l.FilePut.Filewrite(r)
}

func (l *laggingFS) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	la, err := l.FileList.Filelist(r)
	if err != nil || r.Method != "Stat" {
		return la, err
	}
	l.mu.Lock()
	lag := l.left[r.Filepath] > 0
	if lag {
		l.left[r.Filepath]--
	}
	l.mu.Unlock()
	if !lag {
		return la, nil
	}
	fis := make([]os.FileInfo, 1)
	if _, err := la.ListAt(fis, 0); err != nil && err != io.EOF {
		return nil, err
	}
	return listerAt{emptyInfo{fis[0]}}, nil
}

type emptyInfo struct{ os.FileInfo }

func (emptyInfo) Size() int64 { return 0 }

type listerAt []os.FileInfo

func (l listerAt) ListAt(out []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(out, l[off:])
	if n < len(out) {
		return n, io.EOF
	}
	return n, nil
}

// TestStatLagsAfterClose: a server that shows a closed file's size only later is waited
// for, within a bound (the default 30 s; here it shows it at the fourth look); past the
// bound the upload fails with the sizes in its words.
func TestStatLagsAfterClose(t *testing.T) {
	fake, handlers := newLaggingFS()
	fake.lagStats.Store(4)
	ts := startServerWith(t, "", handlers)
	var logs syncBuffer
	o := ts.options()
	o.URL = "sftp://ingest@" + ts.Addr + "/"
	o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	o.Checksum = ChecksumNone
	u := newUploader(t, o)
	j, _ := localFile(t, 200<<10, "lag/a.bin")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	if size, ok, err := u.Stat(t.Context(), "lag/a.bin"); err != nil || !ok || size != j.Size || res.Size != j.Size {
		t.Errorf("after the upload the server holds %d bytes (exists %v, %v), want %d", size, ok, err, j.Size)
	}
	if !strings.Contains(logs.String(), "verify waited for it") {
		t.Errorf("the log does not say verify waited for the size:\n%s", logs.String())
	}

	u.statLag = 100 * time.Millisecond
	fake.lagStats.Store(1 << 30)
	j2, _ := localFile(t, 200<<10, "lag/b.bin")
	_, err = u.Upload(t.Context(), j2)
	e := wantCode(t, err, CodeRemoteError, false)
	if !strings.Contains(e.Error(), "the server holds 0 bytes") {
		t.Errorf("error %q does not say what the server showed", e.Error())
	}
}

// TestRememberAcrossReload: a new uploader for the same server (a config reload) keeps
// what the old one learnt; one for another folder does not.
func TestRememberAcrossReload(t *testing.T) {
	o := Options{URL: "sftp://ingest@127.0.0.1:2222/in", KnownHosts: "/dev/null", Logger: discardLogger()}
	old := newUploader(t, o)
	old.markSequential("SSH_FX_FAILURE \"Illegal seek\"")
	old.noRemoteHash.Store(true)
	old.stripeOff("it refused a second handle")
	old.streams.level.Store(8)
	old.rtt.Store(int64(100 * time.Millisecond))
	o.TempName = "{name}.partial"
	same := newUploader(t, o)
	same.Remember(old)
	if !same.sequential.Load() || !same.noRemoteHash.Load() || !same.streams.off.Load() {
		t.Errorf("after Remember: sequential=%v noRemoteHash=%v stripingOff=%v, want all", same.sequential.Load(), same.noRemoteHash.Load(), same.streams.off.Load())
	}
	if same.streams.level.Load() != 8 || same.FilesInFlight(4) != 16 {
		t.Errorf("after Remember: streams level %d, files in flight %d; want 8 and 16 (a long link)", same.streams.level.Load(), same.FilesInFlight(4))
	}
	o.URL = "sftp://ingest@127.0.0.1:2222/other"
	other := newUploader(t, o)
	other.Remember(old)
	if other.sequential.Load() || other.noRemoteHash.Load() {
		t.Errorf("another folder took over what the old one learnt")
	}
}

// TestProFTPDResumeAppends: a partial whose bytes past the journal's offset all read back
// equal to the local file's is continued at the server's size, with no SETSTAT to cut it
// (which sequential-only servers refuse), and the log says so; the resumed file is then
// proved by reading its earlier part back (ProFTPD cannot hash).
func TestProFTPDResumeAppends(t *testing.T) {
	s := sshdtest.StartProFTPD(t, sshdtest.ProFTPDOptions{})
	u, logs := loggedUploader(t, s, nil)
	j, data := localFile(t, 3<<20, "r/a.mov")
	must(t, os.MkdirAll(filepath.Join(s.Dir, "r"), 0o755))
	partial := filepath.Join(s.Dir, "r", ".a.mov.partial")
	must(t, os.WriteFile(partial, data[:1<<20], 0o644))
	if os.Geteuid() == 0 {
		uid, gid := lookupIDs(t, s.User)
		must(t, os.Chown(filepath.Dir(partial), uid, gid))
		must(t, os.Chown(partial, uid, gid))
	}
	fi, err := os.Stat(j.LocalPath)
	must(t, err)
	j.Resume = &Checkpoint{Partial: partial, Offset: 512 << 10, Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi)}
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "r", "a.mov"), data)
	if res.Resumed != 1<<20 || res.Verified != VerifyReadback {
		t.Errorf("Upload() resumed from %d, verified by %q; want 1 MiB and readback", res.Resumed, res.Verified)
	}
	if !strings.Contains(logs.String(), "appending at the server's size") {
		t.Errorf("the log does not say the resume appended:\n%s", logs.String())
	}
}
