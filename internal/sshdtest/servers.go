package sshdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Kind names an SFTP server the tests can start. Each differs from the others in ways
// ingest sites meet: OpenSSH is the reference; rclone serve sftp (no VFS cache, its
// default) takes writes only in order, names paths from its own root (as a chroot does)
// and runs no shell; ProFTPD's mod_sftp runs no shell either and can be told to offer
// fewer extensions or refuse names.
type Kind string

const (
	OpenSSH Kind = "openssh"
	Rclone  Kind = "rclone"
	ProFTPD Kind = "proftpd"
)

// Kinds are the servers the end-to-end tests run against.
var Kinds = []Kind{OpenSSH, Rclone, ProFTPD}

// StartKind starts a server of kind k with its defaults.
func StartKind(t testing.TB, k Kind) *Server {
	t.Helper()
	switch k {
	case Rclone:
		return StartRclone(t)
	case ProFTPD:
		return StartProFTPD(t, ProFTPDOptions{})
	}
	return Start(t)
}

// StartRclone runs `rclone serve sftp DIR` with no VFS cache: writes must come in order
// ("can't seek in file without --vfs-cache-mode >= writes"), an existing file cannot be
// reopened for writing, and the URL's path is "/" (the server's root is DIR). As root it
// runs as the unprivileged test user. Skips when rclone is missing, unless CI=true.
func StartRclone(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("rclone")
	if err != nil {
		skipOrFail(t, "rclone not found: install the Debian package rclone to run the tests against rclone serve sftp")
	}
	s, base, clientPub := prepare(t, Rclone)
	s.Path = "/"
	hostPub, hostPEM := newKey(t, "hotdrop-test host")
	s.HostKey = hostPub
	hostKey := filepath.Join(base, "host_key")
	authKeys := filepath.Join(base, "authorized_keys")
	must(t, os.WriteFile(hostKey, hostPEM, 0o600))
	must(t, os.WriteFile(authKeys, ssh.MarshalAuthorizedKey(clientPub), 0o644))
	s.own(t, hostKey)
	var lastErr error
	for range 3 {
		if lastErr = s.listen(); lastErr != nil {
			continue
		}
		cmd := exec.Command(bin, "serve", "sftp", s.Dir, "--addr", s.Addr, "--key", hostKey,
			"--authorized-keys", authKeys, "--config", filepath.Join(base, "rclone.conf"),
			"--cache-dir", filepath.Join(base, "cache"), "-v")
		cmd.Env = append(os.Environ(), "HOME="+base)
		if lastErr = s.spawnAs(t, cmd); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("sshdtest: rclone serve sftp: %v\n--- log ---\n%s", lastErr, s.Log())
	}
	s.pinHostKey(t)
	return s
}

// ProFTPDOptions change the ProFTPD test server.
type ProFTPDOptions struct {
	// NoExtensions are mod_sftp's names of extensions to withhold (SFTPExtensions
	// -NAME), e.g. "posixRename", "statvfs", "fsync", "hardlink".
	NoExtensions []string
	// DenyDotfiles refuses every path whose last element starts with "." (PathDenyFilter),
	// as ingest servers that hide or refuse dotfiles do.
	DenyDotfiles bool
	// Extra is further configuration, one directive a line.
	Extra string
}

// StartProFTPD runs ProFTPD with mod_sftp as the unprivileged test user (or the current
// user): its own config, a high port on 127.0.0.1, a virtual user from AuthUserFile whose
// home is Dir. Without root it cannot chroot, so paths are the filesystem's. It runs no
// shell: exec requests are refused. Skips when proftpd or mod_sftp is missing, unless
// CI=true.
func StartProFTPD(t testing.TB, o ProFTPDOptions) *Server {
	t.Helper()
	bin := findProFTPD(t)
	s, base, clientPub := prepare(t, ProFTPD)
	files := writeProFTPDFiles(t, s, base, clientPub)
	var lastErr error
	for range 3 {
		if lastErr = s.listen(); lastErr != nil {
			continue
		}
		_, port, _ := net.SplitHostPort(s.Addr)
		cfg := filepath.Join(base, "proftpd.conf")
		must(t, os.WriteFile(cfg, []byte(strings.Join(proftpdConfig(s, o, files, port), "\n")+"\n"), 0o644))
		cmd := exec.Command(bin, "--nodaemon", "--config", cfg)
		if lastErr = s.spawnAs(t, cmd); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("sshdtest: proftpd: %v\n--- log ---\n%s", lastErr, s.Log())
	}
	s.pinHostKey(t)
	return s
}

// proftpdModules is where Debian installs ProFTPD's modules.
const proftpdModules = "/usr/lib/proftpd"

// findProFTPD is the proftpd binary; it skips (or fails, under CI=true) the test when
// proftpd or its mod_sftp is missing.
func findProFTPD(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("proftpd")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/proftpd"); serr != nil {
			skipOrFail(t, "proftpd not found: install the Debian packages proftpd-core and proftpd-mod-crypto to run the tests against ProFTPD mod_sftp")
		}
		bin = "/usr/sbin/proftpd"
	}
	if _, err := os.Stat(filepath.Join(proftpdModules, "mod_sftp.so")); err != nil {
		skipOrFail(t, "ProFTPD's mod_sftp not found: install the Debian package proftpd-mod-crypto")
	}
	return bin
}

