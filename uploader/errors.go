package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/pkg/sftp"

	"github.com/hotdrop/hotdrop/internal/safefs"
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
// permanent (a person has to act), and on which side it happened; the
// caller's one retry loop only reads it.
type Error struct {
	Code      string // one of the Code* constants
	Msg       string // a sentence a sysadmin can act on; never holds a secret
	Transient bool   // true: retrying the same job later may succeed
	// Source: the failure is on this side of the link, not the destination's:
	// reading the file being sent (an NFS or SMB source that failed for a
	// moment), or hotdrop's own journal. It never counts as the destination
	// being unreachable.
	Source bool
	Err    error // the underlying error, for errors.Is/As; may be nil
	// Server is the server's own answer, as it sent it: the SFTP status code's
	// name and its message (`SSH_FX_FAILURE "can't seek in file"`), or a
	// command's words. "" when the failure was not the server's answer.
	Server string
	// RenameAsked: the rename into place was asked for and failed for a passing reason, so
	// the server may have done it. The partial stays if it did not; a caller with no
	// journal of rename intents (hotdrop send) asks the server before trying again.
	RenameAsked bool
}

// Reason is the sentence with the server's own words beside it: what a
// status file, an event, the dashboard and the log show.
func (e *Error) Reason() string {
	words := e.Server
	if words == "" && e.Err != nil && !e.Transient && !e.Source {
		words = ServerWords(e.Err)
	}
	if words == "" || strings.Contains(e.Msg, words) {
		return e.Msg
	}
	return e.Msg + " (the server said: " + words + ")"
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
// one, else destinationError's reading of a raw error. It returns nil for a
// nil error.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return destinationError("", "", err)
}

// destinationError turns a raw error seen talking to the destination during
// operation op on path p into an *Error, naming the operation and path. A
// refusal in the server's own words is permanent (remote_error with them);
// an error no rule here recognises, with no answer of the server's in it, is
// transient, as delivery's is: a wrongly permanent failure stops a delivery
// at 2 a.m. for nothing, while a wrongly transient one is retried with
// backoff and, if it lasts, raises destination.unreachable with its words.
func destinationError(op, p string, err error) *Error {
	what := op
	if p != "" {
		what = fmt.Sprintf("%s %s", op, p)
	}
	if what == "" {
		what = "transfer"
	}
	words := ServerWords(err)
	switch {
	case errors.Is(err, safefs.ErrUnsafe):
		// A link (or something else that is not what it must be) where a file:// destination
		// has a folder or a partial: someone else planted it; a person has to look.
		msg := what + ": " + err.Error()
		if ue := (*safefs.UnsafeError)(nil); errors.As(err, &ue) && op != "" {
			msg = op + " " + ue.Error() // it names the path refused
		}
		return &Error{Code: CodeRemoteError, Msg: msg, Err: err}
	case isPermission(err):
		return &Error{Code: CodePermissionDenied, Msg: what + ": permission denied", Err: err, Server: words}
	case isNoSpace(err):
		return &Error{Code: CodeNoSpace, Msg: what + ": no space left on the destination", Err: err, Server: words}
	case isAuth(err):
		return &Error{Code: CodeAuthFailed, Msg: "the server refused our login", Err: err}
	case isTransient(err):
		return &Error{Code: CodeTransient, Msg: what + ": connection problem, will retry", Transient: true, Err: err}
	case words == "":
		return &Error{Code: CodeTransient, Msg: fmt.Sprintf("%s: %v; will retry", what, err), Transient: true, Err: err}
	}
	return &Error{Code: CodeRemoteError, Msg: what + ": the server refused", Err: err, Server: words}
}

