package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotdrop/hotdrop/matcher"
)

// Matcher judges files against naming rules, sidecars and source-type profiles;
// *matcher.Matcher is the one hotdrop uses. It must be safe for concurrent use and is
// replaced as a whole on reload.
type Matcher interface {
	Evaluate(in matcher.Input) matcher.Verdict
	// EvaluateAll judges many files side by side on up to workers goroutines, as one look
	// (each folder sidecar read once for all of them): out[i] is ins[i]'s verdict.
	EvaluateAll(ins []matcher.Input, workers int) []matcher.Verdict
	Auxiliary(path string) (bool, string)
	// Affected names the file an auxiliary file describes, or the folder (below) whose files
	// it describes, so that a change to it has those judged again.
	Affected(path string) (target string, below, ok bool)
}

// Checksum is a writer's checksum file to check a file against before it is uploaded.
type Checksum interface {
	// VerifyReader hashes r (the content of the file at path, already opened safely) and
	// compares it with the checksum file; a mismatch wraps matcher.ErrChecksumMismatch.
	VerifyReader(ctx context.Context, path string, r io.Reader) error
}

func (e *Engine) isAuxiliary(p string) bool {
	if e.opt.Matcher != nil {
		aux, _ := e.opt.Matcher.Auxiliary(p)
		return aux
	}
	return e.auxiliary(p)
}

// auxChanged handles a change to a sidecar, a folder's _metadata.* or a checksum file: the
// files it describes have their settle clocks restarted (SPEC.md), so they are judged again,
// with the new metadata, once everything has stopped changing.
func (e *Engine) auxChanged(p string) {
	if e.opt.Touch == nil {
		return
	}
	base := filepath.Base(p)
	below := base == "_metadata.toml" || base == "_metadata.json"
	target := filepath.Dir(p)
	if e.opt.Matcher != nil {
		var ok bool
		if target, below, ok = e.opt.Matcher.Affected(p); !ok || target == "" {
			return
		}
	}
	if below {
		dir := target + string(filepath.Separator)
		for fp, fs := range e.files {
			if strings.HasPrefix(fp, dir) && fs.rec.State != Delivered && fs.rec.State != Uploading {
				e.opt.Touch(fp)
			}
		}
		return
	}
	if e.opt.Matcher == nil {
		target = strings.TrimSuffix(p, filepath.Ext(p))
	}
	if fs := e.files[target]; fs != nil && fs.rec.State != Delivered && fs.rec.State != Uploading {
		e.opt.Touch(fs.rec.Path)
	}
}

// judge judges a file that just became ready: its request (for the File Bin), merged
// metadata, the writers' checksums to verify, and any hold.
func (e *Engine) judge(ctx context.Context, fs *fileState, r *reqState) {
	if e.opt.Matcher == nil {
		return
	}
	in := e.judgeInput(fs.rec.Path, r)
	v := e.evaluate(in)
	if fs.inBin && fs.req() != v.Request {
		prev := e.reqs[fs.req()]
		e.assign(fs, v.Request)
		if prev != nil {
			e.refresh(ctx, prev)
		}
	}
	fs.meta = e.shareMeta(v.Request, v.Metadata.Values())
	if len(v.Checksums) > 0 || len(fs.x().verify) > 0 {
		x := fs.setMore()
		x.verify = x.verify[:0]
		for _, c := range v.Checksums {
			x.verify = append(x.verify, c)
		}
	}
	if owner := e.reqs[v.Request]; owner != nil {
		if v.Wait != "" {
			owner.needsMarker = true
		}
		if v.Profile != nil && v.Profile.SuspectFrames {
			owner.suspect = true
		}
	}
	if v.Hold != nil {
		e.hold(fs, v.Hold.Code, v.Hold.Message)
	}
	folder := in.Root
	if owner := e.reqs[fs.req()]; owner != nil {
		folder = owner.Folder
	}
	e.inspect(fs, v.Metadata, folder)
}

// shareMeta returns meta, or an equal map already held for a file of the same request: the
// frames of a sequence nearly always have the same metadata, and a copy per frame was a fifth
// of the daemon's memory at 100,000 files. Views and events only read these maps.
func (e *Engine) shareMeta(id string, meta map[string]string) map[string]string {
	r := e.reqs[id]
	if r == nil {
		return meta
	}
	if r.lastMeta != nil && maps.Equal(r.lastMeta, meta) {
		return r.lastMeta
	}
	r.lastMeta = meta
	return meta
}

// rejudge judges every ready or held file again: rules, profiles or requests changed.
func (e *Engine) rejudge(ctx context.Context) {
	for _, fs := range e.files {
		if fs.rec.State == Delivered || fs.rec.State == Uploading || !fs.latestReady {
			continue
		}
		if fs.rec.State == Held && fs.rec.Reason == ReasonUnsafePath {
			continue
		}
		fs.rec.State, fs.rec.Reason, fs.rec.Message = Ready, "", ""
		var r *reqState
		if !fs.inBin {
			r = e.reqs[fs.req()]
		}
		e.judge(ctx, fs, r)
		e.save(ctx, fs) // journal and announce a lifted or changed hold now
	}
}

// verifyChecksums checks a file against its writers' checksum files, from an upload goroutine:
// it reads the whole file, through a descriptor open gives (the same checks as the upload's
// own open: beneath watch.root, no link, the settled identity). A mismatch holds the file
// checksum_mismatch.
func verifyChecksums(ctx context.Context, p string, open func() (*os.File, error), sums []Checksum) error {
	if len(sums) == 0 {
		return nil
	}
	if open == nil {
		return &TransferError{Code: ReasonUnsafePath, Source: true, Msg: fmt.Sprintf("%s: no safe way to open it was given", p)}
	}
	f, err := open()
	if err != nil {
		return err
	}
	defer f.Close()
	for _, c := range sums {
		if err := c.VerifyReader(ctx, p, io.NewSectionReader(f, 0, 1<<62)); err != nil {
			if errors.Is(err, matcher.ErrChecksumMismatch) {
				return &TransferError{Code: "checksum_mismatch", Source: true, Msg: err.Error() + "; the file is not sent until its checksum file and content agree", Err: err}
			}
			if errors.Is(err, fs.ErrNotExist) {
				// The source went: not the destination's fault, and not worth retrying.
				return &TransferError{Code: ReasonChangedDuringUpload, Source: true, Msg: fmt.Sprintf("%s is gone", p), Err: err}
			}
			return &TransferError{Code: "transient", Msg: fmt.Sprintf("checking %s against its checksum file: %v; will retry", p, err), Transient: true, Source: true, Err: err}
		}
	}
	return nil
}
