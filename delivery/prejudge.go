package delivery

import (
	"context"
	"path/filepath"
	"runtime"

	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

// Judging a batch's ready files side by side. The frames of a render settle together, and
// judging them one after the other on the loop (each a dozen probes for sidecars, checksum
// files and folder metadata, then the rules) was the whole time before the first upload of a
// 20,000-frame request: 1.2 s with one core busy and the other mostly idle (issue 11), while
// nothing of a request may go before all of it is judged (SPEC.md, Completeness). So a batch
// first has the matcher judge its ready files as one look (EvaluateAll: on as many goroutines
// as there are CPUs, each folder sidecar read once for all of them), and handling each event takes its verdict if it was made for the same input by the same
// matcher, and judges itself otherwise (the event before it moved a drop folder, a reload
// replaced the matcher). A verdict made a moment before the loop would have made it is as
// good as the loop's: a sidecar that changes after either is an event of its own, which
// judges the file again.

// prejudgeFrom is the fewest ready files in a batch worth judging side by side; fewer are
// judged on the loop as they come.
const prejudgeFrom = 8

// maxPrejudgers bounds the goroutines judging at once, the loop's own included.
const maxPrejudgers = 4

// prejudged is a verdict made ahead of its event (prejudge).
type prejudged struct {
	in matcher.Input
	m  Matcher
	v  matcher.Verdict
}

// judgeInput is what judge asks the matcher about the file at p: in its request's drop
// folder (r), or in the File Bin (r nil), whose files the naming rules match.
func (e *Engine) judgeInput(p string, r *reqState) matcher.Input {
	in := matcher.Input{Path: p}
	if r != nil {
		in.Root, in.Request = r.Folder, r.ID
	} else {
		in.Root = filepath.Join(e.opt.Root, filepath.FromSlash(e.opt.Bin))
	}
	return in
}

// evaluate is the matcher's verdict on in: the one prejudge made for it, or a new one.
func (e *Engine) evaluate(in matcher.Input) matcher.Verdict {
	if p, ok := e.prejudged[in.Path]; ok {
		delete(e.prejudged, in.Path)
		if p.in == in && p.m == e.opt.Matcher {
			return p.v
		}
	}
	return e.opt.Matcher.Evaluate(in)
}

// prejudge has the matcher judge the files that evs make ready, side by side, for evaluate
// to find when the events are handled; the batch forgets what it did not use (handleAll).
func (e *Engine) prejudge(evs []watcher.Event) {
	m := e.opt.Matcher
	if m == nil {
		return
	}
	var ins []matcher.Input
	for _, ev := range evs {
		if ev.Kind != watcher.Ready {
			continue
		}
		r, _, bin := e.locate(ev.Rel)
		if r == nil && !bin {
			continue
		}
		if fs := e.files[ev.Path]; fs != nil && (fs.rec.State == Uploading || fs.rec.State == Delivered && sameIdentity(fs.rec, ev.Info)) {
			continue // judgeEvent leaves these alone
		}
		ins = append(ins, e.judgeInput(ev.Path, r))
	}
	if len(ins) < prejudgeFrom {
		return
	}
	out := m.EvaluateAll(ins, max(1, min(runtime.GOMAXPROCS(0), maxPrejudgers, len(ins)/prejudgeFrom)))
	if e.prejudged == nil {
		e.prejudged = make(map[string]prejudged, len(ins))
	}
	for i, in := range ins {
		e.prejudged[in.Path] = prejudged{in: in, m: m, v: out[i]}
	}
}

// handleAll handles evs in order, their ready files judged side by side first.
func (e *Engine) handleAll(ctx context.Context, evs []watcher.Event) {
	e.prejudge(evs)
	for _, ev := range evs {
		e.handle(ctx, ev)
	}
	clear(e.prejudged) // never kept past its batch: the next one reads the disk again
}
