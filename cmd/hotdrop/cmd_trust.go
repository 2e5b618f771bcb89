package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hotdrop/hotdrop/uploader"
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

	known, err := uploader.ReadKnownHosts(file)
	if err != nil {
		return err
	}
	key, remote, err := uploader.ScanHostKey(ctx, addr, known.Algorithms(addr), trustDialTimeout)
	if err != nil {
		return err
	}
	fp := ssh.FingerprintSHA256(key)
	if known.Exists() {
		switch e := known.Check(addr, remote, key); {
		case e == nil:
			fmt.Fprintf(stdout, "%s's %s host key %s is already pinned in %s; nothing to do\n", addr, key.Type(), fp, file)
			return nil
		case e.Code != uploader.CodeHostKeyUnknown || len(known.Pinned(addr)) > 0:
			// Another key is pinned, or this one is revoked: only a person may undo that.
			return errors.New(e.Msg + "\nhotdrop trust never replaces or un-revokes a pinned key: edit " + file + " yourself, then run hotdrop trust again")
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
