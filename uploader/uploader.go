package uploader

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures one destination. The uploader owns these defaults;
// config only decodes and passes them.
type Options struct {
	URL          string // sftp://user@host:port/abs/path or file:///abs/path
	IdentityFile string // OpenSSH private key, unencrypted
	PasswordFile string // the password (first line); also answers keyboard-interactive
	KnownHosts   string // required for sftp: host keys are always verified
	DialTimeout  time.Duration
	Logger       *slog.Logger
}

const (
	defaultDialTimeout = 15 * time.Second
	keepaliveInterval  = 15 * time.Second
	keepaliveTimeout   = 15 * time.Second
)

// Uploader delivers files to one destination. It is safe for concurrent use:
// several Uploads share one SSH connection, dialled on first use and again
// whenever the previous one died.
type Uploader struct {
	log         *slog.Logger
	opts        Options
	dialTimeout time.Duration

	local bool   // file:// destination
	base  string // the URL's folder: a slash path for sftp, an OS path for file://
	addr  string // host:port for sftp
	user  string

	// keepalive settings, variables so tests can shorten them.
	kaInterval, kaTimeout time.Duration

	mu     sync.Mutex // guards conn and closed; held while dialling so only one dial runs
	conn   *sftpConn
	closed bool
}

// New checks the options and returns an Uploader. It does not touch the
// network; the first Upload or Stat dials.
func New(opts Options) (*Uploader, error) {
	u := &Uploader{
		log:         opts.Logger,
		opts:        opts,
		dialTimeout: opts.DialTimeout,
		kaInterval:  keepaliveInterval,
		kaTimeout:   keepaliveTimeout,
	}
	if u.log == nil {
		u.log = slog.Default()
	}
	if u.dialTimeout <= 0 {
		u.dialTimeout = defaultDialTimeout
	}
	pu, err := url.Parse(opts.URL)
	if err != nil {
		// url.Error repeats the URL, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("destination url: %w", err)
	}
	shown := pu.Redacted()
	switch pu.Scheme {
	case "file":
		if pu.Host != "" && pu.Host != "localhost" {
			return nil, fmt.Errorf("destination url %q: a file:// URL names a local folder, file:///abs/path", shown)
		}
		if !strings.HasPrefix(pu.Path, "/") {
			return nil, fmt.Errorf("destination url %q: the folder must be an absolute path", shown)
		}
		u.local = true
		u.base = filepath.Clean(filepath.FromSlash(pu.Path))
		return u, nil
	case "sftp":
	default:
		return nil, fmt.Errorf("destination url %q: scheme must be sftp:// or file://", shown)
	}
	if pu.Hostname() == "" {
		return nil, fmt.Errorf("destination url %q: no host", shown)
	}
	port := pu.Port()
	if port == "" {
		port = "22"
	}
	u.addr = net.JoinHostPort(pu.Hostname(), port)
	if pu.User != nil {
		if _, set := pu.User.Password(); set {
			return nil, fmt.Errorf("destination url: holds a password; put it in password_file instead, where it is not logged")
		}
		u.user = pu.User.Username()
	}
	if u.user == "" {
		cur, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("destination url %q: no user name and the current user is unknown: %w", shown, err)
		}
		u.user = cur.Username
	}
	u.base = sftpBase(pu.Path)
	if opts.KnownHosts == "" {
		return nil, fmt.Errorf("destination: known_hosts is required for sftp; hotdrop always verifies the server's host key")
	}
	if _, _, err := loadAuth(opts.IdentityFile, opts.PasswordFile, false); err != nil {
		return nil, err
	}
	return u, nil
}

// sftpBase turns the URL path into the remote folder: "/x" is absolute,
// "/~/x" and "" are relative to the login folder.
func sftpBase(p string) string {
	switch {
	case p == "" || p == "/~" || p == "/~/":
		return "."
	case strings.HasPrefix(p, "/~/"):
		return path.Clean(p[3:])
	}
	return path.Clean(p)
}

