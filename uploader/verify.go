package uploader

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"
)

// verifyRemote asks the server for the partial's hash and compares it with
// what was sent, before anything is published. A mismatch is permanent.
func (u *Uploader) verifyRemote(ctx context.Context, t target, partial, sha string, h *hashes) error {
	rh, ok := t.(remoteHasher)
	if !ok {
		return &Error{Code: CodeHashUnavailable, Msg: fmt.Sprintf(
			"verify = \"hash\" needs a way to hash %s on the server, and this destination has none; use verify = \"size\"", partial)}
	}
	kind, want := ChecksumSHA256, sha
	got, err := rh.remoteSum(ctx, partial, kind)
	if errors.Is(err, errNoTool) && h.kind == ChecksumMD5 {
		// Some servers have md5sum but not sha256sum; md5 was computed too.
		_, want = h.sums()
		kind = ChecksumMD5
		got, err = rh.remoteSum(ctx, partial, kind)
	}
	if err != nil {
		if e := (*Error)(nil); errors.As(err, &e) {
			return e
		}
		return classify("hash on the server", partial, err)
	}
	if got != want {
		return &Error{Code: CodeVerifyMismatch, Msg: fmt.Sprintf(
			"the server's %s of %s is %s, but hotdrop sent bytes whose %s is %s; nothing was published",
			kind, partial, got, kind, want)}
	}
	return nil
}

// errNoTool: the server has a shell but not the hashing command.
var errNoTool = errors.New("hash command not found on the server")

// remoteSum runs sha256sum (or md5sum) on the server over an SSH exec
// session. A server that allows only SFTP (ForceCommand internal-sftp, a
// chroot) answers with no output or an error, which is reported as
// remote_hash_unavailable in plain words rather than as a mismatch.
func (c *sftpConn) remoteSum(ctx context.Context, p, kind string) (string, error) {
	tool := map[string]string{ChecksumSHA256: "sha256sum", ChecksumMD5: "md5sum"}[kind]
	if tool == "" {
		return "", &Error{Code: CodeHashUnavailable, Msg: fmt.Sprintf("there is no standard remote command for %s checksums", kind)}
	}
	sess, err := c.ssh.NewSession()
	if err != nil {
		return "", &Error{Code: CodeHashUnavailable, Err: err, Msg: fmt.Sprintf(
			"verify = \"hash\": the server refused a command session to run %s on %s; it may allow SFTP only — use verify = \"size\"", tool, p)}
	}
	defer sess.Close()
	var out, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &stderr
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	err = sess.Run(tool + " -- " + shellQuote(p))
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) && exit.ExitStatus() == 127 {
		return "", &Error{Code: CodeHashUnavailable, Err: errNoTool, Msg: fmt.Sprintf(
			"verify = \"hash\": the server has no %s command (%s); use verify = \"size\"", tool, strings.TrimSpace(stderr.String()))}
	}
	var missing *ssh.ExitMissingError
	if err != nil && !errors.As(err, &exit) && !errors.As(err, &missing) {
		return "", err // the connection, not the command
	}
	field, _, _ := strings.Cut(strings.TrimPrefix(out.String(), "\\"), " ")
	if err == nil && isHex(field, kind) {
		return strings.ToLower(field), nil
	}
	words := strings.TrimSpace(stderr.String())
	if words == "" {
		words = "no output; the account may be limited to SFTP"
	}
	return "", &Error{Code: CodeHashUnavailable, Err: err, Msg: fmt.Sprintf(
		"verify = \"hash\": running %s on the server for %s gave no checksum (%s). A chrooted SFTP account sees other paths than its shell, and an SFTP-only account has no shell; use verify = \"size\" there", tool, p, words)}
}

func isHex(s, kind string) bool {
	want := map[string]int{ChecksumSHA256: 64, ChecksumMD5: 32}[kind]
	_, err := hex.DecodeString(s)
	return err == nil && len(s) == want
}

// shellQuote makes s one word for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// pendingSumFile is a checksum file being written under its temporary
// name while the file it describes is still being checked and published.
type pendingSumFile struct {
	u       *Uploader
	t       target
	p, tmp  string
	done    chan struct{}
	err     error
	settled bool
}

// startChecksumFile writes "HEX  NAME\n" (sha256sum format, NAME relative,
// so `sha256sum -c` works in that folder) to the temporary name of
// final + "." + kind, in the background.
func (u *Uploader) startChecksumFile(t target, final, kind, sum string) *pendingSumFile {
	p := final + "." + kind
	ps := &pendingSumFile{u: u, t: t, p: p, tmp: t.partial(p), done: make(chan struct{})}
	line := []byte(sum + "  " + path.Base(strings.ReplaceAll(final, "\\", "/")) + "\n")
	go func() {
		defer close(ps.done)
		w, err := t.create(ps.tmp)
		if err != nil {
			ps.err = classify("create", ps.tmp, err)
			return
		}
		_, werr := w.WriteAt(line, 0)
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			ps.err = classify("write checksum file", ps.tmp, werr)
		}
	}()
	return ps
}

// publish renames the checksum file into place, after the file it describes.
func (ps *pendingSumFile) publish() (string, error) {
	<-ps.done
	ps.settled = true
	err := ps.err
	if err == nil {
		if _, rerr := ps.t.rename(ps.tmp, ps.p, true); rerr != nil {
			err = classify("write checksum file", ps.p, rerr)
		}
	}
	if err != nil {
		_ = ps.t.remove(ps.tmp)
		return "", err
	}
	return ps.p, nil
}

// abandon removes the temporary copy when the file itself was not published.
func (ps *pendingSumFile) abandon() {
	<-ps.done
	if !ps.settled {
		_ = ps.t.remove(ps.tmp)
	}
}

// writeChecksumFile writes the checksum file of final now, through its
// temporary name and a rename like every other file.
func (u *Uploader) writeChecksumFile(t target, final, kind, sum string) (string, error) {
	return u.startChecksumFile(t, final, kind, sum).publish()
}

// WriteChecksumFile writes the checksum file of an already delivered file
// rel: for a caller retrying after Result.ChecksumErr. kind is one of the
// Checksum* kinds and sum its hex value.
func (u *Uploader) WriteChecksumFile(ctx context.Context, rel, kind, sum string) (string, error) {
	if err := checkName(rel); err != nil {
		return "", &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	if err := checkChecksumKind(kind); err != nil || kind == "" || kind == ChecksumNone {
		return "", fmt.Errorf("checksum file for %s: kind %q: want sha256, md5 or xxh64", rel, kind)
	}
	var remote string
	err := u.withTarget(ctx, func(t target) error {
		var err error
		remote, err = u.writeChecksumFile(t, t.abs(rel), kind, sum)
		return err
	})
	return remote, err
}
