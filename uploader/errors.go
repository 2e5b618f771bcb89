package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/pkg/sftp"
)

// Failure codes carried by Error.Code. They are the SPEC's words, so the caller
// can put them into status files and events unchanged.
const (
	CodeHostKeyUnknown   = "host_key_unknown"
	CodeHostKeyChanged   = "host_key_changed"
	CodeAuthFailed       = "auth_failed"
	CodePermissionDenied = "permission_denied"
	CodeNoSpace          = "no_space"
	CodeRemoteExists     = "remote_exists"
	CodeRemoteError      = "remote_error"
	CodeVerifyMismatch   = "verify_mismatch"
	CodeHashUnavailable  = "remote_hash_unavailable" // verify = "hash" but the server cannot hash
	CodeChanged          = "changed_during_upload"
	CodeTransient        = "transient"
	CodeUnsafePath       = "unsafe_path" // the source became a link or special file after it settled
)

// Error is a classified failure. The code that saw the failure decides whether
// it is Transient (retry later: network, connection lost, timeouts) or
// permanent (a person has to act); the caller's one retry loop only reads it.
type Error struct {
	Code      string // one of the Code* constants
	Msg       string // a sentence a sysadmin can act on; never holds a secret
	Transient bool   // true: retrying the same job later may succeed
	Err       error  // the underlying error, for errors.Is/As; may be nil
}

// Error gives the sentence, then the underlying error's words (the server's, often).
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return e.Msg + ": " + e.Err.Error()
}

// Unwrap exposes the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Classify returns err as an *Error: the one found in its chain when there is
// one, else a classification of a raw error (network and connection errors
// are transient, permission errors permission_denied, the rest remote_error).
// It returns nil for a nil error.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return classify("", "", err)
}

// classify turns a raw error seen during operation op on path p into an *Error.
// It is used where errors arise, so the message can name the operation and path.
func classify(op, p string, err error) *Error {
	what := op
	if p != "" {
		what = fmt.Sprintf("%s %s", op, p)
	}
	if what == "" {
		what = "transfer"
	}
	switch {
	case isPermission(err):
		return &Error{Code: CodePermissionDenied, Msg: what + ": permission denied", Err: err}
	case isNoSpace(err):
		return &Error{Code: CodeNoSpace, Msg: what + ": no space left on the destination", Err: err}
	case isAuth(err):
		return &Error{Code: CodeAuthFailed, Msg: "the server refused our login", Err: err}
	case isTransient(err):
		return &Error{Code: CodeTransient, Msg: what + ": connection problem, will retry", Transient: true, Err: err}
	}
	return &Error{Code: CodeRemoteError, Msg: what + ": the server refused", Err: err}
}

func isPermission(err error) bool {
	var se *sftp.StatusError
	if errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxPermissionDenied {
		return true
	}
	return errors.Is(err, os.ErrPermission) || errors.Is(err, sftp.ErrSSHFxPermissionDenied)
}

func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func isAuth(err error) bool {
	return strings.Contains(err.Error(), "unable to authenticate")
}

// isTransient reports errors that say "the link is gone or slow", not "the
// server said no": those are worth retrying forever.
func isTransient(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, sftp.ErrSSHFxNoConnection) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ENETDOWN) ||
		errors.Is(err, syscall.ESTALE) || errors.Is(err, syscall.EIO) {
		return true
	}
	var se *sftp.StatusError
	if errors.As(err, &se) {
		c := se.FxCode()
		return c == sftp.ErrSSHFxConnectionLost || c == sftp.ErrSSHFxNoConnection
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	var dnsErr *net.DNSError
	return errors.As(err, &dnsErr)
}

// isFailure reports the bare SSH_FX_FAILURE that OpenSSH sends for most
// errno values, a full disk among them.
func isFailure(err error) bool {
	var se *sftp.StatusError
	return errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxFailure
}