// proftpdFiles are the files a ProFTPD test server's config names.
type proftpdFiles struct {
	hostKey, authKeys, passwd, group string
	run                              string // a folder for the pid and scoreboard
}

// writeProFTPDFiles writes the server's host key, the client's key, the virtual user and
// its group, owned by the account the server runs as.
func writeProFTPDFiles(t testing.TB, s *Server, base string, clientPub ssh.PublicKey) proftpdFiles {
	t.Helper()
	f := proftpdFiles{hostKey: filepath.Join(base, "host_key"), authKeys: filepath.Join(base, "authorized_keys"),
		passwd: filepath.Join(base, "passwd"), group: filepath.Join(base, "group"), run: filepath.Join(base, "run")}
	// mod_sftp reads host keys in PEM; ECDSA P-256 is one it takes.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	der, err := x509.MarshalECPrivateKey(priv)
	must(t, err)
	must(t, os.WriteFile(f.hostKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600))
	s.HostKey, err = ssh.NewPublicKey(&priv.PublicKey)
	must(t, err)
	must(t, os.WriteFile(f.authKeys, rfc4716(clientPub), 0o644))
	// AuthUserFile must not be world-readable and must belong to the server's user.
	must(t, os.WriteFile(f.passwd, fmt.Appendf(nil, "%s:*:%s:%s::%s:/bin/sh\n", s.User, s.account.Uid, s.account.Gid, s.Dir), 0o600))
	must(t, os.WriteFile(f.group, fmt.Appendf(nil, "%s:x:%s:\n", s.account.Username, s.account.Gid), 0o600))
	must(t, os.Mkdir(f.run, 0o755)) // pid and scoreboard, written as the account
	for _, p := range []string{f.hostKey, f.passwd, f.group, f.run} {
		s.own(t, p)
	}
	return f
}

// proftpdConfig is the server's configuration, one directive a line, listening on port.
func proftpdConfig(s *Server, o ProFTPDOptions, f proftpdFiles, port string) []string {
	conf := []string{
		"ModulePath " + proftpdModules,
		"LoadModule mod_sftp.c",
		"ServerType standalone",
		`ServerName "hotdrop-test"`,
		"DefaultAddress 127.0.0.1",
		"Port " + port,
		"UseIPv6 off",
		"User " + s.account.Username,
		"Group " + groupName(s.account.Gid),
		"PidFile " + filepath.Join(f.run, "proftpd.pid"),
		"ScoreboardFile " + filepath.Join(f.run, "proftpd.scoreboard"),
		"DelayTable none",
		"WtmpLog off",
		"TransferLog none",
		"SystemLog " + s.LogFile,
		"<IfModule mod_ctrls.c>\nControlsEngine off\n</IfModule>",
		"AuthOrder mod_auth_file.c",
		"AuthUserFile " + f.passwd,
		"AuthGroupFile " + f.group,
		"RequireValidShell off",
		"AllowOverwrite on",
		"AllowStoreRestart on",
		"Umask 022",
		"SFTPEngine on",
		"SFTPLog " + s.LogFile,
		"SFTPHostKey " + f.hostKey,
		"SFTPAuthorizedUserKeys file:" + f.authKeys,
		"SFTPAuthMethods publickey",
	}
	if len(o.NoExtensions) > 0 {
		conf = append(conf, "SFTPExtensions -"+strings.Join(o.NoExtensions, " -"))
	}
	if o.DenyDotfiles {
		conf = append(conf, `PathDenyFilter "(^|/)[.][^/]*$"`)
	}
	if o.Extra != "" {
		conf = append(conf, o.Extra)
	}
	return conf
}

// listen picks a free port on 127.0.0.1 for the next start.
func (s *Server) listen() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return nil
}

// spawnAs starts cmd as the login account (when the tests run as root), its output
// appended to LogFile.
func (s *Server) spawnAs(t testing.TB, cmd *exec.Cmd) error {
	logf, err := os.OpenFile(s.LogFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o666)
	if err != nil {
		return err
	}
	defer logf.Close()
	s.own(t, s.LogFile) // ProFTPD reopens it as the account
	cmd.Stdout, cmd.Stderr = logf, logf
	if os.Geteuid() == 0 {
		uid, _ := strconv.ParseUint(s.account.Uid, 10, 32)
		gid, _ := strconv.ParseUint(s.account.Gid, 10, 32)
		runAs(cmd, uint32(uid), uint32(gid))
	}
	return spawn(t, cmd, s.Addr, string(s.Kind))
}

// rfc4716 writes a public key the way ProFTPD's SFTPAuthorizedUserKeys reads it.
func rfc4716(k ssh.PublicKey) []byte {
	b64 := base64.StdEncoding.EncodeToString(k.Marshal())
	var b strings.Builder
	b.WriteString("---- BEGIN SSH2 PUBLIC KEY ----\n")
	for len(b64) > 70 {
		b.WriteString(b64[:70] + "\n")
		b64 = b64[70:]
	}
	b.WriteString(b64 + "\n---- END SSH2 PUBLIC KEY ----\n")
	return []byte(b.String())
}

// groupName is the name of group gid, which ProFTPD's Group wants.
func groupName(gid string) string {
	out, err := exec.Command("getent", "group", gid).Output()
	if err != nil {
		return gid
	}
	name, _, _ := strings.Cut(string(out), ":")
	return name
}
