// Package sshdtest starts a real OpenSSH sshd for integration tests, so the
// uploader is proven against the server ingest sites actually run: its
// error mapping, posix-rename, packet limits and file permissions.
//
// It is for tests only. Each Start runs its own sshd on 127.0.0.1 with a
// throw-away config, host key and client key, stopped by t.Cleanup. When run
// as root (as CI does) the login user is the unprivileged "hotdrop-test", so
// permission tests mean something; otherwise it is the current user, the only
// one a non-root sshd can log in.
package sshdtest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// TestUser is the unprivileged account sshd logs in when tests run as root.
const TestUser = "hotdrop-test"

// Server is a running sshd.
type Server struct {
	Kind         Kind   // which server this is
	Addr         string // 127.0.0.1:PORT
	User         string
	Dir          string // absolute local folder the server writes into, writable by User
	Path         string // that folder as the server names it, for the URL; "" = Dir
	IdentityFile string // client private key, OpenSSH PEM
	KnownHosts   string // a known_hosts pinning HostKey for Addr
	HostKey      ssh.PublicKey
	LogFile      string // the server's own log; shown when the test fails

	account *user.User
}

// URL is the destination URL for the uploader.
func (s *Server) URL() string {
	p := s.Path
	if p == "" {
		p = s.Dir
	}
	return fmt.Sprintf("sftp://%s@%s%s", s.User, s.Addr, p)
}

// Log returns sshd's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// Options change the test server's configuration.
type Options struct {
	// SFTPOnly forces internal-sftp for every session (ForceCommand), as
	// SFTP-only ingest accounts are set up: exec requests get no shell.
	SFTPOnly bool
	// FileSizeLimit, when positive, runs sshd under `prlimit --fsize`: a
	// write past that many bytes fails with EFBIG, which OpenSSH reports as a
	// bare "Failure", as it does a full disk. SIGXFSZ is ignored so the write
	// fails instead of the session dying. For where mounting a tmpfs is refused.
	FileSizeLimit int64
	// Path, when set, is the PATH of every session (sshd's SetEnv): a folder
	// of chosen tools stands for a server that lacks the others.
	Path string
	// CPUs, when set, runs sshd and every session it forks on those CPUs only
	// (`taskset -c CPUs`), as a server on its own machine would be: a benchmark
	// can then keep the client's CPU apart from the server's.
	CPUs string
}

// Start runs sshd. It skips the test with a clear message when sshd is not
// installed, and fails it instead when CI=true, where it must be.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith runs sshd configured by o; see Start.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	bin := findSSHD()
	if bin == "" {
		skipOrFail(t, "sshd not found: install openssh-server to run the real-SFTP tests")
	}
	s, base, clientPub := prepare(t, OpenSSH)
	if os.Geteuid() == 0 {
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshdtest: sshd needs /run/sshd: %v", err)
		}
	}
	hostPub, hostPEM := newKey(t, "hotdrop-test host")
	s.HostKey = hostPub
	hostKeyFile := filepath.Join(base, "ssh_host_ed25519_key")
	must(t, os.WriteFile(hostKeyFile, hostPEM, 0o600))
	authKeys := filepath.Join(base, "authorized_keys")
	must(t, os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(clientPub), 0o644))

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if lastErr = s.run(t, bin, base, hostKeyFile, authKeys, o); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("sshdtest: %v\n--- sshd log ---\n%s", lastErr, s.Log())
	}
	s.pinHostKey(t)
	noteAutogroups(t)
	return s
}

// noteAutogroups leaves a line in the test's log (shown only if it fails) when
// the kernel's autogroups are on: sshd starts every connection in a new
// session, and on some kernels a new session's autogroup is starved by busy
// processes in older ones, so a handshake times out with no fault of ours.
func noteAutogroups(t testing.TB) {
	b, err := os.ReadFile("/proc/sys/kernel/sched_autogroup_enabled")
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		t.Logf("sshdtest: kernel autogroups are on; on a busy machine each new sshd session can wait seconds for a CPU (.ci/run turns them off: echo 0 > /proc/sys/kernel/sched_autogroup_enabled)")
	}
}

