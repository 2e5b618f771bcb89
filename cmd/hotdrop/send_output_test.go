package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/uploader"
)

// TestSendSummaryCountsWhatWent: interrupted after a MiB of a file, send said "0 B sent"
// (the bar forgets a failed attempt's bytes, as the next one reports from its resume point),
// while the MiB was on the server. The summary counts every byte acknowledged in this run,
// and as resumed only what a file's first attempt found there from an earlier run.
func TestSendSummaryCountsWhatWent(t *testing.T) {
	const mib = 1 << 20
	cut := &uploader.Error{Code: uploader.CodeTransient, Transient: true, Msg: "connection lost"}

	o := newSendOutput(io.Discard, io.Discard, []sendItem{{size: 2 * mib}})
	p := &attemptProgress{out: o}
	p.report(mib)
	p.settle(uploader.Result{}, cut)
	o.prior.Add(p.before(uploader.Result{}, cut))
	if s := o.summary(time.Second); !strings.Contains(s, "0 of 1 files delivered; 1.0 MiB sent") {
		t.Errorf("after a cut at 1 MiB: %q, want 1.0 MiB sent", s)
	}
	// The next attempt goes on from there; its first report is a chunk past the resume point.
	p = &attemptProgress{out: o, resumed: true}
	p.report(mib + 64<<10)
	p.report(2 * mib)
	p.settle(uploader.Result{Resumed: mib}, nil)
	o.done(2 * mib)
	if s := o.summary(time.Second); !strings.Contains(s, "1 of 1 files delivered; 2.0 MiB sent") || strings.Contains(s, "resumed") {
		t.Errorf("after the resume: %q, want 2.0 MiB sent and nothing resumed from an earlier run", s)
	}

	// A file resumed from an earlier run's partial: what was there is not sent again.
	o = newSendOutput(io.Discard, io.Discard, []sendItem{{size: 2 * mib}})
	p = &attemptProgress{out: o, resumed: true}
	p.report(mib + 64<<10)
	p.report(2 * mib)
	res := uploader.Result{Resumed: mib}
	p.settle(res, nil)
	o.prior.Add(p.before(res, nil))
	o.done(2 * mib)
	if s := o.summary(time.Second); !strings.Contains(s, "1.0 MiB sent") || !strings.Contains(s, "1.0 MiB resumed, already on the server") {
		t.Errorf("resumed from an earlier run: %q, want 1.0 MiB sent and 1.0 MiB resumed", s)
	}
}