// fxNames are the SFTP status codes by number: SFTP version 3's (what
// pkg/sftp speaks) and the later drafts' that some servers send anyway.
var fxNames = []string{"SSH_FX_OK", "SSH_FX_EOF", "SSH_FX_NO_SUCH_FILE", "SSH_FX_PERMISSION_DENIED",
	"SSH_FX_FAILURE", "SSH_FX_BAD_MESSAGE", "SSH_FX_NO_CONNECTION", "SSH_FX_CONNECTION_LOST",
	"SSH_FX_OP_UNSUPPORTED", "SSH_FX_INVALID_HANDLE", "SSH_FX_NO_SUCH_PATH", "SSH_FX_FILE_ALREADY_EXISTS",
	"SSH_FX_WRITE_PROTECT", "SSH_FX_NO_MEDIA", "SSH_FX_NO_SPACE_ON_FILESYSTEM", "SSH_FX_QUOTA_EXCEEDED",
	"SSH_FX_UNKNOWN_PRINCIPAL", "SSH_FX_LOCK_CONFLICT", "SSH_FX_DIR_NOT_EMPTY", "SSH_FX_NOT_A_DIRECTORY",
	"SSH_FX_INVALID_FILENAME", "SSH_FX_LINK_LOOP", "SSH_FX_CANNOT_DELETE", "SSH_FX_INVALID_PARAMETER",
	"SSH_FX_FILE_IS_A_DIRECTORY"}

const (
	fxNoSpaceOnFilesystem = 14
	fxQuotaExceeded       = 15
)

// ServerWords returns the server's own answer held in err: the SFTP status
// code's name and the message the server sent with it, e.g.
// `SSH_FX_FAILURE "can't seek in file"`. pkg/sftp keeps no message for
// "no such file" and "permission denied" (it turns them into fs errors), so
// those give the code's name alone. For a file:// destination it is the
// system's error text. "" when err holds no answer of the server's.
func ServerWords(err error) string {
	var se *sftp.StatusError
	if errors.As(err, &se) {
		name := fmt.Sprintf("SFTP status %d", se.Code)
		if int(se.Code) < len(fxNames) {
			name = fxNames[se.Code]
		}
		if msg := statusMessage(se); msg != "" {
			return fmt.Sprintf("%s %q", name, msg)
		}
		return name
	}
	var errno syscall.Errno
	var oe *net.OpError
	if errors.As(err, &errno) && !errors.As(err, &oe) {
		return errno.Error()
	}
	// pkg/sftp's own stand-ins for the two codes it maps to fs errors.
	switch err {
	case os.ErrPermission:
		return fxNames[3]
	case os.ErrNotExist:
		return fxNames[2]
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && (pe.Err == os.ErrPermission || pe.Err == os.ErrNotExist) {
		return ServerWords(pe.Err)
	}
	return ""
}

// statusMessage digs the server's message out of a StatusError, which keeps
// it unexported and prints it as `sftp: "MESSAGE" (CODE NAME)`.
func statusMessage(se *sftp.StatusError) string {
	s := strings.TrimPrefix(se.Error(), "sftp: ")
	if i := strings.LastIndex(s, " ("); i > 0 {
		s = s[:i]
	}
	if m, err := strconv.Unquote(s); err == nil {
		return strings.TrimSpace(m)
	}
	return strings.TrimSpace(s)
}

func isPermission(err error) bool {
	var se *sftp.StatusError
	if errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxPermissionDenied {
		return true
	}
	return errors.Is(err, os.ErrPermission) || errors.Is(err, sftp.ErrSSHFxPermissionDenied)
}

// isNoSpace reports a full disk or quota: the system's error for file://;
// for SFTP the later drafts' status codes, or a message that says so (a
// server without statvfs@openssh.com can tell us no other way).
func isNoSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	var se *sftp.StatusError
	if !errors.As(err, &se) {
		return false
	}
	if se.Code == fxNoSpaceOnFilesystem || se.Code == fxQuotaExceeded {
		return true
	}
	msg := strings.ToLower(statusMessage(se))
	for _, w := range []string{"no space", "disk full", "quota", "not enough space", "insufficient storage", "out of space", "out of disk space"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
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
