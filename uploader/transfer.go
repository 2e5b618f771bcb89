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
	"os"
	"sync"
	"time"
)

// transfer runs the steps after the source is open and the target reached.
// A server that refuses writes sent out of order (most object-store gateways)
// refuses one of the first concurrent ones: the file is then sent once more
// from its start, in order, and when that works the destination is
// remembered as sequential-only, so every later file is sent in order at once.
func (u *Uploader) transfer(ctx context.Context, t target, f *os.File, fi os.FileInfo, j Job, final string) (Result, error) {
	seq := u.sequential.Load()
	restarted, orderWhy := false, ""
	for {
		res, err := u.transferOnce(ctx, t, f, fi, j, final, seq)
		var refused *writeRefused
		if err == nil || ctx.Err() != nil || Classify(err).Code != CodeRemoteError || !errors.As(err, &refused) {
			if err == nil && orderWhy != "" {
				u.markSequential(orderWhy)
			}
			return res, err
		}
		why := Classify(err).Reason()
		switch {
		case refused.start > 0 && !restarted:
			// What a server allows on a partial it already holds varies
			// (rclone without a cache reopens it, then refuses the write).
			restarted = true
			u.log.Info("the server refused to continue the resumed partial; sending the file again from its start",
				"addr", u.addr, "remote", final, "resumed_from", refused.start, "err", why)
		case refused.concurrent && !seq:
			seq, orderWhy = true, why
			u.log.Info("the server refused a write sent out of order; sending the file again from its start, in order",
				"addr", u.addr, "remote", final, "err", why)
		default:
			return res, err
		}
		if _, serr := f.Seek(0, io.SeekStart); serr != nil {
			return Result{}, sourceError(j.LocalPath, serr)
		}
		j.Resume = nil
	}
}

// markSequential remembers that the destination takes writes only in
// order, and says so once.
func (u *Uploader) markSequential(why string) {
	if !u.sequential.Swap(true) {
		u.log.Warn("the destination accepts only in-order writes: hotdrop sends every file to it in order from now on (still pipelined)",
			"addr", u.addr, "refusal", why)
	}
}

// writeRefused marks a write the server refused: with several in flight
// (concurrent), which may mean "not out of order"; or to a resumed partial
// (start > 0), which may mean "not to a file I hold already".
type writeRefused struct {
	err        error
	concurrent bool
	start      int64
}

func (w *writeRefused) Error() string { return w.err.Error() }
func (w *writeRefused) Unwrap() error { return w.err }

// transferOnce sends the file once: it opens the partial while it looks at the final names,
// writes and checks the partial, verifies it and publishes it under its final name.
func (u *Uploader) transferOnce(ctx context.Context, t target, f *os.File, fi os.FileInfo, j Job, final string, seq bool) (Result, error) {
	a := &attempt{u: u, ctx: ctx, t: t, f: f, fi: fi, j: j, final: final, partial: t.partial(final), seq: seq,
		h: newHashes(u.checksum)}
	defer a.abandonChecksumFile()
	w, err := a.openChecked()
	if err != nil {
		return Result{}, err
	}
	beforeRename := j.BeforeRename
	if j.IntendRename != nil {
		beforeRename = j.IntendRename(ctx) // the final name is free: the intent may go now
	}
	defer a.removeUnpublished()
	// A new file of moderate size is hashed on the server while its handle
	// closes and the final name is looked at again: the partial is complete
	// once every write was acknowledged, and on a long link each of these
	// steps is a round trip. A larger or resumed file is hashed after them,
	// and the final name looked at again after the hash, which may take long.
	overlap := a.start == 0 && j.Size <= overlapMax && u.hashFirst(0)
	lookAgain := u.hashFirst(a.start) && !overlap
	sums, err := a.write(w, !lookAgain, overlap)
	if sums.live != nil {
		defer sums.live.abort()
	}
	if err != nil {
		a.keep = j.Checkpoint != nil && Classify(err).Transient
		return Result{}, err
	}
	res := Result{Remote: final, Size: j.Size, SHA256: sums.sha, Resumed: a.start, Streams: sums.streams}
	if u.checksum != "" {
		res.ChecksumKind, res.Checksum = u.checksum, sums.sum
	}
	if res.Verified, err = a.verify(sums, overlap); err != nil {
		// A prefix that proved wrong is discarded (verifyPartial says so):
		// resuming it again would only fail again.
		a.keep = j.Checkpoint != nil && Classify(err).Transient && !errors.Is(err, errBadPrefix)
		return Result{}, err
	}
	if err := u.publish(ctx, t, j, a.partial, final, lookAgain, beforeRename); err != nil {
		return Result{}, err
	}
	a.published = true
	a.publishChecksumFile(&res)
	return res, nil
}

