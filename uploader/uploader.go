package uploader

import (
	"context"
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/internal/safefs"
)

// Options configures one destination, as config resolved it. A zero value falls back on the
// same default config gives it (config.DefaultTempName, config.DefaultVerify); tuning that is
// not a config key (in-flight requests, dial timeout) the uploader owns.
type Options struct {
	URL          string // sftp://user@host:port/abs/path or file:///abs/path
	IdentityFile string // OpenSSH private key, unencrypted
	PasswordFile string // the password (first line); also answers keyboard-interactive
	KnownHosts   string // required for sftp: host keys are always verified
	DialTimeout  time.Duration
	Logger       *slog.Logger

	// Checksum is the checksum file written beside each delivered file
	// (ChecksumSHA256, ChecksumMD5, ChecksumXXH64); "" or ChecksumNone
	// writes none. sha256 is computed either way.
	Checksum string
	// Verify is VerifyAuto (default), VerifySize or VerifyHash. Whatever it
	// says, a resumed file is checked by hash or read-back, never by size alone.
	Verify string
	// Concurrency is how many files the caller uploads at once
	// (destination.concurrency); it sizes the connection pool.
	Concurrency int
	// Connections is the number of SSH connections in the pool; 0 derives
	// it from Concurrency: one per two files in flight, at most 4.
	Connections int
	// RequestsInFlight is the SFTP write requests in flight per file; 0 uses
	// a default measured on loopback and long links.
	RequestsInFlight int
	// Streams is how many SFTP streams one large file is written over at
	// once (destination.streams): further SSH connections of the pool and
	// further channels on them, each with a handle on the same partial. On a
	// long link one stream moves at most the server's channel window (about
	// 2 MiB with OpenSSH) per round trip. 0 is "auto": on a link whose round
	// trip is long enough for that to matter, start with a few and double
	// while the throughput grows, up to AutoStreamsMax. 1 turns striping off.
	Streams int
	// Bandwidth caps all transfers together, bytes per second; 0 is unlimited.
	Bandwidth int64
	// Schedule overrides Bandwidth by time of day (the first window that
	// holds the local time wins).
	Schedule []Window
	// Clock drives the bandwidth limiter, the checkpoint throttle and the wait for a stat that
	// lags its close; nil is real time.
	Clock clock.Clock
	// Fsync asks the server to flush each partial to disk (fsync@openssh.com,
	// where offered) before the rename. Off by default, like OpenSSH's sftp
	// and rclone: it costs a disk flush per file, which halves large-file
	// throughput and caps small files at a few hundred per second.
	Fsync bool
	// TempName is where each file is written before its rename into place,
	// relative to the final file's folder: {name} is the final file's name.
	// "" is config.DefaultTempName (".{name}.partial"); servers that refuse or hide
	// dotfiles want "{name}.partial", or a folder such as ".hotdrop-tmp/{name}".
	TempName string
}

const (
	defaultDialTimeout = 15 * time.Second
	keepaliveInterval  = 15 * time.Second
	keepaliveTimeout   = 15 * time.Second
	// defaultInflight write requests per file: 64 x 255 KiB = 16 MiB queued,
	// measured best on loopback (4: 136 MB/s, 16: 158, 64: 267 on a busy
	// 2-core machine) and enough for a 100 ms link at 160 MB/s. A small file
	// uses only as many as it has chunks.
	defaultInflight = 64
	maxConnections  = 4
	// MaxStreams bounds destination.streams.
	MaxStreams = 32
	// defaultStatLag: how long verify waits for a closed partial's size to
	// appear on a server that stores behind its answers.
	defaultStatLag = 30 * time.Second
)

