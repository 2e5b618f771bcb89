package uploader

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownHosts is a known_hosts file as it was when read. The uploader reads it for every dial,
// so that `hotdrop trust` takes effect without a restart; `hotdrop trust` reads it to tell
// whether the key a server offers is pinned already, or whether another one is.
type KnownHosts struct {
	File string
	db   ssh.HostKeyCallback // nil: the file does not exist (yet)
}

// ReadKnownHosts reads file. A file that does not exist pins nothing and is no error (Exists
// says so); one that cannot be read or parsed is a host_key_unknown *Error.
func ReadKnownHosts(file string) (*KnownHosts, error) {
	db, err := knownhosts.New(file)
	if errors.Is(err, fs.ErrNotExist) {
		return &KnownHosts{File: file}, nil
	}
	if err != nil {
		return nil, &Error{Code: CodeHostKeyUnknown, Err: err, Msg: fmt.Sprintf("cannot read known_hosts file %s", file)}
	}
	return &KnownHosts{File: file, db: db}, nil
}

// Exists reports whether the file existed when it was read.
func (k *KnownHosts) Exists() bool { return k.db != nil }

// probeKey matches no real host key: checking it lists every key pinned for a host.
var probeKey, _ = ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

// Pinned lists the keys the file pins for addr (host:port).
func (k *KnownHosts) Pinned(addr string) []knownhosts.KnownKey {
	if k.db == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := k.db(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey); errors.As(err, &ke) {
		return ke.Want
	}
	return nil
}

// Algorithms are the host key algorithms to ask addr for: only the types pinned for it (nil
// when none is), else a server that prefers another type would look like a changed key.
func (k *KnownHosts) Algorithms(addr string) []string {
	var algos []string
	for _, p := range k.Pinned(addr) {
		t := p.Key.Type()
		if t == ssh.KeyAlgoRSA {
			// The key type ssh-rsa is signed with these algorithms.
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		}
		if !slices.Contains(algos, t) {
			algos = append(algos, t)
		}
	}
	return algos
}

// Check compares the host key addr offered (from remote) with the file. nil: it is pinned.
// Otherwise an *Error: host_key_unknown when the file pins no key for addr (or does not
// exist), host_key_changed when it pins another key or marks this one revoked, each with the
// fingerprint and the known_hosts line a person would add.
func (k *KnownHosts) Check(addr string, remote net.Addr, key ssh.PublicKey) *Error {
	if k.db == nil {
		return &Error{Code: CodeHostKeyUnknown, Err: fs.ErrNotExist, Msg: fmt.Sprintf(
			"known_hosts file %s does not exist; pin the server's key with `hotdrop trust` first", k.File)}
	}
	err := k.db(addr, remote, key)
	if err == nil {
		return nil
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	fp := ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return &Error{Code: CodeHostKeyChanged, Err: err, Msg: fmt.Sprintf(
			"server %s offered the %s host key %s, which %s marks as revoked; refusing to connect",
			addr, key.Type(), fp, k.File)}
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return &Error{Code: CodeHostKeyUnknown, Err: err, Msg: fmt.Sprintf(
			"server %s offered the %s host key %s, which %s does not pin; after checking this fingerprint "+
				"with the server's administrator, add this line to %s (or run `hotdrop trust`):\n%s",
			addr, key.Type(), fp, k.File, k.File, line)}
	case errors.As(err, &ke):
		var pinned []string
		for _, w := range ke.Want {
			pinned = append(pinned, fmt.Sprintf("%s %s (%s:%d)", w.Key.Type(), ssh.FingerprintSHA256(w.Key), w.Filename, w.Line))
		}
		return &Error{Code: CodeHostKeyChanged, Err: err, Msg: fmt.Sprintf(
			"HOST KEY CHANGED: server %s offered the %s host key %s, but %s pins %s. This may be an attack, "+
				"or the server was reinstalled; ask its administrator. If the new key is right, replace the old line with:\n%s",
			addr, key.Type(), fp, k.File, strings.Join(pinned, ", "), line)}
	}
	return &Error{Code: CodeHostKeyUnknown, Err: err, Msg: fmt.Sprintf("checking the host key of %s", addr)}
}

// hostKeyCheck is the dial's ssh.HostKeyCallback: it keeps the classified failure, so the
// dial can report it instead of the generic handshake error.
type hostKeyCheck struct {
	known   *KnownHosts
	addr    string
	failure *Error
}

// newHostKeyCheck reads known_hosts and returns the check and the host key algorithms to ask
// addr for. A missing file is an error here: the uploader never connects unverified.
func newHostKeyCheck(file, addr string) (*hostKeyCheck, []string, error) {
	k, err := ReadKnownHosts(file)
	if err != nil {
		return nil, nil, err
	}
	if !k.Exists() {
		return nil, nil, k.Check(addr, nil, nil)
	}
	return &hostKeyCheck{known: k, addr: addr}, k.Algorithms(addr), nil
}

func (h *hostKeyCheck) callback(_ string, remote net.Addr, key ssh.PublicKey) error {
	if e := h.known.Check(h.addr, remote, key); e != nil {
		h.failure = e
		return e
	}
	return nil
}

// errKeySeen stops a handshake once the host key is known: ScanHostKey never logs in.
var errKeySeen = errors.New("host key received")

// ScanHostKey connects to addr and returns the host key the server offers (of one of algos,
// when given) and the address it answered from, without logging in: what `hotdrop trust`
// shows a person before pinning. timeout bounds the connect and the key exchange.
func ScanHostKey(ctx context.Context, addr string, algos []string, timeout time.Duration) (ssh.PublicKey, net.Addr, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach %s: %w", addr, err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(timeout))
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
