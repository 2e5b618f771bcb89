package uploader

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"
)

// hashFirst reports whether the partial of an upload resumed from start
// is to be hashed on the server before the publish: always for verify =
// "hash"; for "auto" unless the server showed it cannot (a file:// folder
// only for a resumed file, as its "server" hash is our own read-back);
// for "size" only for a resumed file, whose earlier part nobody checked.
func (u *Uploader) hashFirst(start int64) bool {
	switch {
	case u.verify == VerifyHash:
		return true
	case u.noRemoteHash.Load():
		return false
	case u.verify == VerifySize || u.local:
		return start > 0
	}
	return true
}

// errBadPrefix marks a resumed partial that proved not to hold what was
// meant: it is discarded, and the next attempt starts from the beginning.
var errBadPrefix = errors.New("the resumed partial differs from the local file")

// verifyPartial proves the complete partial holds what was sent, before
// anything is published, and names the check it used. The bytes below a
// resume offset were written by an earlier attempt (another process, a
// server that lost unflushed data in a power cut), so a resumed file is
// never proved by its size alone: the server's hash where it has one, else
// its prefix read back over SFTP and compared with the local prefix.
func (u *Uploader) verifyPartial(ctx context.Context, t target, partial string, start int64, sums fileSums, h *hashes) (string, error) {
	if u.hashFirst(start) {
		err := u.verifyRemote(ctx, t, partial, sums.sha, sums.size, h)
		if err == nil {
			return VerifyHash, nil
		}
		e := Classify(err)
		switch {
		case e.Code == CodeVerifyMismatch && start > 0:
			return "", u.badPrefix(t, partial, start, e.Msg)
		case e.Code != CodeHashUnavailable || u.verify == VerifyHash:
			return "", err
		}
		if !u.noRemoteHash.Swap(true) {
			u.log.Info("the server cannot hash files: new files are verified by size, resumed ones by reading their earlier part back",
				"addr", u.addr, "reason", e.Error())
		}
	}
	if start == 0 {
		return VerifySize, nil
	}
	pr, ok := t.(prefixReader)
	if !ok {
		return "", &Error{Code: CodeHashUnavailable, Msg: fmt.Sprintf(
			"%s was resumed, and this destination can neither hash it nor read it back; it is never published on its size alone", partial)}
	}
	got, err := pr.sumPrefix(ctx, partial, start)
	if err != nil {
		if ctx.Err() != nil {
			return "", destinationError("read back", partial, ctx.Err())
		}
		return "", destinationError("read back the resumed part of", partial, err)
	}
	if got != sums.prefix {
		return "", u.badPrefix(t, partial, start, fmt.Sprintf(
			"its first %d bytes read back from the server have sha256 %s, the local file's %s", start, got, sums.prefix))
	}
	return VerifyReadback, nil
}

// badPrefix discards a resumed partial that failed its check and says so.
// It is transient: sending the file again from the start may well succeed.
func (u *Uploader) badPrefix(t target, partial string, start int64, detail string) *Error {
	if err := t.remove(partial); err != nil && !errors.Is(err, fs.ErrNotExist) {
		u.log.Warn("could not remove a partial upload that failed its check", "remote", partial, "err", err)
	}
	u.log.Warn("a resumed partial did not match the local file; sending it again from the start", "remote", partial, "resumed_from", start, "detail", detail)
	return &Error{Code: CodeTransient, Transient: true, Err: fmt.Errorf("%w: %s", errBadPrefix, detail), Msg: fmt.Sprintf(
		"%s was resumed from byte %d, and the server's copy does not match the local file; nothing was published, the partial was discarded and the file will be sent again from the start", partial, start)}
}

// prefixReader is the ability to hash the first n bytes of a remote file
// by reading them back: the check of a resumed file when the server
// cannot hash.
type prefixReader interface {
	sumPrefix(ctx context.Context, p string, n int64) (string, error)
}

func (c *sftpConn) sumPrefix(ctx context.Context, p string, n int64) (string, error) {
	f, err := c.sftp.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	return sumReaderAt(ctx, f, n)
}

func (l localTarget) sumPrefix(ctx context.Context, p string, n int64) (string, error) {
	f, err := l.open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return sumReaderAt(ctx, f, n)
}

