package uploader

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
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
		return destinationError("probe", "", err)
	}
	return u.withTarget(ctx, func(t target) error {
		caps, err := u.probe(ctx, t)
		if err == nil {
			u.capsMu.Lock()
			u.caps = caps
			u.capsMu.Unlock()
		}
		return err
	})
}

// Capabilities is what Probe found out about the destination's server. The
// uploader keeps using what it learnt (in-order writes, no remote hash) for
// every later file, without asking again.
type Capabilities struct {
	Server     string   // the SSH server's version; "" for file://
	Extensions []string // the SFTP extensions it advertised, sorted
	// SequentialOnly: it refused writes sent out of order and took them in order.
	SequentialOnly bool
	// SequentialWhy is the refusal, in the server's words.
	SequentialWhy string
	// Exec: it hashed a file over an SSH exec session (verify = "hash" works).
	// ExecWhy says why not, when not; empty when verify = "size" did not ask.
	Exec    bool
	ExecWhy string
	// FreeSpace in bytes, when FreeKnown (statvfs@openssh.com).
	FreeSpace int64
	FreeKnown bool
}

// Remember takes over what prev learnt about its server (writes only in
// order, no remote hash, striping refused or the streams that helped, the
// round trip, the last probe's findings) when u reaches the same
// server and folder as the same user: a config reload must not make the
// first file find it all out again.
func (u *Uploader) Remember(prev *Uploader) {
	if prev == nil || prev.local || u.local || prev.addr != u.addr || prev.user != u.user || prev.base != u.base {
		return
	}
	u.sequential.Store(prev.sequential.Load())
	u.noRemoteHash.Store(prev.noRemoteHash.Load())
	u.rtt.Store(prev.rtt.Load())
	u.bigPackets.Store(prev.bigPackets.Load())
	u.streams.off.Store(prev.streams.off.Load())
	if u.streams.fixed == prev.streams.fixed {
		u.streams.level.Store(prev.streams.level.Load())
		u.streams.settled.Store(prev.streams.settled.Load())
	}
	u.capsMu.Lock()
	u.caps = prev.Capabilities()
	u.capsMu.Unlock()
}

// Capabilities returns what the last successful Probe found out.
func (u *Uploader) Capabilities() Capabilities {
	u.capsMu.Lock()
	defer u.capsMu.Unlock()
	return u.caps
}

func (u *Uploader) probe(ctx context.Context, t target) (Capabilities, error) {
	var caps Capabilities
	base := t.abs("")
	fi, err := t.stat(base)
	if err := baseProblem(base, fi, err); err != nil {
		return caps, err
	}
	if c, ok := t.(leasedConn); ok {
		caps.Server = string(c.ssh.ServerVersion())
		caps.Extensions = c.extensions
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

	if dir := t.dir(partial); dir != t.dir(final) {
		// temp_name puts partial files in a folder of their own.
		if err := t.mkdirAll(dir); err != nil {
			return caps, destinationError("create folder", dir, err)
		}
	}
	if err := u.probeWrite(t, partial, &caps); err != nil {
		return caps, err
	}
	if fi, err := t.stat(partial); err != nil {
		return caps, destinationError("check size of", partial, err)
	} else if fi.Size() != int64(len(probeContent)) {
		return caps, u.writeError(t, "check size of", partial, fmt.Errorf("%w: the server holds %d bytes, we sent %d",
			errShortRemote, fi.Size(), len(probeContent)), int64(len(probeContent)))
	}
	if err := u.probeHash(ctx, t, partial, &caps); err != nil {
		return caps, err
	}
	if _, err := t.rename(partial, final, false); err != nil {
		return caps, destinationError("rename", partial, err)
	}
	leftover = final
	if err := t.remove(final); err != nil {
		return caps, destinationError("delete", final, err)
	}
	leftover = ""
	caps.FreeSpace, caps.FreeKnown = t.freeSpace(t.dir(final))
	return caps, nil
}

// baseProblem is what is wrong with the destination folder base, as stat (or opening it)
// answered: nil when it is a folder.
func baseProblem(base string, fi fs.FileInfo, err error) *Error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf(
			"the destination folder %s does not exist; check the path in destination.url", base), Err: err}
	case errors.Is(err, syscall.ENOTDIR):
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf("the destination %s is not a folder", base), Err: err}
	case err != nil:
		return destinationError("look at the destination folder", base, err)
	case !fi.IsDir():
		return &Error{Code: CodeRemoteError, Msg: fmt.Sprintf("the destination %s is not a folder", base)}
	}
	return nil
}

// probeWrite writes the probe file's two halves out of order, the second
// first, as concurrent writes may arrive. A server that refuses that gets
// the file again in order; if it takes it, the destination is sequential-only.
func (u *Uploader) probeWrite(t target, partial string, caps *Capabilities) error {
	data := []byte(probeContent)
	half := len(data) / 2
	write := func(parts ...int64) error {
		w, err := t.create(partial)
		if err != nil {
			return u.writeError(t, "create", partial, err, int64(len(data)))
		}
		var werr error
		for _, off := range parts {
			end := int64(len(data))
			if off == 0 && len(parts) > 1 {
				end = int64(half)
			}
			if _, werr = w.WriteAt(data[off:end], off); werr != nil {
				break
			}
		}
		if werr == nil {
			werr = w.Sync()
		}
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return u.writeError(t, "write", partial, werr, int64(len(data)))
		}
		return nil
	}
	if u.local {
		return write(0)
	}
	err := write(int64(half), 0)
	if err == nil || Classify(err).Code != CodeRemoteError {
		return err
	}
	if err2 := write(0); err2 != nil {
		return err2
	}
	caps.SequentialOnly, caps.SequentialWhy = true, Classify(err).Reason()
	u.markSequential(caps.SequentialWhy)
	return nil
}

// probeHash asks the server for the probe file's sha256 over SSH exec,
// unless verify = "size" never will. A server that cannot is noted (and
// verify = "auto" stops asking it); verify = "hash" fails here already.
func (u *Uploader) probeHash(ctx context.Context, t target, partial string, caps *Capabilities) error {
	if u.verify == VerifySize || u.local {
		return nil
	}
	h := newHashes(ChecksumSHA256)
	h.Write([]byte(probeContent))
	sha, _ := h.sums()
	err := u.verifyRemote(ctx, t, partial, sha, int64(len(probeContent)), h)
	e := Classify(err)
	switch {
	case err == nil:
		caps.Exec = true
		return nil
	case e.Code != CodeHashUnavailable || u.verify == VerifyHash:
		return err
	}
	caps.ExecWhy = e.Reason()
	if !u.noRemoteHash.Swap(true) {
		u.log.Info("the server cannot hash files: new files are verified by size, resumed ones by reading their earlier part back",
			"addr", u.addr, "reason", e.Reason())
	}
	return nil
}