// attempt is one transferOnce: what its steps share.
type attempt struct {
	u              *Uploader
	ctx            context.Context
	t              target
	f              *os.File
	fi             os.FileInfo
	j              Job
	final, partial string
	seq            bool    // writes go in order (see transfer)
	h              *hashes // the source's hashes, taken as it is read

	start   int64  // where the copy starts: 0, or the resumed partial's offset
	present []span // past start, what the resumed partial holds already
	// sumFile is the checksum file's temporary copy; nil when none is written or it is
	// published or abandoned.
	sumFile *pendingSumFile
	// published: the partial has its final name; keep: it stays for a resume.
	published, keep bool
	// verified and verr are the hash taken while the handle closed (overlap).
	verified string
	verr     error
}

// openChecked opens the partial (see openPartial) while it looks at the
// final name and the checksum file's, which must be free: one round trip
// for all. It starts the checksum file's temporary copy too.
func (a *attempt) openChecked() (remoteFile, error) {
	u, t, j := a.u, a.t, a.j
	ferr, serr := make(chan error, 1), make(chan error, 1)
	go func() { ferr <- checkFinal(t, a.final, j.Replace) }()
	go func() {
		// The checksum file's name must be free too: a delivered file beside a
		// checksum file that disagrees with it would be worse than none.
		if u.checksum == "" || j.NoChecksumFile || j.Replace {
			serr <- nil
			return
		}
		serr <- checkFinal(t, a.final+"."+u.checksum, false)
	}()
	// The checksum file's temporary copy is made alongside the partial and
	// written while the partial is closed and checked: only its rename waits
	// for the publish.
	if u.checksum != "" && !j.NoChecksumFile {
		a.sumFile = u.openChecksumFile(t, a.final, u.checksum, j.Replace)
	}
	w, start, present, err := u.openPartial(t, a.f, a.fi, j, a.partial, a.seq)
	fe, se := <-ferr, <-serr
	if fe == nil {
		fe = se
	}
	if fe != nil {
		if err == nil {
			w.Close()
			if start == 0 {
				_ = t.remove(a.partial)
			}
		}
		return nil, fe
	}
	if err != nil {
		return nil, err
	}
	a.start, a.present = start, present
	return w, nil
}

// verify proves that the partial holds the source's bytes: by the hash the
// server took while the file was written, or one taken now. With overlap,
// the hash was taken while the handle closed.
func (a *attempt) verify(sums fileSums, overlap bool) (string, error) {
	switch {
	case !overlap:
		if a.u.beforeVerify != nil {
			a.u.beforeVerify(a.partial)
		}
		if a.u.liveVerified(a.ctx, a.t, a.partial, sums) {
			return VerifyHash, nil
		}
		return a.u.verifyPartial(a.ctx, a.t, a.partial, a.start, sums, a.h)
	case Classify(a.verr) != nil && Classify(a.verr).Code == CodeVerifyMismatch:
		// A server that shows the last writes only once the handle is
		// closed gets its say after the close.
		return a.u.verifyPartial(a.ctx, a.t, a.partial, 0, sums, a.h)
	}
	return a.verified, a.verr
}

// verifyWhileClosing is verify's hash for overlap, run while the handle closes.
func (a *attempt) verifyWhileClosing(sums fileSums) {
	if a.u.beforeVerify != nil {
		a.u.beforeVerify(a.partial)
	}
	a.verified, a.verr = a.u.verifyPartial(a.ctx, a.t, a.partial, 0, sums, a.h)
}

// removeUnpublished removes the partial unless it was published or is kept
// for a resume.
func (a *attempt) removeUnpublished() {
	if a.published || a.keep {
		return
	}
	// Best effort, and done even when ctx is cancelled: a partial left
	// behind would only confuse the ingest side.
	if rerr := a.t.remove(a.partial); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		a.u.log.Warn("could not remove partial upload", "remote", a.partial, "err", rerr)
	}
}

// publishChecksumFile gives the checksum file its final name, beside the
// published file; a failure there is reported in res, not as the upload's.
func (a *attempt) publishChecksumFile(res *Result) {
	if a.sumFile == nil {
		return
	}
	res.ChecksumFile, res.ChecksumErr = a.sumFile.publish()
	a.sumFile = nil
	if res.ChecksumErr != nil {
		a.u.log.Warn("delivered, but the checksum file could not be written", "remote", a.final, "err", res.ChecksumErr)
	}
}

