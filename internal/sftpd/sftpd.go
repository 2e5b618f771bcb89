// Package sftpd is a small SFTP server on 127.0.0.1: pkg/sftp's server over
// an x/crypto/ssh listener, serving the real filesystem. It exists for
// `hotdrop demo` (the whole flow on one machine with nothing set up) and for
// fast in-process tests of the uploader.
//
// It is not a production server: no chroot, no shell, no per-user
// permissions beyond those of the process, one user. Tests that need real
// OpenSSH behaviour (error mapping, posix-rename, limits) use
// internal/sshdtest instead.
package sftpd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Config says what the server serves and whom it lets in. At least one of
// AuthorizedKey and Password must be set.
type Config struct {
	Root          string        // working folder for relative paths; absolute paths reach the whole filesystem
	User          string        // the only user name accepted; "" accepts any
	AuthorizedKey ssh.PublicKey // accepted client key; nil = no public-key login
	Password      string        // accepted password (also via keyboard-interactive); "" = none
	Logger        *slog.Logger  // nil = slog.Default()
	// Handlers, when set, serve the files instead of the real filesystem, through
	// pkg/sftp's request server: for tests that need a server behaving in a way no
	// installable one does (Root must still name an existing folder).
	Handlers *sftp.Handlers
}

// Server is a running SFTP server.
type Server struct {
	Addr    string        // 127.0.0.1:PORT
	HostKey ssh.PublicKey // its freshly generated ed25519 host key, to pin in known_hosts

	cfg    Config
	log    *slog.Logger
	ssh    *ssh.ServerConfig
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	stopped bool
}

const handshakeTimeout = 10 * time.Second

// Start listens on 127.0.0.1 on a free port and serves until ctx is
// cancelled or Close is called.
func Start(ctx context.Context, c Config) (*Server, error) {
	if c.AuthorizedKey == nil && c.Password == "" {
		return nil, errors.New("sftpd: set AuthorizedKey or Password, or nobody could log in")
	}
	if st, err := os.Stat(c.Root); err != nil {
		return nil, fmt.Errorf("sftpd: root: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("sftpd: root %s is not a folder", c.Root)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sftpd: host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("sftpd: host key: %w", err)
	}
	s := &Server{cfg: c, log: c.Logger, HostKey: signer.PublicKey(), conns: make(map[net.Conn]struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.ssh = s.serverConfig()
	s.ssh.AddHostKey(signer)
	s.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sftpd: listen: %w", err)
	}
	s.Addr = s.ln.Addr().String()
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(2)
	go s.accept()
	go func() {
		defer s.wg.Done()
		<-ctx.Done()
		s.ln.Close()
		s.mu.Lock()
		s.stopped = true
		for nc := range s.conns {
			nc.Close()
		}
		s.mu.Unlock()
	}()
	return s, nil
}

// Close stops the server, drops every connection and waits for all its goroutines.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Server) serverConfig() *ssh.ServerConfig {
	c := s.cfg
	userOK := func(m ssh.ConnMetadata) bool { return c.User == "" || m.User() == c.User }
	cfg := &ssh.ServerConfig{ServerVersion: "SSH-2.0-hotdrop-sftpd"}
	if c.AuthorizedKey != nil {
		want := c.AuthorizedKey.Marshal()
		cfg.PublicKeyCallback = func(m ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if userOK(m) && bytes.Equal(key.Marshal(), want) {
				return nil, nil
			}
			return nil, fmt.Errorf("key %s not accepted for %q", ssh.FingerprintSHA256(key), m.User())
		}
	}
	if c.Password != "" {
		check := func(m ssh.ConnMetadata, answer string) bool {
			return userOK(m) && subtle.ConstantTimeCompare([]byte(answer), []byte(c.Password)) == 1
		}
		cfg.PasswordCallback = func(m ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if check(m, string(pw)) {
				return nil, nil
			}
			return nil, fmt.Errorf("wrong password for %q", m.User())
		}
		cfg.KeyboardInteractiveCallback = func(m ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			answers, err := client(m.User(), "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if len(answers) == 1 && check(m, answers[0]) {
				return nil, nil
			}
			return nil, fmt.Errorf("wrong password for %q", m.User())
		}
	}
	return cfg
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("sftpd: accept failed; stopping", "err", err)
			}
			return
		}
		if !s.track(nc) {
			nc.Close()
			return
		}
		s.wg.Add(1)
		go s.serveConn(nc)
	}
}

// track registers a connection so shutdown can close it; false once shut down.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.conns[nc] = struct{}{}
	return true
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.ssh)
	if err != nil {
		s.log.Debug("sftpd: handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s.log.Debug("sftpd: login", "user", sc.User(), "remote", nc.RemoteAddr().String())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ssh.DiscardRequests(reqs) // keepalive@openssh.com gets its (negative) reply
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serveSession(ch, chReqs)
		}()
	}
	sc.Close()
	wg.Wait()
}

// serveSession runs the sftp subsystem when asked; nothing else is offered.
func (s *Server) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	started := false
	for req := range reqs {
		ok := !started && req.Type == "subsystem" && len(req.Payload) >= 4 && string(req.Payload[4:]) == "sftp"
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if !ok {
			continue
		}
		started = true
		var srv interface {
			Serve() error
			Close() error
		}
		if s.cfg.Handlers != nil {
			srv = sftp.NewRequestServer(ch, *s.cfg.Handlers)
		} else {
			fsrv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.cfg.Root))
			if err != nil {
				s.log.Warn("sftpd: cannot start sftp", "err", err)
				return
			}
			srv = fsrv
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
				s.log.Debug("sftpd: sftp session ended", "err", err)
			}
			srv.Close()
			ch.Close()
		}()
	}
}