// sumReaderAt hashes the first n bytes of r. Large reads let pkg/sftp
// pipeline them (it splits a ReadAt into concurrent requests).
func sumReaderAt(ctx context.Context, r io.ReaderAt, n int64) (string, error) {
	h := sha256.New()
	buf := make([]byte, min(n, 4<<20))
	for off := int64(0); off < n; {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		b := buf[:min(int64(len(buf)), n-off)]
		m, err := r.ReadAt(b, off)
		h.Write(b[:m])
		off += int64(m)
		if m < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				err = fmt.Errorf("it holds only %d bytes, fewer than the %d resumed from", off, n)
			}
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifyRemote asks the server for the partial's hash and compares it with
// what was sent, before anything is published. A mismatch is permanent.
func (u *Uploader) verifyRemote(ctx context.Context, t target, partial, sha string, size int64, h *hashes) error {
	rh, ok := t.(remoteHasher)
	if !ok {
		return &Error{Code: CodeHashUnavailable, Msg: fmt.Sprintf(
			"verify = \"hash\" needs a way to hash %s on the server, and this destination has none; use verify = \"size\"", partial)}
	}
	kind, want := ChecksumSHA256, sha
	got, err := rh.remoteSum(ctx, partial, kind, size)
	if errors.Is(err, errNoTool) && h.kind == ChecksumMD5 {
		// Some servers have md5sum but not sha256sum; md5 was computed too.
		_, want = h.sums()
		kind = ChecksumMD5
		got, err = rh.remoteSum(ctx, partial, kind, size)
	}
	if err != nil {
		if e := (*Error)(nil); errors.As(err, &e) {
			return e
		}
		return destinationError("hash on the server", partial, err)
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
func (c *sftpConn) remoteSum(ctx context.Context, p, kind string, size int64) (string, error) {
	openssl := kind == ChecksumSHA256 && size >= opensslFrom && !c.noOpenSSL.Load()
	if c.shellProven.Load() {
		if openssl {
			// OpenSSL uses the CPU's SHA instructions, which coreutils'
			// sha256sum does not: four times less of the server's time.
			if sum, ok := c.hashers.sum(ctx, c.ssh, p, opensslSHA256); ok {
				return sum, nil
			}
			c.noOpenSSL.Store(true)
		}
		if sum, ok := c.hashers.sum(ctx, c.ssh, p, hashTools[kind]); ok {
			return sum, nil
		}
	}
	sum, err := c.oneShotSum(ctx, p, kind, openssl)
	if err == nil {
		c.shellProven.Store(true)
	}
	return sum, err
}

// opensslFrom: a smaller file is hashed with sha256sum, which starts in a
// third of openssl's time (1.5 ms against 3.6 here); from a few MiB on
// openssl's faster hashing makes up for it.
const opensslFrom = 4 << 20

var hashTools = map[string]string{ChecksumSHA256: "sha256sum", ChecksumMD5: "md5sum"}

// oneShotSum runs the hash command in an exec session of its own, and says
// in plain words why a server could not.
func (c *sftpConn) oneShotSum(ctx context.Context, p, kind string, openssl bool) (string, error) {
	tool := hashTools[kind]
	if tool == "" {
		return "", &Error{Code: CodeHashUnavailable, Msg: fmt.Sprintf("there is no standard remote command for %s checksums", kind)}
	}
	sess, err := c.ssh.NewSession()
	var refused *ssh.OpenChannelError
	if err != nil && !errors.As(err, &refused) {
		// The connection, not the server's policy: retried, and auto keeps asking later.
		return "", &Error{Code: CodeTransient, Transient: true, Err: err, Msg: fmt.Sprintf(
			"opening a command session to hash %s: connection problem, will retry", p)}
	}
	if err != nil {
		return "", &Error{Code: CodeHashUnavailable, Err: err, Msg: fmt.Sprintf(
			"verify = \"hash\": the server refused a command session to run %s on %s; it may allow SFTP only — use verify = \"size\"", tool, p)}
	}
	defer sess.Close()
	var out, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &stderr
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	cmd := tool + " -- " + shellQuote(p)
	if openssl {
		// OpenSSL first, where it is (see remoteSum); sha256sum's answer,
		// and its words when it fails, otherwise.
		cmd = "openssl dgst -sha256 -r -- " + shellQuote(p) + " 2>/dev/null || " + cmd
	}
	err = sess.Run(cmd)
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) && exit.ExitStatus() == 127 {
		return "", &Error{Code: CodeHashUnavailable, Err: errNoTool, Msg: fmt.Sprintf(
			"verify = \"hash\": the server has no %s command (%s); use verify = \"size\"", tool, strings.TrimSpace(stderr.String()))}
	}
	if err != nil && isExecRefused(err) {
		// The server said no to the exec request itself: an SFTP-only server.
		return "", &Error{Code: CodeHashUnavailable, Err: err, Msg: fmt.Sprintf(
			"verify = \"hash\": the server refused to run %s on %s; it may allow SFTP only — use verify = \"size\"", tool, p)}
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

// isExecRefused reports x/crypto/ssh's error for an exec request the server answered "no"
// (it has no type of its own), as opposed to a command that ran and failed.
func isExecRefused(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "ssh: command ") && strings.HasSuffix(s, " failed")
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
// name while the file it describes is still being sent, checked and
// published.
type pendingSumFile struct {
	u       *Uploader
	t       target
	p, tmp  string
	final   string
	line    []byte
	lines   chan []byte // the line, once known; closed without one when abandoned
	replace bool        // the file it describes is a redelivery: its old checksum file is ours
	done    chan struct{}
	err     error
	settled bool
}

// openChecksumFile starts the checksum file of final + "." + kind in the
// background: its temporary copy is created at once, alongside the file's
// own partial, and written when write gives the sum, so that after the
// file's last byte only the write and the close are left, no longer than
// the file's own close and rename.
func (u *Uploader) openChecksumFile(t target, final, kind string, replace bool) *pendingSumFile {
	p := final + "." + kind
	ps := &pendingSumFile{u: u, t: t, p: p, tmp: t.partial(p), final: final, replace: replace,
		lines: make(chan []byte, 1), done: make(chan struct{})}
	go func() {
		defer close(ps.done)
		w, err := t.create(ps.tmp)
		line, ok := <-ps.lines
		if errors.Is(err, fs.ErrNotExist) && ok {
			// Its folder did not exist yet: the file's own partial made it.
			w, err = t.create(ps.tmp)
		}
		switch {
		case err != nil && ok:
			ps.err = destinationError("create", ps.tmp, err)
			return
		case err != nil:
			return
		case !ok:
			w.Close()
			return
		}
		_, werr := w.WriteAt(line, 0)
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			ps.err = destinationError("write checksum file", ps.tmp, werr)
		}
	}()
	return ps
}

// write gives the checksum: "HEX  NAME\n" (sha256sum format, NAME
// relative, so `sha256sum -c` works in that folder).
func (ps *pendingSumFile) write(sum string) {
	ps.line = []byte(sum + "  " + path.Base(strings.ReplaceAll(ps.final, "\\", "/")) + "\n")
	ps.lines <- ps.line
}

// publish renames the checksum file into place, after the file it describes.
func (ps *pendingSumFile) publish() (string, error) {
	<-ps.done
	ps.settled = true
	err := ps.err
	if err == nil {
		if _, rerr := ps.t.rename(ps.tmp, ps.p, ps.replace); rerr != nil {
			if err = ps.taken(rerr); err == nil {
				// Done by an earlier try whose answer was lost: this copy
				// is not needed, and nothing else would ever remove it.
				_ = ps.t.remove(ps.tmp)
			}
		}
	}
	if err != nil {
		_ = ps.t.remove(ps.tmp)
		return "", err
	}
	return ps.p, nil
}

// taken explains a checksum file that could not be renamed into place. When
// it may not replace what is there and what is there already says the same
// (an earlier try of hotdrop's, cut off before it was recorded), it is done.
func (ps *pendingSumFile) taken(rerr error) error {
	if !ps.replace {
		got, err := ps.t.readSmall(ps.p, int64(len(ps.line))+1)
		switch {
		case err == nil && bytes.Equal(got, ps.line):
			return nil
		case err == nil:
			return remoteExists(ps.p)
		}
	}
	return destinationError("write checksum file", ps.p, rerr)
}

// abandon removes the temporary copy when the file itself was not published.
func (ps *pendingSumFile) abandon() {
	if ps.line == nil {
		close(ps.lines)
	}
	<-ps.done
	if !ps.settled {
		_ = ps.t.remove(ps.tmp)
	}
}

// writeChecksumFile writes the checksum file of final now, through its
// temporary name and a rename like every other file.
func (u *Uploader) writeChecksumFile(t target, final, kind, sum string, replace bool) (string, error) {
	ps := u.openChecksumFile(t, final, kind, replace)
	ps.write(sum)
	return ps.publish()
}

// WriteChecksumFile writes the checksum file of an already delivered file
// rel: for a caller retrying after Result.ChecksumErr. kind is one of the
// Checksum* kinds and sum its hex value; replace as the file's Job.Replace
// (a redelivery's old checksum file is replaced). A temporary copy an
// earlier try left is written over, and one that found the checksum file
// already in place with this sum is removed.
func (u *Uploader) WriteChecksumFile(ctx context.Context, rel, kind, sum string, replace bool) (string, error) {
	if err := checkName(rel); err != nil {
		return "", &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	if err := checkChecksumKind(kind); err != nil || kind == "" || kind == ChecksumNone {
		return "", fmt.Errorf("checksum file for %s: kind %q: want sha256, md5 or xxh64", rel, kind)
	}
	var remote string
	err := u.withTarget(ctx, func(t target) error {
		var err error
		remote, err = u.writeChecksumFile(t, t.abs(rel), kind, sum, replace)
		return err
	})
	return remote, err
}

// FinishPublish completes the publish of a file whose rename into place
// happened before hotdrop stopped (the caller's journal holds the intent and
// the server the final file): it hashes the local file, which must still be
// the one of j (size, mtime), proves the final file by the server's hash
// where it has one, and writes the checksum file through its temporary name,
// replacing a temporary copy the crash left behind. Result.ChecksumErr says
// why the checksum file could not be written; the file itself stays
// delivered.
func (u *Uploader) FinishPublish(ctx context.Context, j Job) (Result, error) {
	if err := checkName(j.RemoteRel); err != nil {
		return Result{}, &Error{Code: CodeRemoteError, Msg: "refusing remote path", Err: err}
	}
	f, _, err := openLocal(j)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	h := newHashes(u.checksum)
	buf := make([]byte, 1<<20)
	if _, err := io.CopyBuffer(hashWriter{h}, f, buf); err != nil {
		return Result{}, sourceError(j.LocalPath, err)
	}
	sha, sum := h.sums()
	var res Result
	err = u.withTarget(ctx, func(t target) error {
		var err error
		res, err = u.finishPublish(ctx, t, j, h, sha, sum)
		return err
	})
	return res, err
}

func (u *Uploader) finishPublish(ctx context.Context, t target, j Job, h *hashes, sha, sum string) (Result, error) {
	final := t.abs(j.RemoteRel)
	res := Result{Remote: final, Size: j.Size, SHA256: sha, Verified: VerifySize}
	if u.hashFirst(0) {
		err := u.verifyRemote(ctx, t, final, sha, j.Size, h)
		switch e := Classify(err); {
		case err == nil:
			res.Verified = VerifyHash
		case e.Code == CodeVerifyMismatch:
			return Result{}, &Error{Code: CodeVerifyMismatch, Err: err, Msg: fmt.Sprintf(
				"%s was renamed into place before hotdrop stopped, but it does not hold the local file's bytes", final)}
		case e.Code != CodeHashUnavailable:
			return Result{}, err
		}
	}
	if u.checksum == "" || j.NoChecksumFile {
		return res, nil
	}
	res.ChecksumKind, res.Checksum = u.checksum, sum
	res.ChecksumFile, res.ChecksumErr = u.writeChecksumFile(t, final, u.checksum, sum, j.Replace)
	return res, nil
}

// hashWriter feeds bytes to hashes.
type hashWriter struct{ h *hashes }

func (w hashWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	return len(p), nil
}