func (a *attempt) abandonChecksumFile() {
	if a.sumFile != nil {
		a.sumFile.abandon()
	}
}

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

type fileSums struct {
	sha, sum, prefix string
	size             int64
	streams          int       // SFTP streams that carried the file
	live             *liveHash // the server's hash taken while it was written; nil: none
}

// write hashes the resumed prefix, then copies and hashes the rest in one
// pass, then proves that both ends hold what was meant: the source
// unchanged, the partial complete, and (checkFinalToo) the final name free.
// With overlap the partial is verified while its handle closes.
func (a *attempt) write(w remoteFile, checkFinalToo, overlap bool) (fileSums, error) {
	closed := false
	defer func() {
		if !closed {
			w.Close()
		}
	}()
	var prefix string
	if a.start > 0 {
		var err error
		if prefix, err = a.u.hashPrefix(a.f, a.start, a.h); err != nil {
			return fileSums{}, err
		}
	}
	pc := a.pumpConfig(w)
	var st *stripe
	if !a.seq {
		st = a.u.newStripe(a.t, a.partial, a.j.Size-a.start)
	}
	if st != nil {
		// The deferred close and finishPartial's close the other handles too.
		w = stripedFile{w, st}
		// Every stream, the lease's own included, keeps a few windows'
		// worth in flight, not more: a deep queue behind one window only
		// holds back the contiguous offset a resume goes on from.
		pc.inflight = min(pc.inflight, streamInflight)
		pc.join, pc.perStream = st.join, streamInflight
		st.run(a.ctx)
	}
	live := a.u.startLiveHash(a.t, a.partial, a.start, a.j.Size, a.seq)
	pc.acked = ackedHook(st, live)
	pr := pump(a.ctx, pc)
	streams := a.stopStripe(st, pr)
	keepLive := false
	if live != nil {
		defer func() {
			if !keepLive {
				live.abort()
			}
		}()
	}
	if pr.readErr != nil || pr.sendErr != nil {
		return fileSums{}, a.copyError(pr, pc.checkpoint)
	}
	sha, sum := a.h.sums()
	if a.sumFile != nil {
		a.sumFile.write(sum)
	}
	sums := fileSums{sha: sha, sum: sum, prefix: prefix, size: a.j.Size, streams: streams}
	var alongside func()
	if overlap {
		alongside = func() { a.verifyWhileClosing(sums) }
	}
	closed = true // finishPartial closes it
	if err := a.u.finishPartial(a.t, w, a.f, a.fi, a.j, a.partial, a.final, checkFinalToo, alongside); err != nil {
		return fileSums{}, err
	}
	sums.live, keepLive = live, true
	return sums, nil
}

// pumpConfig is the copy of the source from a.start into w, recording each
// offset the server acknowledged through j.Checkpoint.
func (a *attempt) pumpConfig(w remoteFile) pumpConfig {
	u, j := a.u, a.j
	ck := Checkpoint{Partial: a.partial, Size: a.fi.Size(), ModTime: a.fi.ModTime(), Inode: inodeOf(a.fi)}
	var checkpoint func(int64)
	if j.Checkpoint != nil {
		checkpoint = func(off int64) {
			c := ck
			c.Offset = off
			j.Checkpoint(c)
		}
	}
	return pumpConfig{
		src: a.f, dst: w, start: a.start, end: j.Size, chunk: a.t.chunkSize(), inflight: u.inflight, sequential: a.seq,
		present: a.present, hashes: a.h, limit: u.limit, progress: j.Progress, checkpoint: checkpoint, clock: u.clock,
		readBytes: func(n int) { u.readBytes.Add(int64(n)) },
	}
}

// ackedHook tells the stripe (how much was sent) and the live hash (how
// far the partial is whole) of the copy's progress; nil when neither runs.
func ackedHook(st *stripe, live *liveHash) func(sent, contiguous int64) {
	if st == nil && live == nil {
		return nil
	}
	return func(sent, contiguous int64) {
		if st != nil {
			st.sent.Store(sent)
		}
		if live != nil {
			live.offer(contiguous)
		}
	}
}