// Close ends the connection, if any, and waits for its goroutines.
// Uploads in flight fail with a transient error.
func (u *Uploader) Close() error {
	u.mu.Lock()
	c := u.conn
	u.conn = nil
	u.closed = true
	u.mu.Unlock()
	if c != nil {
		c.close()
		c.wg.Wait()
	}
	return nil
}

// Job is one file to deliver.
type Job struct {
	LocalPath string
	RemoteRel string    // slash-separated, relative to the URL folder; from RemotePath()
	Size      int64     // expected local size
	ModTime   time.Time // expected local mtime (zero: not checked); a change gives CodeChanged
	Replace   bool      // an existing final remote file may be replaced (hotdrop delivered it before)
	// BeforeRename journals the intent to rename, after the size check and
	// just before the partial becomes the final file; an error aborts and
	// removes the partial. May be nil.
	BeforeRename func(ctx context.Context) error
	// Progress gets the bytes read so far; it is called from the goroutine
	// feeding the upload, never concurrently, and must not block. May be nil.
	Progress func(done int64)
}

// Result describes a delivered file.
type Result struct {
	Remote string // full remote path of the final file
	Size   int64
	SHA256 string // lower-case hex of what was read and sent
}

// target is one way to reach the destination folder: an SFTP session or a
// local folder. Its methods return raw errors; Upload classifies them, since
// it knows the operation and the path.
type target interface {
	abs(rel string) string
	dir(p string) string
	partial(p string) string
	stat(p string) (fs.FileInfo, error) // fs.ErrNotExist when absent
	mkdirAll(dir string) error
	create(p string) (remoteFile, error)
	remove(p string) error
	rename(from, to string, replace bool) (how string, err error) // how names the method, for the log
	freeSpace(dir string) (int64, bool)                           // false: unknown
}

// remoteFile is an open partial file.
type remoteFile interface {
	ReadFrom(r io.Reader) (int64, error)
	Sync() error
	Close() error
}

// Upload sends one file: to ".NAME.partial" beside the final name, then,
// after the size check and j.BeforeRename, renamed into place. The final
// name never holds a partial file. On any failure the partial is removed and
// an *Error is returned. Upload does not retry. Cancelling ctx stops the
// transfer at the next chunk.
func (u *Uploader) Upload(ctx context.Context, j Job) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, classify("upload", j.LocalPath, err)
	}
	if err := checkName(j.RemoteRel); err != nil {
		return Result{}, &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	f, fi, err := openLocal(j)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	t, err := u.target(ctx)
	if err != nil {
		return Result{}, err
	}
	final := t.abs(j.RemoteRel)
	res, err := u.transfer(ctx, t, f, fi, j, final)
	if err != nil {
		u.log.Debug("upload failed", "local", j.LocalPath, "remote", final, "err", err)
		return Result{}, err
	}
	u.log.Debug("uploaded", "local", j.LocalPath, "remote", final, "size", res.Size)
	return res, nil
}