// Uploader delivers files to one destination. It is safe for concurrent
// use: Uploads share a small pool of SSH connections, each dialled on first
// use and again whenever it died, and one bandwidth limit.
type Uploader struct {
	log         *slog.Logger
	opts        Options
	dialTimeout time.Duration
	checksum    string // "" when no checksum file
	verify      string
	inflight    int
	fsync       bool
	clock       clock.Clock
	limit       *limiter

	tempName string // Options.TempName, checked

	local bool   // file:// destination
	base  string // the URL's folder: a slash path for sftp, an OS path for file://
	addr  string // host:port for sftp
	user  string

	// keepalive settings, variables so tests can shorten them.
	kaInterval, kaTimeout time.Duration
	// statLag bounds how long a closed partial may take to show its whole
	// size (object-store gateways store after they answer).
	statLag time.Duration

	mu         sync.Mutex // guards closed and each slot's conn and active
	slots      []*slot    // the first leaseSlots take uploads; all carry striped writes
	leaseSlots int
	closed     bool

	streams  stripeState  // destination.streams and what auto learnt
	striping atomic.Int32 // files being striped now

	dirs sync.Map // remote folders known to exist

	// readBytes counts bytes read from local files: the proof of one pass.
	readBytes atomic.Int64
	// noRemoteHash is set once the server showed it cannot hash a file
	// (SFTP-only account, no sha256sum): verify = "auto" stops asking.
	noRemoteHash atomic.Bool
	// bigPackets: the last SFTP session started advertised limits@openssh.com.
	bigPackets atomic.Bool
	// rtt is the round trip the last connection measured (a time.Duration).
	rtt atomic.Int64
	// sequential is set once the server refused writes sent out of order
	// and took them in order: every upload then sends in order.
	sequential atomic.Bool
	capsMu     sync.Mutex
	caps       Capabilities // what the last Probe found out
	// beforeVerify, for tests, runs when the partial is complete, before
	// the remote hash.
	beforeVerify func(partial string)
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
		statLag:     defaultStatLag,
	}
	if u.log == nil {
		u.log = slog.Default()
	}
	if u.dialTimeout <= 0 {
		u.dialTimeout = defaultDialTimeout
	}
	if err := u.applyTuning(opts); err != nil {
		return nil, err
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

// applyTuning checks and defaults the transfer options.
func (u *Uploader) applyTuning(o Options) error {
	if err := checkChecksumKind(o.Checksum); err != nil {
		return err
	}
	if o.Checksum != ChecksumNone {
		u.checksum = o.Checksum
	}
	u.verify = o.Verify
	if u.verify == "" {
		u.verify = config.DefaultVerify
	}
	switch u.verify {
	case VerifyAuto, VerifySize, VerifyHash:
	default:
		return fmt.Errorf("destination verify %q: want auto, size or hash", o.Verify)
	}
	if o.Bandwidth < 0 {
		return fmt.Errorf("destination bandwidth %d: must not be negative", o.Bandwidth)
	}
	u.fsync = o.Fsync
	u.tempName = o.TempName
	if u.tempName == "" {
		u.tempName = config.DefaultTempName
	}
	if err := checkTempName(u.tempName); err != nil {
		return err
	}
	u.inflight = o.RequestsInFlight
	if u.inflight <= 0 {
		u.inflight = defaultInflight
	}
	n := o.Connections
	if n <= 0 {
		n = min(max((o.Concurrency+1)/2, 1), maxConnections)
	}
	if o.Streams < 0 || o.Streams > MaxStreams {
		return fmt.Errorf("destination streams %d: want 1 to %d, or 0 for auto", o.Streams, MaxStreams)
	}
	u.streams.init(o.Streams)
	u.leaseSlots = n
	u.slots = make([]*slot, max(n, stripeConns(u.streams.max)))
	for i := range u.slots {
		u.slots[i] = &slot{}
	}
	u.clock = o.Clock
	if u.clock == nil {
		u.clock = clock.Real{}
	}
	u.limit = newLimiter(u.clock, o.Bandwidth, o.Schedule)
	return nil
}

// SetBandwidth replaces the bandwidth limit and schedule, for a config
// reload; uploads in flight follow it from their next chunk.
func (u *Uploader) SetBandwidth(bps int64, schedule []Window) {
	u.limit.set(bps, schedule)
}

// Job is one file to deliver.
type Job struct {
	LocalPath string
	// Open, when set, opens the source: the caller resolves it safely (beneath its watched
	// root, no link at any level) and checks the descriptor is the file it settled; its
	// error is returned as it is. The upload reads and hashes that one descriptor, and calls
	// Open again after the last byte to prove the path still names the same file. nil: the
	// uploader opens LocalPath itself (O_NOFOLLOW on the last element only), for the caller's
	// own temporary files (the daemon's manifest).
	Open      func() (*os.File, error)
	RemoteRel string    // slash-separated, relative to the URL folder; from RemotePath()
	Size      int64     // expected local size
	ModTime   time.Time // expected local mtime (zero: not checked); a change gives CodeChanged
	Replace   bool      // an existing final remote file may be replaced (hotdrop delivered it before)
	// BeforeRename journals the intent to rename, after the size check and
	// just before the partial becomes the final file; an error aborts and
	// removes the partial. May be nil.
	BeforeRename func(ctx context.Context) error
	// IntendRename, when set, stands in for BeforeRename on a small file: it is called
	// once the final name is known to be free, before the data is sent, so that the
	// intent is journaled while the file travels; the func it returns is waited on where
	// BeforeRename would be called. May be nil.
	IntendRename func(ctx context.Context) (wait func(ctx context.Context) error)
	// Connected, when set, is called once the upload has a logged-in session to the
	// destination, before any byte is sent: the destination is reachable again. May be nil.
	Connected func()
	// Progress gets the bytes read so far; it is called from the goroutine
	// feeding the upload, never concurrently, and must not block. May be nil.
	Progress func(done int64)

	// Resume is the last Checkpoint the journal holds for this file, or nil.
	// The upload continues from its Offset when it names the same partial and
	// the local file still has its size, mtime and inode, and the partial
	// holds at least Offset bytes; otherwise it starts over.
	Resume *Checkpoint
	// Checkpoint, when set, is called as the contiguous acknowledged offset
	// advances (at most every 64 MiB or second), and once more when a
	// transient error stops the upload. It runs on a goroutine of its own,
	// never concurrently with itself; Upload waits for it before returning.
	// With Checkpoint set, a transient failure keeps the partial on the
	// server for the resume; without it every failure removes the partial.
	Checkpoint func(Checkpoint)
	// NoChecksumFile skips the checksum file for this one upload (hotdrop's own manifest).
	NoChecksumFile bool
}

// Result describes a delivered file.
type Result struct {
	Remote string // full remote path of the final file
	Size   int64
	SHA256 string // lower-case hex of what was read and sent

	// ChecksumKind and Checksum are the configured checksum (Options.Checksum)
	// of the same bytes; empty with none.
	ChecksumKind string
	Checksum     string
	// ChecksumFile is the remote path of the checksum file written after
	// the rename; ChecksumErr says why it could not be written (the file
	// itself is delivered: retry with WriteChecksumFile).
	ChecksumFile string
	ChecksumErr  error
	// Resumed is the offset the upload continued from (0: from the start).
	Resumed int64
	// Streams is how many SFTP streams carried the file (1: not striped).
	Streams int
	// Verified is what proved the remote copy: VerifyHash, VerifyReadback
	// (a resumed file on a server that cannot hash) or VerifySize.
	Verified string
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
	openPartial(p string) (remoteFile, error) // an existing partial, for resume
	chunkSize() int                           // bytes per write request
	remove(p string) error
	rename(from, to string, replace bool) (how string, err error) // how names the method, for the log; without replace it never overwrites
	readSmall(p string, max int64) ([]byte, error)                // at most max bytes of a small file
	readRange(p string, off int64, n int) ([]byte, error)         // up to n bytes from off (fewer at the end)
	freeSpace(dir string) (int64, bool)                           // false: unknown
}

// remoteFile is an open partial file.
type remoteFile interface {
	io.WriterAt
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// remoteHasher is the optional ability to hash a remote file where it lies
// (sha256sum over SSH exec; a local read for file://), for verify = "hash".
type remoteHasher interface {
	remoteSum(ctx context.Context, p, kind string, size int64) (string, error)
}

// Upload sends one file: to ".NAME.partial" beside the final name (resumed
// from j.Resume when it still applies), then, after the size check, the
// optional remote hash and j.BeforeRename, renamed into place, and the
// checksum file written. The final name never holds a partial file. On
// failure an *Error is returned and the partial removed, unless the error
// is transient and j.Checkpoint is set (then it stays for the resume).
// Upload does not retry. Cancelling ctx stops the transfer at the next chunk.
func (u *Uploader) Upload(ctx context.Context, j Job) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, destinationError("upload", j.LocalPath, err)
	}
	if err := checkName(j.RemoteRel); err != nil {
		return Result{}, &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	f, fi, err := openLocal(j)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	var res Result
	err = u.withTarget(ctx, func(t target) error {
		// A second run (the pooled connection was found dead) reads the
		// source again from its start.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return sourceError(j.LocalPath, err)
		}
		if j.Connected != nil {
			j.Connected()
		}
		final := t.abs(j.RemoteRel)
		var err error
		res, err = u.transfer(ctx, t, f, fi, j, final)
		if err != nil {
			u.log.Debug("upload failed", "local", j.LocalPath, "remote", final, "err", err)
		}
		return err
	})
	if err != nil {
		return Result{}, err
	}
	u.log.Debug("uploaded", "local", j.LocalPath, "remote", res.Remote, "size", res.Size, "resumed", res.Resumed)
	return res, nil
}

