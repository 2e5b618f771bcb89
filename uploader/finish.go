package uploader

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// finishPartial closes the partial and proves that both ends hold what was
// meant: the source unchanged, the partial complete, and (checkFinalToo) the
// final name still free. alongside (may be nil) runs at the same time.
func (u *Uploader) finishPartial(t target, w remoteFile, f *os.File, fi os.FileInfo, j Job, partial, final string, checkFinalToo bool, alongside func()) error {
	var werr error
	if u.fsync {
		werr = w.Sync()
	}
	if werr != nil {
		werr = fmt.Errorf("fsync: %w", werr)
	}
	// Every write was acknowledged, so the server has done them all: the
	// close, the size check by path and (without a remote hash, which takes
	// long enough to look again after it) the look at the final name go
	// out together, one round trip instead of three.
	var rfi os.FileInfo
	var serr, ferr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rfi, serr = t.stat(partial)
	}()
	if checkFinalToo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ferr = checkFinal(t, final, j.Replace)
		}()
	}
	if alongside != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			alongside()
		}()
	}
	cerr := w.Close()
	wg.Wait()
	if werr == nil && cerr != nil {
		werr = fmt.Errorf("close: %w", cerr)
	}
	if werr != nil {
		return u.writeError(t, "write", partial, werr, j.Size)
	}
	if err := checkUnchanged(j, f, fi); err != nil {
		return err
	}
	if ferr != nil {
		return ferr
	}
	err := serr
	if (err == nil && rfi.Size() < j.Size) || errors.Is(err, fs.ErrNotExist) {
		// Every write was acknowledged: a server that shows less (or
		// nothing yet) stores behind its answers, as object stores do.
		rfi, err = u.waitForSize(t, partial, j.Size)
	}
	if err != nil {
		return destinationError("check size of", partial, err)
	}
	if rfi.Size() != j.Size {
		return u.writeError(t, "check size of", partial,
			fmt.Errorf("%w: the server holds %d bytes, we sent %d", errShortRemote, rfi.Size(), j.Size), j.Size)
	}
	return nil
}

// waitForSize looks at the partial again, less and less often, until it
// shows size bytes or u.statLag has passed; it returns what it saw last.
func (u *Uploader) waitForSize(t target, p string, size int64) (os.FileInfo, error) {
	start := u.clock.Now()
	wait := 20 * time.Millisecond
	for {
		<-u.clock.After(wait)
		fi, err := t.stat(p)
		if err == nil && fi.Size() >= size {
			u.log.Info("the server showed the whole file only some time after its close; verify waited for it",
				"remote", p, "waited", u.clock.Now().Sub(start).Round(time.Millisecond))
			return fi, nil
		}
		if (err != nil && !errors.Is(err, fs.ErrNotExist)) || u.clock.Now().Sub(start) >= u.statLag {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w: the server still shows no file %s %v after its close", errShortRemote, p, u.statLag)
			}
			return fi, err
		}
		wait = min(wait*2, time.Second)
	}
}

// publish renames the checked partial into place, after the caller has
// journaled its intent (beforeRename: j.BeforeRename, or the wait of j.IntendRename).
// tried: the rename was asked for, so the server may have done it whatever err says.
func (u *Uploader) publish(ctx context.Context, t target, j Job, partial, final string, lookAgain bool, beforeRename func(context.Context) error) (tried bool, err error) {
	// The upload may have taken hours: look again, so a file that appeared
	// meanwhile is not overwritten (writePartial looked already unless a
	// remote hash ran since).
	if lookAgain {
		if err := checkFinal(t, final, j.Replace); err != nil {
			return false, err
		}
	}
	if beforeRename != nil {
		if err := beforeRename(ctx); err != nil {
			if e := (*Error)(nil); errors.As(err, &e) {
				return false, err
			}
			return false, &Error{Code: CodeTransient, Transient: true, Source: true, // hotdrop's own journal
				Msg: fmt.Sprintf("recording the rename of %s in the journal failed (%s); nothing was published", final, journalWords(err)), Err: err}
		}
	}
	how, err := t.rename(partial, final, j.Replace)
	if err != nil {
		if !j.Replace {
			if _, serr := t.stat(final); serr == nil {
				return true, remoteExists(final)
			}
		}
		return true, destinationError("rename into place", final, err)
	}
	u.log.Debug("renamed into place", "remote", final, "method", how)
	return true, nil
}

