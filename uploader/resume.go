package uploader

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// openPartial opens the partial: the existing one when j.Resume still
// applies, with the offset to go on from and the ranges past it the partial
// already holds; else a new, empty one. It creates missing folders,
// remembering them so small files do not pay for a stat.
func (u *Uploader) openPartial(t target, f io.ReaderAt, fi os.FileInfo, j Job, partial string, seq bool) (remoteFile, int64, []span, error) {
	if r := j.Resume; r != nil && r.Offset > 0 {
		why := ""
		switch {
		case r.Partial != partial:
			why = "the journal names another partial " + r.Partial
		case r.Size != fi.Size() || !r.ModTime.Equal(fi.ModTime()) || r.Inode != inodeOf(fi) || r.Offset > fi.Size():
			why = "the local file is not the one the journal recorded"
		}
		if why == "" {
			w, start, present, err := u.reopenPartial(t, f, fi, r, partial, seq)
			if err == nil {
				return w, start, present, nil
			}
			why = fmt.Sprintf("the partial cannot be resumed (%v)", err)
		}
		u.log.Info("starting over instead of resuming", "remote", partial, "reason", why)
	}
	dir := t.dir(partial)
	_, known := u.dirs.Load(dir)
	if !known {
		if err := t.mkdirAll(dir); err != nil {
			return nil, 0, nil, destinationError("create folder", dir, err)
		}
		u.dirs.Store(dir, true)
	}
	w, err := t.create(partial)
	if known && errors.Is(err, fs.ErrNotExist) {
		// Someone removed the folder since we made it.
		u.dirs.Delete(dir)
		if err := t.mkdirAll(dir); err != nil {
			return nil, 0, nil, destinationError("create folder", dir, err)
		}
		u.dirs.Store(dir, true)
		w, err = t.create(partial)
	}
	if err != nil {
		return nil, 0, nil, u.writeError(t, "create", partial, err, j.Size)
	}
	return w, 0, nil, nil
}

// reopenPartial opens the partial a journal's checkpoint names and finds
// what of it can stay: everything below the acknowledged offset, and past
// it whatever reads back equal to the local file (writes whose
// acknowledgements were lost with the link or the process). Striped and
// concurrent writes leave holes there; what lies beyond a hole is kept too
// (present), except for a sequential-only server, which takes writes only
// at the end of what it holds: there the partial is cut back to the first
// byte that differs.
func (u *Uploader) reopenPartial(t target, f io.ReaderAt, fi os.FileInfo, r *Checkpoint, partial string, seq bool) (remoteFile, int64, []span, error) {
	w, err := t.openPartial(partial)
	if err != nil {
		return nil, 0, nil, err
	}
	rfi, err := w.Stat()
	if err == nil && rfi.Size() < r.Offset {
		err = fmt.Errorf("it holds %d bytes, fewer than the %d acknowledged", rfi.Size(), r.Offset)
	}
	if err != nil {
		w.Close()
		return nil, 0, nil, err
	}
	start, held := r.Offset, min(rfi.Size(), fi.Size())
	var present []span
	if held > start {
		var same int64
		same, present = u.salvage(t, f, partial, start, held)
		start += same
		if seq {
			present = nil
		}
	}
	how := "appending at the server's size: every byte past the journal's offset read back equal to the local file's"
	switch {
	case start == rfi.Size():
	case !seq && rfi.Size() <= fi.Size():
		// Whatever differs is written over; nothing needs cutting.
		how = "writing over what differs past the last byte that matches"
	default:
		// Cutting back is a SETSTAT some servers (sequential-only ones
		// among them) refuse; where every byte reads back right there is
		// nothing to cut, and the resume appends.
		how = "cutting the partial back to the last byte that matches"
		if err := w.Truncate(start); err != nil {
			w.Close()
			return nil, 0, nil, err
		}
	}
	kept := int64(0)
	for _, p := range present {
		kept += p.end - p.off
	}
	u.log.Info("resuming", "remote", partial, "from", start, "acknowledged", r.Offset, "kept_past_it", kept, "how", how)
	return w, start, present, nil
}

// salvageMax bounds the read-back of a partial past its acknowledged
// offset: about what can be on the way when a link drops (the SSH windows
// of every stream, the SFTP requests behind them) and what the checkpoint
// throttle leaves unrecorded.
const salvageMax = 64 << 20

// salvageBlock: past a hole, ranges are kept in blocks (aligned to the
// file's start) that read back equal to the local file's.
const salvageBlock = 32 << 10

// salvage reads back what the partial holds from off (up to size) and
// compares it with the local file: it returns how many bytes from off are
// equal, and past them the blocks that are. Those reached the server
// although their acknowledgements were lost with the link or the process,
// and need not cross the uplink again. A hole left by out-of-order writes
// reads as zeros and ends the match unless the file holds zeros there too,
// in which case the bytes are right anyway. Any error keeps nothing.
func (u *Uploader) salvage(t target, f io.ReaderAt, partial string, off, size int64) (int64, []span) {
	end := min(size, off+salvageMax)
	same, matching := int64(0), true
	var present []span
	const piece = 16 << 20
	local := make([]byte, min(piece, end-off))
	for pos := off; pos < end; {
		want := int(min(piece, end-pos))
		remote, err := t.readRange(partial, pos, want)
		if err != nil || len(remote) == 0 {
			break
		}
		m, _ := f.ReadAt(local[:len(remote)], pos)
		l, r := local[:m], remote[:min(m, len(remote))]
		i := 0
		if matching {
			for i < len(r) && l[i] == r[i] {
				i++
			}
			same += int64(i)
			matching = i == len(remote)
		}
		// Past the first difference, block by block.
		for b := int64(i); b < int64(len(r)); {
			at := pos + b
			next := min((at/salvageBlock+1)*salvageBlock-pos, int64(len(r)))
			if bytes.Equal(l[b:next], r[b:next]) {
				if k := len(present); k > 0 && present[k-1].end == at {
					present[k-1].end = pos + next
				} else {
					present = append(present, span{at, pos + next})
				}
			}
			b = next
		}
		pos += int64(len(remote))
		if len(remote) < want {
			break // the partial ended sooner than it said
		}
	}
	return same, present
}

// hashPrefix reads the first n bytes of the source into the hashes: the
// part a resumed upload does not send again. It returns that part's own
// sha256, to check against the partial's prefix on a server that cannot
// hash the whole file.
func (u *Uploader) hashPrefix(f *os.File, n int64, h *hashes) (string, error) {
	ps := sha256.New()
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		m, err := io.ReadFull(f, b)
		u.readBytes.Add(int64(m))
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return "", &Error{Code: CodeChanged, Source: true, Msg: fmt.Sprintf("local file %s shrank before the resume point", f.Name())}
			}
			return "", sourceError(f.Name(), err)
		}
		h.Write(b)
		ps.Write(b)
		n -= int64(m)
	}
	return hex.EncodeToString(ps.Sum(nil)), nil
}