// openLocal opens the source and checks that it is still the file the
// caller saw settle.
func openLocal(j Job) (*os.File, os.FileInfo, error) {
	if li, err := os.Lstat(j.LocalPath); err == nil && !li.Mode().IsRegular() {
		return nil, nil, &Error{Code: CodeUnsafePath, Msg: fmt.Sprintf("local file %s is no longer a regular file (%s); hotdrop never follows links or opens special files", j.LocalPath, li.Mode().Type())}
	}
	f, err := os.OpenFile(j.LocalPath, os.O_RDONLY|openFlags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, &Error{Code: CodeUnsafePath, Msg: fmt.Sprintf("local file %s became a symbolic link; hotdrop never follows links", j.LocalPath), Err: err}
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &Error{Code: CodeChanged, Msg: fmt.Sprintf("local file %s is gone", j.LocalPath), Err: err}
		}
		return nil, nil, classifyLocal(j.LocalPath, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, classifyLocal(j.LocalPath, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, &Error{Code: CodeUnsafePath, Msg: fmt.Sprintf("local file %s is not a regular file (%s); hotdrop never opens special files", j.LocalPath, fi.Mode().Type())}
	}
	if fi.Size() != j.Size || (!j.ModTime.IsZero() && !fi.ModTime().Equal(j.ModTime)) {
		f.Close()
		return nil, nil, &Error{Code: CodeChanged, Msg: fmt.Sprintf(
			"local file %s changed since it settled (size %d, want %d)", j.LocalPath, fi.Size(), j.Size)}
	}
	return f, fi, nil
}

// classifyLocal names local read problems. A source on NFS or SMB can fail
// for a moment, so anything but a permission problem is retried.
func classifyLocal(p string, err error) *Error {
	if errors.Is(err, fs.ErrPermission) {
		return &Error{Code: CodePermissionDenied, Msg: fmt.Sprintf("cannot read local file %s: permission denied", p), Err: err}
	}
	return &Error{Code: CodeTransient, Msg: fmt.Sprintf("reading local file %s", p), Transient: true, Err: err}
}

// transfer runs the steps after the source is open and the target reached;
// the partial is removed on every failure.
func (u *Uploader) transfer(ctx context.Context, t target, f *os.File, fi os.FileInfo, j Job, final string) (Result, error) {
	dir, partial := t.dir(final), t.partial(final)
	if err := checkFinal(t, final, j.Replace); err != nil {
		return Result{}, err
	}
	if err := t.mkdirAll(dir); err != nil {
		return Result{}, classify("create folder", dir, err)
	}
	w, err := t.create(partial)
	if err != nil {
		return Result{}, u.writeError(t, "create", partial, err, j.Size)
	}
	published := false
	defer func() {
		if !published {
			// Best effort, and done even when ctx is cancelled: a partial left
			// behind would only confuse the ingest side.
			if rerr := t.remove(partial); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				u.log.Warn("could not remove partial upload", "remote", partial, "err", rerr)
			}
		}
	}()
	sum, err := u.writePartial(ctx, t, w, f, fi, j, partial)
	if err != nil {
		return Result{}, err
	}
	if err := u.publish(ctx, t, j, partial, final); err != nil {
		return Result{}, err
	}
	published = true
	return Result{Remote: final, Size: j.Size, SHA256: sum}, nil
}

// writePartial copies and hashes the source in one pass, then proves that
// both ends hold what was meant: the source unchanged, the partial complete.
func (u *Uploader) writePartial(ctx context.Context, t target, w remoteFile, f *os.File, fi os.FileInfo, j Job, partial string) (string, error) {
	hr := &hashReader{ctx: ctx, r: io.LimitReader(f, j.Size), h: sha256.New(), remain: j.Size, progress: j.Progress}
	n, werr := w.ReadFrom(hr)
	if werr == nil {
		if err := w.Sync(); err != nil {
			werr = fmt.Errorf("fsync: %w", err)
		}
	}
	// pkg/sftp can swallow the error of the last short write; Close and the
	// size check below catch it.
	if cerr := w.Close(); werr == nil && cerr != nil {
		werr = fmt.Errorf("close: %w", cerr)
	}
	if hr.err != nil {
		if ctx.Err() != nil {
			return "", classify("upload", partial, ctx.Err())
		}
		return "", classifyLocal(j.LocalPath, hr.err)
	}
	if werr != nil {
		return "", u.writeError(t, "write", partial, werr, j.Size)
	}
	if err := checkUnchanged(j.LocalPath, fi); err != nil {
		return "", err
	}
	if n != j.Size {
		return "", &Error{Code: CodeChanged, Msg: fmt.Sprintf("local file %s: read %d bytes, want %d", j.LocalPath, n, j.Size)}
	}
	rfi, err := t.stat(partial)
	if err != nil {
		return "", classify("check size of", partial, err)
	}
	if rfi.Size() != j.Size {
		return "", u.writeError(t, "check size of", partial,
			fmt.Errorf("%w: the server holds %d bytes, we sent %d", errShortRemote, rfi.Size(), j.Size), j.Size)
	}
	return hex.EncodeToString(hr.h.Sum(nil)), nil
}

