package uploader

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyCheck verifies the server's host key against known_hosts and keeps
// the classified failure, so the dial can report it instead of the generic
// handshake error.
type hostKeyCheck struct {
	file, addr string
	db         ssh.HostKeyCallback
	failure    *Error
}

// newHostKeyCheck reads known_hosts (every dial, so `hotdrop trust` takes
// effect without a restart) and returns the check and the host key
// algorithms to ask for: only the types pinned for addr, else a server that
// prefers another type would look like a changed key.
func newHostKeyCheck(file, addr string) (*hostKeyCheck, []string, error) {
	db, err := knownhosts.New(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, &Error{Code: CodeHostKeyUnknown, Err: err, Msg: fmt.Sprintf(
				"known_hosts file %s does not exist; pin the server's key with `hotdrop trust` first", file)}
		}
		return nil, nil, &Error{Code: CodeHostKeyUnknown, Err: err, Msg: fmt.Sprintf("cannot read known_hosts file %s", file)}
	}
	return &hostKeyCheck{file: file, addr: addr, db: db}, knownAlgorithms(db, addr), nil
}

// probeKey matches no real host key: checking it lists every key pinned for a host.
var probeKey, _ = ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))

func knownAlgorithms(db ssh.HostKeyCallback, addr string) []string {
	remote := &net.TCPAddr{IP: net.IPv4zero}
	var ke *knownhosts.KeyError
	if err := db(addr, remote, probeKey); !errors.As(err, &ke) {
		return nil
	}
	var algos []string
	for _, k := range ke.Want {
		t := k.Key.Type()
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

// callback is the ssh.HostKeyCallback.
func (h *hostKeyCheck) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.db(hostname, remote, key)
	if err == nil {
		return nil
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(h.addr)}, key)
	fp := ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		h.failure = &Error{Code: CodeHostKeyChanged, Err: err, Msg: fmt.Sprintf(
			"server %s offered the %s host key %s, which %s marks as revoked; refusing to connect",
			h.addr, key.Type(), fp, h.file)}
	case errors.As(err, &ke) && len(ke.Want) == 0:
		h.failure = &Error{Code: CodeHostKeyUnknown, Err: err, Msg: fmt.Sprintf(
			"server %s offered the %s host key %s, which %s does not pin; after checking this fingerprint "+
				"with the server's administrator, add this line to %s (or run `hotdrop trust`):\n%s",
			h.addr, key.Type(), fp, h.file, h.file, line)}
	case errors.As(err, &ke):
		var pinned []string
		for _, k := range ke.Want {
			pinned = append(pinned, fmt.Sprintf("%s %s (%s:%d)", k.Key.Type(), ssh.FingerprintSHA256(k.Key), k.Filename, k.Line))
		}
		h.failure = &Error{Code: CodeHostKeyChanged, Err: err, Msg: fmt.Sprintf(
			"HOST KEY CHANGED: server %s offered the %s host key %s, but %s pins %s. This may be an attack, "+
				"or the server was reinstalled; ask its administrator. If the new key is right, replace the old line with:\n%s",
			h.addr, key.Type(), fp, h.file, strings.Join(pinned, ", "), line)}
	default:
		h.failure = &Error{Code: CodeHostKeyUnknown, Err: err, Msg: fmt.Sprintf("checking the host key of %s", h.addr)}
	}
	return h.failure
}