// prepare makes what every test server needs: the account it logs in, a
// folder of its own that the account can reach (t.TempDir is 0700) with the
// remote folder Dir in it, owned by the account, and the client's key.
func prepare(t testing.TB, kind Kind) (s *Server, base string, clientPub ssh.PublicKey) {
	t.Helper()
	account, err := loginUser(t)
	if err != nil {
		skipOrFail(t, fmt.Sprintf("sshdtest: no user for %s to log in: %v", kind, err))
	}
	base, err = os.MkdirTemp("", "hotdrop-"+string(kind)+"-*")
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Cleanup(func() { removeAll(base) })
	must(t, os.Chmod(base, 0o755))
	clientPub, clientPEM := newKey(t, "hotdrop-test client")
	keys := t.TempDir()
	s = &Server{
		Kind:         kind,
		User:         account.Username,
		Dir:          filepath.Join(base, "remote"),
		IdentityFile: filepath.Join(keys, "id_ed25519"),
		KnownHosts:   filepath.Join(keys, "known_hosts"),
		LogFile:      filepath.Join(base, string(kind)+".log"),
		account:      account,
	}
	must(t, os.WriteFile(s.IdentityFile, clientPEM, 0o600))
	must(t, os.Mkdir(s.Dir, 0o755))
	s.own(t, s.Dir)
	return s, base, clientPub
}

// own gives p to the login account when the tests run as root.
func (s *Server) own(t testing.TB, p string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	uid, _ := strconv.Atoi(s.account.Uid)
	gid, _ := strconv.Atoi(s.account.Gid)
	must(t, os.Chown(p, uid, gid))
}

// pinHostKey writes the client's known_hosts once the server listens, and
// has the server's log shown when the test fails.
func (s *Server) pinHostKey(t testing.TB) {
	t.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
	must(t, os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s log (%s) ---\n%s", s.Kind, s.LogFile, s.Log())
		}
	})
}

// run starts sshd on a free port and waits until it accepts connections.
func (s *Server) run(t testing.TB, bin, base, hostKey, authKeys string, o Options) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := filepath.Join(base, "sshd_config")
	conf := strings.Join([]string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(base, "sshd.pid"),
		"AuthorizedKeysFile " + authKeys,
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"StrictModes no",
		"AllowUsers " + s.User,
		"PermitRootLogin no",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"MaxStartups 100",
		"LogLevel VERBOSE",
		// internal-sftp logs to syslog only, whatever -l says; sshd's own
		// VERBOSE log (logins, sessions) is what LogFile holds.
		"Subsystem sftp internal-sftp",
		"",
	}, "\n")
	if o.SFTPOnly {
		conf += "ForceCommand internal-sftp\n"
	}
	if o.Path != "" {
		conf += "SetEnv PATH=" + o.Path + "\n"
	}
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
	if o.FileSizeLimit > 0 {
		prlimit, err := exec.LookPath("prlimit")
		if err != nil {
			t.Skipf("sshdtest: FileSizeLimit needs prlimit (util-linux): %v", err)
		}
		// An ignored signal stays ignored across exec, and prlimit and exec keep the pid,
		// so Kill below still reaches sshd.
		cmd = exec.Command(prlimit, "--fsize="+strconv.FormatInt(o.FileSizeLimit, 10), "--",
			"/bin/sh", "-c", `trap '' XFSZ; exec "$0" -D -e -f "$1"`, bin, cfg)
	}
	if o.CPUs != "" {
		taskset, err := exec.LookPath("taskset")
		if err != nil {
			t.Skipf("sshdtest: CPUs needs taskset (util-linux): %v", err)
		}
		// taskset execs its command, so the pid stays sshd's (or prlimit's, which execs too).
		cmd = exec.Command(taskset, append([]string{"-c", o.CPUs, cmd.Path}, cmd.Args[1:]...)...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	return spawn(t, cmd, s.Addr, "sshd")
}

// spawn starts cmd and waits until it accepts connections on addr; the
// test's cleanup kills it.
func spawn(t testing.TB, cmd *exec.Cmd, addr, name string) error {
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case werr := <-exited:
			exited <- werr
			return fmt.Errorf("%s exited at start: %v", name, werr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("%s did not accept connections on %s within 10s", name, addr)
		}
	}
	t.Cleanup(stop)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func findSSHD() string {
	if st, err := os.Stat("/usr/sbin/sshd"); err == nil && !st.IsDir() {
		return "/usr/sbin/sshd"
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs // sshd re-executes itself and insists on an absolute path
		}
	}
	return ""
}

