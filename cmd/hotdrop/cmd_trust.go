package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// trustDialTimeout bounds the TCP connect and the SSH key exchange of `trust` and the
// fingerprint lookup of `check --connect`.
const trustDialTimeout = 15 * time.Second

// cmdTrust is `hotdrop trust`: show the server's host key and pin it in known_hosts once
// a person has compared the fingerprint (or --yes says a script already did).
func cmdTrust(args []string, stdout, stderr io.Writer) error {
	return trust(args, os.Stdin, isTerminal(os.Stdin), stdout, stderr)
}

// isTerminal reports whether f is a terminal someone can answer on.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&fs.ModeCharDevice != 0
}

func trust(args []string, in io.Reader, tty bool, stdout, stderr io.Writer) error {
	flags := newFlags("trust", "trust [--config FILE] [--yes]", stderr)
	cfgPath := flags.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	yes := flags.Bool("yes", false, "pin without asking (for scripts that have checked the fingerprint)")
	if err := parse(flags, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	addr, err := sftpAddr(cfg.Destination.URL)
	if err != nil {
		return err
	}
	file := cfg.Destination.KnownHosts
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, pinned, err := pinnedKeys(file, addr)
	if err != nil {
		return err
	}
	key, remote, err := scanHostKey(ctx, addr, pinnedAlgorithms(pinned))
	if err != nil {
		return err
	}
	fp := ssh.FingerprintSHA256(key)
	if db != nil {
		var ke *knownhosts.KeyError
		switch err := db(addr, remote, key); {
		case err == nil:
			fmt.Fprintf(stdout, "%s's %s host key %s is already pinned in %s; nothing to do\n", addr, key.Type(), fp, file)
			return nil
		case errors.As(err, &ke) && len(ke.Want) > 0:
			return fmt.Errorf("HOST KEY CHANGED: server %s now offers the %s host key %s, but %s pins %s. "+
				"This may be an attack, or the server was reinstalled: ask its administrator. hotdrop trust never "+
				"replaces a pinned key; if the new key is right, delete that line yourself and run hotdrop trust again",
				addr, key.Type(), fp, file, describePinned(ke.Want))
		case !errors.As(err, &ke):
			return fmt.Errorf("%s refuses %s's key: %w", file, addr, err) // revoked
		}
	}
	fmt.Fprintf(stdout, "server %s offers this %s host key:\n  %s\n", addr, key.Type(), fp)
	fmt.Fprintf(stdout, "Compare it with the fingerprint the server's administrator gives you\n(on the server: ssh-keygen -lf /etc/ssh/ssh_host_%s_key.pub).\n", keyFileType(key))
	if !*yes {
		if !tty {
			return errors.New("standard input is not a terminal, so no one can confirm the fingerprint; check it, then run hotdrop trust --yes")
		}
		fmt.Fprintf(stdout, "Pin it in %s? [y/N] ", file)
		answer, _ := bufio.NewReader(in).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return errors.New("not pinned: hotdrop will refuse to connect to this server until its key is pinned")
		}
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	if err := appendLine(file, line); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pinned in %s:\n%s\n", file, line)
	return nil
}

// sftpAddr is the host:port of an sftp:// destination URL.
func sftpAddr(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return "", errors.New("destination.url is not set or not a URL; set it to sftp://user@host[:port]/folder first")
	}
	if u.Scheme != "sftp" {
		return "", fmt.Errorf("destination.url is %s://, which has no host key to trust", u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// pinnedKeys reads known_hosts (a missing file pins nothing) and returns the keys pinned
// for addr. db is nil when the file does not exist yet.
func pinnedKeys(file, addr string) (ssh.HostKeyCallback, []knownhosts.KnownKey, error) {
	db, err := knownhosts.New(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read known_hosts file %s: %w", file, err)
	}
	// A key that matches nothing makes the check list every key pinned for the host.
	probe, _ := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	var ke *knownhosts.KeyError
	if err := db(addr, &net.TCPAddr{IP: net.IPv4zero}, probe); errors.As(err, &ke) {
		return db, ke.Want, nil
	}
	return db, nil, nil
}

// pinnedAlgorithms asks the server for the key types already pinned, as the uploader does,
// so a server that prefers another type is not mistaken for a changed key.
func pinnedAlgorithms(keys []knownhosts.KnownKey) []string {
	var algos []string
	for _, k := range keys {
		t := k.Key.Type()
		if t == ssh.KeyAlgoRSA {
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
		if !slices.Contains(algos, t) {
			algos = append(algos, t)
		}
	}
	return algos
}

func describePinned(keys []knownhosts.KnownKey) string {
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s %s (line %d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Line))
	}
	return strings.Join(s, ", ")
}

// keyFileType is the name OpenSSH gives the host key file of a key type.
func keyFileType(k ssh.PublicKey) string {
	switch t := k.Type(); {
	case t == ssh.KeyAlgoED25519:
		return "ed25519"
	case strings.HasPrefix(t, "ecdsa-"):
		return "ecdsa"
	case t == ssh.KeyAlgoRSA:
		return "rsa"
	default:
		return "*"
	}
}

// errKeySeen stops the handshake once the host key is known: trust never logs in.
var errKeySeen = errors.New("host key received")

// scanHostKey connects to addr and returns the host key the server offers (of one of algos,
// when given) without logging in.
func scanHostKey(ctx context.Context, addr string, algos []string) (ssh.PublicKey, net.Addr, error) {
	d := net.Dialer{Timeout: trustDialTimeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach %s: %w", addr, err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(trustDialTimeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var key ssh.PublicKey
	cfg := &ssh.ClientConfig{
		User:              "hotdrop",
		HostKeyAlgorithms: algos,
		ClientVersion:     "SSH-2.0-hotdrop",
		HostKeyCallback: func(_ string, _ net.Addr, k ssh.PublicKey) error {
			key = k
			return errKeySeen
		},
	}
	_, _, _, err = ssh.NewClientConn(nc, addr, cfg)
	if key != nil {
		return key, nc.RemoteAddr(), nil
	}
	if ctx.Err() != nil {
		return nil, nil, fmt.Errorf("connecting to %s: %w", addr, ctx.Err())
	}
	if err != nil && strings.Contains(err.Error(), "no common algorithm for host key") {
		return nil, nil, fmt.Errorf("server %s offers none of the host key types pinned for it (%s); ask its administrator what changed: %w",
			addr, strings.Join(algos, ", "), err)
	}
	return nil, nil, fmt.Errorf("ssh handshake with %s: %w", addr, err)
}

// appendLine adds a known_hosts line, on a line of its own, creating the file if needed.
func appendLine(file, line string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("cannot create the folder of %s: %w", file, err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", file, err)
	}
	prefix := ""
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, fi.Size()-1); err == nil && last[0] != '\n' {
			prefix = "\n"
		}
	}
	if _, err := f.WriteString(prefix + line + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", file, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", file, err)
	}
	return f.Close()
}
