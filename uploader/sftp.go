package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// openSSHMaxWrite is the largest write payload OpenSSH's sftp-server takes:
// 256 KiB per message minus room for the header, as its limits@openssh.com says.
const openSSHMaxWrite = 256*1024 - 1024

// sftpConn is one SSH connection with its SFTP session, one slot of the
// pool, shared by the Uploads given that slot until it dies.
type sftpConn struct {
	ssh      *ssh.Client
	sftp     *sftp.Client
	base     string
	tempName string // destination.temp_name
	chunk    int    // write payload per request

	posixRename, statvfs, fsync bool
	extensions                  []string // every extension the server advertised, sorted

	done chan struct{} // closed once the connection is unusable
	// dead is set the moment anyone closes the connection, before the watch
	// goroutine has seen the session end: between the two, under load, the
	// pool would otherwise hand out a connection already known to be dead.
	dead atomic.Bool
	// shellProven is set once a hash command ran on this connection, so
	// its long-lived hashing sessions may be used (see hashers).
	shellProven atomic.Bool
	// noOpenSSL: the server's openssl could not hash a file; sha256sum does.
	noOpenSSL atomic.Bool
	// noLiveHash: the server did not run the live hash (see liveHash).
	noLiveHash atomic.Bool
	hashers    hashSessions
	once       sync.Once
	wg         sync.WaitGroup // the watch, keepalive and channel watch goroutines

	// rtt is one round trip to the server, measured after the login: what
	// decides whether striping can help (see stripeState).
	rtt time.Duration
	// opts are the SFTP client options of every channel of the connection.
	opts []sftp.ClientOption
	// chans are further SFTP channels on this connection, opened on first
	// use by striped uploads; chansNo is why the server refused one more
	// (sshd's MaxSessions), after which none is asked for.
	chMu    sync.Mutex
	chans   []*chanSlot
	chansNo error
}

// channelsPerConn bounds the SFTP channels striping opens on one SSH
// connection: OpenSSH allows ten sessions per connection (MaxSessions), and
// the hashing sessions take up to maxHashSessions of them.
const channelsPerConn = 5