func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true, so this is a failure, not a skip)")
	}
	t.Skip(msg)
}

// loginUser is the account sshd will log in: hotdrop-test as root (created
// when missing), else ourselves.
func loginUser(t testing.TB) (*user.User, error) {
	if os.Geteuid() != 0 {
		return user.Current()
	}
	u, err := user.Lookup(TestUser)
	if err != nil {
		out, uerr := exec.Command("useradd", "--system", "--create-home", "--shell", "/bin/sh", TestUser).CombinedOutput()
		if u, err = user.Lookup(TestUser); err != nil {
			return nil, fmt.Errorf("useradd %s: %v: %s", TestUser, uerr, out)
		}
		t.Logf("sshdtest: created user %s", TestUser)
	}
	if err := unlock(TestUser); err != nil {
		return nil, err
	}
	return u, nil
}

// unlock makes the account usable by sshd with UsePAM no: useradd leaves the
// password field "!" (locked), and sshd refuses locked accounts even for
// key logins. "*" still allows no password login.
func unlock(name string) error {
	f, err := os.Open("/etc/shadow")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 2 || fields[0] != name {
			continue
		}
		if !strings.HasPrefix(fields[1], "!") {
			return nil
		}
		if out, err := exec.Command("usermod", "-p", "*", name).CombinedOutput(); err != nil {
			return fmt.Errorf("usermod -p '*' %s: %v: %s", name, err, out)
		}
		return nil
	}
	return sc.Err()
}

// NewKey makes an ed25519 key pair: its public half, and its private half as an OpenSSH
// PEM file's bytes (an identity_file), for a client or a host.
func NewKey(t testing.TB, comment string) (ssh.PublicKey, []byte) {
	t.Helper()
	return newKey(t, comment)
}

func newKey(t testing.TB, comment string) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	block, err := ssh.MarshalPrivateKey(priv, comment)
	must(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	must(t, err)
	return sshPub, pem.EncodeToMemory(block)
}

// removeAll also removes what tests made read-only.
func removeAll(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
}

// ToolPath is a folder holding only the named tools (links to the installed ones), for
// Options.Path: a server that has these and nothing else. The tools are looked for where a
// login finds them, not on the tests' PATH (a tool under the tester's home would be out of
// the login account's reach). A tool that is not installed skips the test (fails it under
// CI=true).
func ToolPath(t testing.TB, tools ...string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hotdrop-tools-*")
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Cleanup(func() { removeAll(dir) })
	must(t, os.Chmod(dir, 0o755)) // the login account must reach it
	for _, name := range tools {
		p := systemTool(name)
		if p == "" {
			skipOrFail(t, fmt.Sprintf("sshdtest: %s is not installed in %s", name, systemPath))
		}
		must(t, os.Symlink(p, filepath.Join(dir, name)))
	}
	return dir
}

// systemPath is where a login's commands are found (sshd's default PATH).
const systemPath = "/usr/local/bin:/usr/bin:/bin"

// systemTool is name's path in systemPath; "" when it is in none.
func systemTool(name string) string {
	for _, d := range filepath.SplitList(systemPath) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