// openLocal opens the source and checks that it is still the file the
// caller saw settle.
func openLocal(j Job) (*os.File, os.FileInfo, error) {
	if j.Open != nil {
		f, err := j.Open()
		if err != nil {
			return nil, nil, err
		}
		fi, err := f.Stat()
		if err == nil && !fi.Mode().IsRegular() {
			err = unsafeSource(j.LocalPath, fi.Mode(), nil)
		}
		if err == nil && (fi.Size() != j.Size || (!j.ModTime.IsZero() && !fi.ModTime().Equal(j.ModTime))) {
			err = &Error{Code: CodeChanged, Source: true, Msg: fmt.Sprintf(
				"local file %s changed since it settled (size %d, want %d)", j.LocalPath, fi.Size(), j.Size)}
		}
		if err != nil {
			f.Close()
			if _, ok := err.(*Error); !ok {
				err = sourceError(j.LocalPath, err)
			}
			return nil, nil, err
		}
		return f, fi, nil
	}
	if li, err := os.Lstat(j.LocalPath); err == nil && !li.Mode().IsRegular() {
		return nil, nil, unsafeSource(j.LocalPath, li.Mode(), nil)
	}
	f, err := os.OpenFile(j.LocalPath, os.O_RDONLY|openFlags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, unsafeSource(j.LocalPath, fs.ModeSymlink, err)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &Error{Code: CodeChanged, Source: true, Msg: fmt.Sprintf("local file %s is gone", j.LocalPath), Err: err}
		}
		return nil, nil, sourceError(j.LocalPath, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, sourceError(j.LocalPath, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, unsafeSource(j.LocalPath, fi.Mode(), nil)
	}
	if fi.Size() != j.Size || (!j.ModTime.IsZero() && !fi.ModTime().Equal(j.ModTime)) {
		f.Close()
		return nil, nil, &Error{Code: CodeChanged, Source: true, Msg: fmt.Sprintf(
			"local file %s changed since it settled (size %d, want %d)", j.LocalPath, fi.Size(), j.Size)}
	}
	return f, fi, nil
}

// unsafeSource refuses a source that is no longer the regular file that settled (it became
// a link, a FIFO, a device…): unsafe_path, in the one wording of safefs.TypeRefusal.
func unsafeSource(p string, m fs.FileMode, err error) *Error {
	return &Error{Code: CodeUnsafePath, Source: true, Msg: fmt.Sprintf("local file %s changed since it settled: it %s", p, safefs.TypeRefusal(m)), Err: err}
}

// sourceError names a failure reading the local file being sent: the source's
// trouble, never the destination's (Source). A source on NFS or SMB can fail
// for a moment (EIO, ESTALE), so anything but a permission problem is retried;
// the sentence (safefs.ReadFailure) carries the system's own words.
func sourceError(p string, err error) *Error {
	if errors.Is(err, fs.ErrPermission) {
		return &Error{Code: CodePermissionDenied, Source: true, Msg: safefs.ReadFailure(p, err), Err: err}
	}
	return &Error{Code: CodeTransient, Transient: true, Source: true, Msg: safefs.ReadFailure(p, err) + "; will retry", Err: err}
}

// SourceError is sourceError for a caller's Job.Open: a failure to open or look at the
// source, the source's trouble, retried unless it is a permission problem.
func SourceError(p string, err error) *Error { return sourceError(p, err) }

// Stat reports the size of rel below the destination folder, for the start-up
// reconciliation of files the journal shows mid-rename.
func (u *Uploader) Stat(ctx context.Context, rel string) (size int64, exists bool, err error) {
	if err := checkName(rel); err != nil {
		return 0, false, &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	err = u.withTarget(ctx, func(t target) error {
		p := t.abs(rel)
		fi, err := t.stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			size, exists = 0, false
			return nil
		case err != nil:
			return destinationError("stat", p, err)
		}
		size, exists = fi.Size(), true
		return nil
	})
	return size, exists, err
}
