package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
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
		if a.keep {
			a.checkpointWhole(err)
		}
		return Result{}, err
	}
	if tried, err := u.publish(ctx, t, j, a.partial, final, lookAgain, beforeRename); err != nil {
		if tried && Classify(err).Transient {
			// The rename was asked for and its answer never came (or the share said EIO):
			// the partial stays, on whichever side of the rename the server is. Removing it
			// would erase what tells the next attempt, or a restart, that the rename did not
			// happen, and an older final file of the same size would pass for this one. Kept,
			// with a checkpoint at its end, it is published without being sent again.
			a.keep = true
			a.checkpointWhole(err)
			e := *Classify(err)
			e.RenameAsked = true
			err = &e
		}
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
			// A resumed partial stays for the next try after a passing trouble; refused for
			// good, the caller forgets its resume point, and nothing would ever finish it.
			if start == 0 || !Classify(fe).Transient {
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
		a.checkpointWhole(err)
		return fileSums{}, err
	}
	sums.live, keepLive = live, true
	return sums, nil
}

// checkpointWhole records, after a transient failure past the copy (the link lost while
// the partial was closed, checked or hashed), that the server acknowledged every byte: the
// next attempt resumes at the end, checks, verifies and publishes, and sends none of it
// again. A small file has no checkpoint otherwise (one every 16 MiB or 250 ms), and with
// many in flight, those between their last write and their rename were most of what a cut
// made hotdrop send twice. The resume still proves the partial: its size, then its hash.
func (a *attempt) checkpointWhole(err error) {
	if a.j.Checkpoint == nil || !Classify(err).Transient || a.j.Size == 0 {
		return
	}
	a.j.Checkpoint(Checkpoint{Partial: a.partial, Size: a.fi.Size(), ModTime: a.fi.ModTime(), Inode: inodeOf(a.fi), Offset: a.j.Size})
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

// overlapMax: a new file up to this size is hashed on the server while its
// handle closes (see transferOnce); sha256sum takes a fraction of a second.
const overlapMax = 64 << 20

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