// errShortRemote marks a partial whose size on the server is not what we
// sent, which is how a swallowed write error (often a full disk) shows.
var errShortRemote = errors.New("remote size mismatch")

func remoteExists(final string) *Error {
	return &Error{Code: CodeRemoteExists, Msg: fmt.Sprintf(
		"remote file %s already exists and hotdrop did not deliver it; it is never overwritten silently", final)}
}

// checkFinal refuses to go on when the final name is taken and may not be replaced.
func checkFinal(t target, final string, replace bool) error {
	rfi, err := t.stat(final)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return destinationError("check", final, err)
	case rfi.IsDir():
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf("remote path %s is a folder", final)}
	case !replace:
		return remoteExists(final)
	}
	return nil
}

// checkUnchanged re-reads the source's identity after the last byte was sent:
// the descriptor that was read must still have its size and mtime (no write
// in place), and the path must still name that very file (not replaced,
// removed or reached through a folder swapped for a link). The path is looked
// at through j.Open when the caller gave one, else with Lstat: a link is
// never followed.
func checkUnchanged(j Job, f *os.File, before os.FileInfo) error {
	p := j.LocalPath
	changed := func(err error) error {
		return &Error{Code: CodeChanged, Source: true, Msg: fmt.Sprintf("local file %s changed during upload; the partial was discarded", p), Err: err}
	}
	held, err := f.Stat()
	if err != nil {
		return sourceError(p, err)
	}
	if held.Size() != before.Size() || !held.ModTime().Equal(before.ModTime()) {
		return changed(nil)
	}
	var now os.FileInfo
	if j.Open != nil {
		g, err := j.Open()
		if err != nil {
			return err
		}
		now, err = g.Stat()
		g.Close()
		if err != nil {
			return sourceError(p, err)
		}
	} else if now, err = os.Lstat(p); err != nil {
		return &Error{Code: CodeChanged, Source: true, Msg: fmt.Sprintf("local file %s went away during upload", p), Err: err}
	}
	if !now.Mode().IsRegular() || now.Size() != before.Size() || !now.ModTime().Equal(before.ModTime()) || !os.SameFile(now, before) {
		return changed(nil)
	}
	return nil
}

// writeError classifies a failed write. OpenSSH reports a full disk as a
// bare SSH_FX_FAILURE, so when the server can tell us its free space we ask.
func (u *Uploader) writeError(t target, op, p string, err error, size int64) *Error {
	if e := (*Error)(nil); errors.As(err, &e) {
		return e
	}
	if isFailure(err) || errors.Is(err, errShortRemote) {
		dir := t.dir(p)
		need := size
		if fi, serr := t.stat(p); serr == nil {
			need -= fi.Size()
		}
		if free, ok := t.freeSpace(dir); ok && free < max(need, 1) {
			return &Error{Code: CodeNoSpace, Msg: fmt.Sprintf(
				"%s %s: the destination has %d bytes free, %d more needed", op, p, free, need), Err: err}
		}
	}
	if errors.Is(err, errShortRemote) {
		// What the server showed, against what it acknowledged: its answer, not a hiccup.
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf("%s %s: %v", op, p, err), Err: err}
	}
	return destinationError(op, p, err)
}

// journalWords are a journal failure's words for people: a full disk says where to free space.
func journalWords(err error) string {
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "disk is full") {
		return "the disk of state_dir is full: free space there; " + err.Error()
	}
	return err.Error()
}