// dial connects to the destination: TCP, the SSH handshake with the host
// key checked, the SFTP start; every step within the dial timeout.
func (u *Uploader) dial(ctx context.Context) (*sftpConn, error) {
	hk, algos, err := newHostKeyCheck(u.opts.KnownHosts, u.addr)
	if err != nil {
		return nil, err
	}
	auth, closeAgent, err := loadAuth(u.opts.IdentityFile, u.opts.PasswordFile, true)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	cfg := &ssh.ClientConfig{
		User:              u.user,
		Auth:              auth,
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: algos,
		Timeout:           u.dialTimeout,
		ClientVersion:     "SSH-2.0-hotdrop",
	}
	d := net.Dialer{Timeout: u.dialTimeout}
	nc, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, &Error{Code: CodeTransient, Transient: true, Msg: fmt.Sprintf("cannot reach %s", u.addr), Err: err}
	}
	// The SSH and SFTP handshakes have no timeout of their own.
	_ = nc.SetDeadline(time.Now().Add(u.dialTimeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	cc, chans, reqs, err := ssh.NewClientConn(nc, u.addr, cfg)
	if err != nil {
		nc.Close()
		return nil, u.handshakeError(ctx, hk, err)
	}
	client := ssh.NewClient(cc, chans, reqs)
	sc, chunk, opts, err := openSFTP(client, u.inflight, u.bigPackets.Load())
	if err != nil {
		client.Close()
		if ctx.Err() != nil {
			return nil, destinationError("connect to", u.addr, ctx.Err())
		}
		return nil, destinationError("start sftp on", u.addr, err)
	}
	if !stop() {
		// ctx ended during the SFTP start and closed the socket.
		client.Close()
		sc.Close()
		return nil, destinationError("connect to", u.addr, context.Cause(ctx))
	}
	rtt := u.roundTrip(client)
	_ = nc.SetDeadline(time.Time{})
	return u.newSFTPConn(client, sc, chunk, opts, rtt), nil
}

// handshakeError says why the SSH handshake failed: the host key, ctx, the
// login, or the server's answer.
func (u *Uploader) handshakeError(ctx context.Context, hk *hostKeyCheck, err error) error {
	switch {
	case hk.failure != nil:
		return hk.failure
	case ctx.Err() != nil:
		return destinationError("connect to", u.addr, ctx.Err())
	case isAuth(err):
		return &Error{Code: CodeAuthFailed, Err: err, Msg: fmt.Sprintf(
			"server %s refused the login of user %q with %s", u.addr, u.user, u.authDescription())}
	}
	return destinationError("ssh handshake with", u.addr, err)
}

// roundTrip is a round trip to the destination, timed (the SFTP start took
// several, but also the server's start of its SFTP process), unless an
// earlier connection to the destination did: the striping's further
// connections are dialled while a file waits for them.
func (u *Uploader) roundTrip(client *ssh.Client) time.Duration {
	rtt := time.Duration(u.rtt.Load())
	if rtt == 0 {
		// The shorter of two: a busy machine can hold one reply back a few
		// milliseconds, and a loopback taken for a long link would stripe.
		for range 2 {
			began := time.Now()
			_, _, _ = client.SendRequest("keepalive@openssh.com", true, nil)
			if d := time.Since(began); rtt == 0 || d < rtt {
				rtt = d
			}
		}
	}
	return rtt
}

// newSFTPConn is the connection, with what its server can do, its watcher
// and keepalive running; it remembers for later dials what it learnt.
func (u *Uploader) newSFTPConn(client *ssh.Client, sc *sftp.Client, chunk int, opts []sftp.ClientOption, rtt time.Duration) *sftpConn {
	c := &sftpConn{ssh: client, sftp: sc, base: u.base, tempName: u.tempName, chunk: chunk, done: make(chan struct{}), rtt: rtt, opts: opts}
	_, c.posixRename = sc.HasExtension("posix-rename@openssh.com")
	_, c.statvfs = sc.HasExtension("statvfs@openssh.com")
	_, c.fsync = sc.HasExtension("fsync@openssh.com")
	u.bigPackets.Store(chunk == openSSHMaxWrite)
	u.rtt.Store(int64(rtt))
	c.extensions = advertised(sc)
	c.wg.Add(2)
	go c.watch()
	go c.keepalive(u.kaInterval, u.kaTimeout)
	u.log.Info("connected to destination", "addr", u.addr, "user", u.user, "server", string(client.ServerVersion()), "rtt", rtt.Round(100*time.Microsecond))
	return c
}

// openSFTP starts the SFTP session. OpenSSH takes 8 times the default
// packet size, which it says by advertising limits@openssh.com; other
// servers keep the 32 KiB every server must accept. The returned size is
// the write payload per request. big says an earlier session with this
// destination advertised it: then the session starts with large packets at
// once, and only a server that no longer advertises it costs a second
// start (several round trips, on a long link a large part of a dial).
func openSFTP(client *ssh.Client, inflight int, big bool) (*sftp.Client, int, []sftp.ClientOption, error) {
	opts := []sftp.ClientOption{sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(inflight)}
	bigOpts := append(opts[:len(opts):len(opts)], sftp.MaxPacketUnchecked(openSSHMaxWrite))
	first := opts
	if big {
		first = bigOpts
	}
	sc, err := sftp.NewClient(client, first...)
	if err != nil {
		return nil, 0, nil, err
	}
	_, limits := sc.HasExtension("limits@openssh.com")
	switch {
	case limits && big:
		return sc, openSSHMaxWrite, bigOpts, nil
	case !limits && !big:
		return sc, 32 << 10, opts, nil
	}
	sc.Close()
	if !limits {
		sc, err = sftp.NewClient(client, opts...)
		return sc, 32 << 10, opts, err
	}
	sc, err = sftp.NewClient(client, bigOpts...)
	return sc, openSSHMaxWrite, bigOpts, err
}

// channel returns the k-th SFTP session of the connection: 0 is its own;
// further ones are opened on first use, for striped writes, each with its
// own SSH channel window, several at once (each start is three round
// trips). A channel that ends closes the connection, as its own session's
// end does.
func (c *sftpConn) channel(k int) (*sftp.Client, error) {
	if k == 0 {
		return c.sftp, nil
	}
	c.chMu.Lock()
	if c.chansNo != nil {
		err := c.chansNo
		c.chMu.Unlock()
		return nil, err
	}
	for len(c.chans) < k {
		c.chans = append(c.chans, &chanSlot{})
	}
	cs := c.chans[k-1]
	c.chMu.Unlock()

	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.sc != nil {
		return cs.sc, nil
	}
	if !c.alive() {
		return nil, net.ErrClosed
	}
	sc, err := sftp.NewClient(c.ssh, c.opts...)
	if err != nil {
		if c.alive() {
			c.chMu.Lock()
			c.chansNo = err
			c.chMu.Unlock()
		}
		return nil, err
	}
	c.chMu.Lock()
	dead := c.dead.Load()
	if !dead {
		cs.sc = sc
		c.wg.Add(1)
	}
	c.chMu.Unlock()
	if dead {
		// close ran meanwhile and did not see this one.
		sc.Close()
		return nil, net.ErrClosed
	}
	go func() {
		defer c.wg.Done()
		_ = sc.Wait()
		c.close()
	}()
	return sc, nil
}

// chanSlot is one further SFTP channel of a connection, opened once.
type chanSlot struct {
	mu sync.Mutex
	sc *sftp.Client
}

// authDescription names the login methods tried, never the secrets.
func (u *Uploader) authDescription() string {
	var m []string
	if u.opts.IdentityFile != "" {
		m = append(m, "the key in "+u.opts.IdentityFile)
	}
	if u.opts.PasswordFile != "" {
		m = append(m, "the password in "+u.opts.PasswordFile)
	}
	if len(m) == 0 {
		m = append(m, "the keys of the ssh-agent at SSH_AUTH_SOCK")
	}
	return strings.Join(m, " and ")
}

// loadAuth builds the login methods from the identity and password files;
// with neither it uses ssh-agent (only when withAgent, so New stays off
// sockets). The returned func closes the agent connection.
func loadAuth(identityFile, passwordFile string, withAgent bool) ([]ssh.AuthMethod, func(), error) {
	var methods []ssh.AuthMethod
	if identityFile != "" {
		data, err := os.ReadFile(identityFile)
		if err != nil {
			return nil, nil, &Error{Code: CodeAuthFailed, Msg: fmt.Sprintf("cannot read identity_file %s", identityFile), Err: err}
		}
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			var pe *ssh.PassphraseMissingError
			if errors.As(err, &pe) {
				return nil, nil, &Error{Code: CodeAuthFailed, Msg: fmt.Sprintf(
					"identity_file %s is protected by a passphrase, which a service cannot type; use a key without one, readable only by the service user, or ssh-agent", identityFile)}
			}
			return nil, nil, &Error{Code: CodeAuthFailed, Msg: fmt.Sprintf("identity_file %s is not an OpenSSH private key", identityFile), Err: err}
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if passwordFile != "" {
		data, err := os.ReadFile(passwordFile)
		if err != nil {
			return nil, nil, &Error{Code: CodeAuthFailed, Msg: fmt.Sprintf("cannot read password_file %s", passwordFile), Err: err}
		}
		secret, _, _ := strings.Cut(string(data), "\n")
		secret = strings.TrimSuffix(secret, "\r")
		if secret == "" {
			return nil, nil, &Error{Code: CodeAuthFailed, Msg: fmt.Sprintf("password_file %s is empty", passwordFile)}
		}
		methods = append(methods, ssh.Password(secret), ssh.KeyboardInteractive(answerAll(secret)))
	}
	if len(methods) > 0 || !withAgent {
		return methods, func() {}, nil
	}
	sock := os.Getenv("SSH_AUTH_SOCK")
	if sock == "" {
		return nil, nil, &Error{Code: CodeAuthFailed, Msg: "no identity_file or password_file is configured and SSH_AUTH_SOCK is not set: hotdrop has no way to log in"}
	}
	ac, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, &Error{Code: CodeAuthFailed, Msg: fmt.Sprintf("cannot reach the ssh-agent at %s", sock), Err: err}
	}
	methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
	return methods, func() { ac.Close() }, nil
}

// answerAll answers every keyboard-interactive prompt with the password:
// servers behind PAM often offer only this method.
func answerAll(secret string) ssh.KeyboardInteractiveChallenge {
	return func(_, _ string, questions []string, _ []bool) ([]string, error) {
		answers := make([]string, len(questions))
		for i := range answers {
			answers[i] = secret
		}
		return answers, nil
	}
}

func (c *sftpConn) alive() bool {
	if c.dead.Load() {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// close shuts the connection. SSH goes first: closing the SFTP client waits
// for its reader, which only a dead transport unblocks.
func (c *sftpConn) close() {
	c.dead.Store(true)
	c.once.Do(func() {
		c.ssh.Close()
		c.sftp.Close()
		c.chMu.Lock()
		for _, cs := range c.chans {
			if cs.sc != nil {
				cs.sc.Close()
			}
		}
		c.chMu.Unlock()
	})
}

// watch marks the connection dead when the SFTP session or the SSH
// transport ends (the session ends with the transport).
func (c *sftpConn) watch() {
	defer c.wg.Done()
	_ = c.sftp.Wait()
	c.close()
	close(c.done)
}

// keepalive sends keepalive@openssh.com every interval. SSH has no timeout
// after the dial, so a silent network would block every SFTP call forever;
// a reply missing for timeout closes the connection, which fails them all.
func (c *sftpConn) keepalive(interval, timeout time.Duration) {
	defer c.wg.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		timer := time.NewTimer(timeout)
		select {
		case err := <-reply:
			timer.Stop()
			if err != nil {
				c.close()
				return
			}
		case <-timer.C:
			c.close()
			<-reply // returns once the transport is closed
			return
		case <-c.done:
			timer.Stop()
			<-reply
			return
		}
	}
}

func (c *sftpConn) abs(rel string) string { return path.Join(c.base, rel) }
func (c *sftpConn) dir(p string) string   { return path.Dir(p) }
func (c *sftpConn) partial(p string) string {
	return path.Join(path.Dir(p), tempRel(c.tempName, path.Base(p)))
}
func (c *sftpConn) stat(p string) (fs.FileInfo, error) { return c.sftp.Stat(p) }
func (c *sftpConn) mkdirAll(dir string) error          { return c.sftp.MkdirAll(dir) }
func (c *sftpConn) remove(p string) error              { return c.sftp.Remove(p) }

// create opens write-only: Client.Create asks for read-write, which some
// ingest servers refuse.
func (c *sftpConn) create(p string) (remoteFile, error) {
	f, err := c.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, err
	}
	return &sftpFile{File: f, fsync: c.fsync}, nil
}

// openPartial opens an existing partial to resume it: write-only, without
// O_APPEND (pkg/sftp would ignore our offsets) and without truncation.
func (c *sftpConn) openPartial(p string) (remoteFile, error) {
	f, err := c.sftp.OpenFile(p, os.O_WRONLY)
	if err != nil {
		return nil, err
	}
	return &sftpFile{File: f, fsync: c.fsync}, nil
}

func (c *sftpConn) chunkSize() int { return c.chunk }

// rename publishes the partial. posix-rename replaces atomically, so it is
// used only where replacing is allowed; the plain SFTP rename fails when the
// target exists (OpenSSH links the new name), which is what a file hotdrop
// may not replace needs: nothing that appeared since it looked is
// overwritten. Without posix-rename, a replace removes the old file first.
func (c *sftpConn) rename(from, to string, replace bool) (string, error) {
	if !replace {
		return "rename", c.sftp.Rename(from, to)
	}
	if c.posixRename {
		return "posix-rename@openssh.com", c.sftp.PosixRename(from, to)
	}
	// Without posix-rename the old file is moved aside first and removed
	// only once the new one is in place; if that fails it goes back. The
	// name is empty for a moment, but never holds a partial file, and the
	// old file is never lost without a new one.
	aside := c.partial(to) + ".replaced"
	err := c.sftp.Rename(to, aside)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if _, serr := c.sftp.Lstat(aside); serr == nil {
			// A replace cut short earlier left an older copy under hotdrop's own aside
			// name, while the final name holds a file: a plain rename will not move
			// another over it. That copy goes, and the move is tried again.
			_ = c.sftp.Remove(aside)
			err = c.sftp.Rename(to, aside)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		if err := c.sftp.Rename(from, to); err != nil {
			return "rename", err
		}
		// The name was empty: a replace cut short between its two renames may have left
		// the old file aside. The new one is in place now; the old one goes.
		_ = c.sftp.Remove(aside)
		return "rename", nil
	} else if err != nil {
		return "move the old file aside", err
	}
	if err := c.sftp.Rename(from, to); err != nil {
		_ = c.sftp.Rename(aside, to)
		return "move aside, then rename", err
	}
	_ = c.sftp.Remove(aside)
	return "move aside, rename, remove the old file", nil
}

func (c *sftpConn) freeSpace(dir string) (int64, bool) {
	if !c.statvfs {
		return 0, false
	}
	st, err := c.sftp.StatVFS(dir)
	if err != nil {
		return 0, false
	}
	return int64(st.Bavail * st.Frsize), true
}

// sftpFile syncs only where the server offers fsync@openssh.com.
type sftpFile struct {
	*sftp.File
	fsync bool
}

func (f *sftpFile) Sync() error {
	if !f.fsync {
		return nil
	}
	return f.File.Sync()
}

func (c *sftpConn) readSmall(p string, max int64) ([]byte, error) {
	f, err := c.sftp.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

func (c *sftpConn) readRange(p string, off int64, n int) ([]byte, error) {
	f, err := c.sftp.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRangeFrom(f, off, n)
}

// readRangeFrom reads up to n bytes at off; fewer at the end of the file.
func readRangeFrom(r io.ReaderAt, off int64, n int) ([]byte, error) {
	buf := make([]byte, n)
	m, err := r.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:m], nil
}

// knownExtensions are the SFTP extensions servers advertise that hotdrop
// reports (pkg/sftp offers no list of what was advertised, only a lookup).
var knownExtensions = []string{"posix-rename@openssh.com", "statvfs@openssh.com", "fstatvfs@openssh.com",
	"fsync@openssh.com", "hardlink@openssh.com", "limits@openssh.com", "lsetstat@openssh.com",
	"expand-path@openssh.com", "copy-data", "home-directory", "users-groups-by-id@openssh.com",
	"check-file", "space-available", "vendor-id", "versions", "newline"}

func advertised(sc *sftp.Client) []string {
	var out []string
	for _, name := range knownExtensions {
		if _, ok := sc.HasExtension(name); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