// publish renames the checked partial into place, after the caller has
// journaled its intent.
func (u *Uploader) publish(ctx context.Context, t target, j Job, partial, final string) error {
	// The upload may have taken hours: look again, so a file that appeared
	// meanwhile is not overwritten.
	if err := checkFinal(t, final, j.Replace); err != nil {
		return err
	}
	if j.BeforeRename != nil {
		if err := j.BeforeRename(ctx); err != nil {
			if e := (*Error)(nil); errors.As(err, &e) {
				return err
			}
			return &Error{Code: CodeTransient, Transient: true,
				Msg: fmt.Sprintf("recording the rename of %s failed; nothing was published", final), Err: err}
		}
	}
	how, err := t.rename(partial, final, j.Replace)
	if err != nil {
		if !j.Replace {
			if _, serr := t.stat(final); serr == nil {
				return remoteExists(final)
			}
		}
		return classify("rename into place", final, err)
	}
	u.log.Debug("renamed into place", "remote", final, "method", how)
	return nil
}

// errShortRemote marks a partial whose size on the server is not what we
// sent, which is how a swallowed write error (often a full disk) shows.
var errShortRemote = errors.New("remote size mismatch")

func remoteExists(final string) *Error {
	return &Error{Code: CodeRemoteExists, Msg: fmt.Sprintf(
		"remote file %s already exists and hotdrop did not deliver it; it is never overwritten silently", final)}
}

// checkFinal refuses to go on when the final name is taken and may not be replaced.
func checkFinal(t target, final string, replace bool) error {
	rfi, err := t.stat(final)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return classify("check", final, err)
	case rfi.IsDir():
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf("remote path %s is a folder", final)}
	case !replace:
		return remoteExists(final)
	}
	return nil
}

// checkUnchanged re-reads the source's identity after the last byte was sent.
func checkUnchanged(p string, before os.FileInfo) error {
	now, err := os.Stat(p)
	if err != nil {
		return &Error{Code: CodeChanged, Msg: fmt.Sprintf("local file %s went away during upload", p), Err: err}
	}
	if now.Size() != before.Size() || !now.ModTime().Equal(before.ModTime()) || !os.SameFile(now, before) {
		return &Error{Code: CodeChanged, Msg: fmt.Sprintf(
			"local file %s changed during upload; the partial was discarded", p)}
	}
	return nil
}

// writeError classifies a failed write. OpenSSH reports a full disk as a
// bare SSH_FX_FAILURE, so when the server can tell us its free space we ask.
func (u *Uploader) writeError(t target, op, p string, err error, size int64) *Error {
	if e := (*Error)(nil); errors.As(err, &e) {
		return e
	}
	if isFailure(err) || errors.Is(err, errShortRemote) {
		dir := t.dir(p)
		need := size
		if fi, serr := t.stat(p); serr == nil {
			need -= fi.Size()
		}
		if free, ok := t.freeSpace(dir); ok && free < max(need, 1) {
			return &Error{Code: CodeNoSpace, Msg: fmt.Sprintf(
				"%s %s: the destination has %d bytes free, %d more needed", op, p, free, need), Err: err}
		}
	}
	return classify(op, p, err)
}

// Stat reports the size of rel below the destination folder, for the start-up
// reconciliation of files the journal shows mid-rename.
func (u *Uploader) Stat(ctx context.Context, rel string) (size int64, exists bool, err error) {
	if err := checkName(rel); err != nil {
		return 0, false, &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	t, err := u.target(ctx)
	if err != nil {
		return 0, false, err
	}
	p := t.abs(rel)
	fi, err := t.stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, classify("stat", p, err)
	}
	return fi.Size(), true, nil
}

// target returns the way to the destination, dialling when needed.
func (u *Uploader) target(ctx context.Context) (target, error) {
	if u.local {
		return localTarget{base: u.base}, nil
	}
	return u.session(ctx)
}
