package uploader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
)

// probeContent is what the probe file holds, so a person who finds one left behind by a
// lost connection knows what it is.
const probeContent = "hotdrop check --connect: a test file; it may be deleted\n"

// Probe proves that the destination takes deliveries the way Upload makes them: it connects
// (handshake, host key, login) and, in the destination folder, writes a small file under a
// temporary name, checks its size, renames it and deletes it. It creates no folder: a
// missing destination folder is reported, since it usually means a wrong URL. Errors are
// *Error, classified like Upload's; the probe file is removed on every path it can be.
func (u *Uploader) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return classify("probe", "", err)
	}
	return u.withTarget(ctx, u.probe)
}

func (u *Uploader) probe(t target) error {
	base := t.abs("")
	fi, err := t.stat(base)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf(
			"the destination folder %s does not exist; check the path in destination.url", base), Err: err}
	case err != nil:
		return classify("look at the destination folder", base, err)
	case !fi.IsDir():
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf("the destination %s is not a folder", base)}
	}

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	final := t.abs("hotdrop-probe-" + hex.EncodeToString(rnd[:]))
	partial := t.partial(final)
	leftover := partial // what to remove if the probe stops half-way
	defer func() {
		if leftover == "" {
			return
		}
		if err := t.remove(leftover); err != nil && !errors.Is(err, fs.ErrNotExist) {
			u.log.Warn("could not remove the probe file", "remote", leftover, "err", err)
		}
	}()

	w, err := t.create(partial)
	if err != nil {
		return u.writeError(t, "create", partial, err, int64(len(probeContent)))
	}
	_, werr := w.WriteAt([]byte(probeContent), 0)
	if werr == nil {
		werr = w.Sync()
	}
	if cerr := w.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return u.writeError(t, "write", partial, werr, int64(len(probeContent)))
	}
	if fi, err := t.stat(partial); err != nil {
		return classify("check size of", partial, err)
	} else if fi.Size() != int64(len(probeContent)) {
		return u.writeError(t, "check size of", partial, fmt.Errorf("%w: the server holds %d bytes, we sent %d",
			errShortRemote, fi.Size(), len(probeContent)), int64(len(probeContent)))
	}
	if _, err := t.rename(partial, final, false); err != nil {
		return classify("rename", partial, err)
	}
	leftover = final
	if err := t.remove(final); err != nil {
		return classify("delete", final, err)
	}
	leftover = ""
	return nil
}