// stopStripe stops the stripe's further streams, if any, and returns how
// many streams carried the file.
func (a *attempt) stopStripe(st *stripe, pr pumpResult) int {
	if st == nil {
		return 1
	}
	st.stop()
	streams, per := st.used()
	a.u.log.Debug("striped", "remote", a.partial, "streams", streams, "bytes_per_further_stream", per, "skipped", pr.skipped, "sent_again", pr.again)
	return streams
}

// copyError is the error of a copy that stopped; a transient one records
// how far the server acknowledged, for the resume.
func (a *attempt) copyError(pr pumpResult, checkpoint func(int64)) error {
	if pr.sendErr != nil {
		pr.sendErr = &writeRefused{err: pr.sendErr, start: a.start, concurrent: !a.seq && a.j.Size-a.start > int64(a.t.chunkSize())}
	}
	err := a.u.pumpError(a.ctx, a.t, a.j, a.partial, pr)
	if checkpoint != nil && Classify(err).Transient && pr.acked > a.start {
		checkpoint(pr.acked)
	}
	return err
}

// startLiveHash starts hashing a large partial on the server while it is
// written (see liveHash), where the file is to be hashed there anyway; nil
// otherwise. The first start bytes are there already.
func (u *Uploader) startLiveHash(t target, partial string, start, size int64, seq bool) *liveHash {
	lc, ok := t.(leasedConn)
	if !ok || seq || size < liveHashFrom || !u.hashFirst(start) || u.noRemoteHash.Load() {
		return nil
	}
	l := lc.startLiveHash(partial, size)
	if l != nil && start > 0 {
		l.offer(start)
	}
	return l
}

// liveVerified reports whether the live hash of sums' file gave the sha256
// sent, so no hash after the close is needed. Any other answer leaves the
// decision to that hash.
func (u *Uploader) liveVerified(ctx context.Context, t target, partial string, sums fileSums) bool {
	if sums.live == nil {
		return false
	}
	got, err := sums.live.result(ctx)
	if err != nil || got != sums.sha {
		u.log.Info("the hash taken on the server while the file was written did not prove it; hashing it again", "remote", partial, "got", got, "err", err)
		return false
	}
	if lc, ok := t.(leasedConn); ok {
		lc.shellProven.Store(true)
	}
	u.log.Debug("verified by the hash the server took while the file was written", "remote", partial)
	return true
}

// overlapMax: a new file up to this size is hashed on the server while its
// handle closes (see transferOnce); sha256sum takes a fraction of a second.
const overlapMax = 64 << 20

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

// pumpError names why the copy stopped: the local file, ctx, or the server.
func (u *Uploader) pumpError(ctx context.Context, t target, j Job, partial string, pr pumpResult) error {
	switch {
	case pr.readErr != nil && ctx.Err() != nil:
		return destinationError("upload", partial, ctx.Err())
	case errors.Is(pr.readErr, io.ErrUnexpectedEOF):
		return &Error{Code: CodeChanged, Source: true, Msg: fmt.Sprintf(
			"local file %s shrank during upload (read %d bytes, want %d); the partial was discarded", j.LocalPath, pr.read, j.Size)}
	case pr.sendErr != nil:
		return u.writeError(t, "write", partial, pr.sendErr, j.Size)
	}
	return sourceError(j.LocalPath, pr.readErr)
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

// publish renames the checked partial into place, after the caller has
// journaled its intent (beforeRename: j.BeforeRename, or the wait of j.IntendRename).
func (u *Uploader) publish(ctx context.Context, t target, j Job, partial, final string, lookAgain bool, beforeRename func(context.Context) error) error {
	// The upload may have taken hours: look again, so a file that appeared
	// meanwhile is not overwritten (writePartial looked already unless a
	// remote hash ran since).
	if lookAgain {
		if err := checkFinal(t, final, j.Replace); err != nil {
			return err
		}
	}
	if beforeRename != nil {
		if err := beforeRename(ctx); err != nil {
			if e := (*Error)(nil); errors.As(err, &e) {
				return err
			}
			return &Error{Code: CodeTransient, Transient: true, Source: true, // hotdrop's own journal
				Msg: fmt.Sprintf("recording the rename of %s failed; nothing was published", final), Err: err}
		}
	}
	how, err := t.rename(partial, final, j.Replace)
	if err != nil {
		if !j.Replace {
			if _, serr := t.stat(final); serr == nil {
				return remoteExists(final)
			}
		}
		return destinationError("rename into place", final, err)
	}
	u.log.Debug("renamed into place", "remote", final, "method", how)
	return nil
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
