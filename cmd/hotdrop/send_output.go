package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/uploader"
	"golang.org/x/term"
)

// attemptProgress counts one attempt's bytes into the send's progress bar and rate.
type attemptProgress struct {
	out     *sendOutput
	resumed bool // the attempt goes on from a checkpoint
	started bool
	counted int64 // bytes reported so far
	there   int64 // of them, those on the server before the attempt
}

func (p *attemptProgress) report(done int64) {
	if !p.started && p.resumed {
		// A resumed upload reports from its resume point: what was already on the
		// server counts toward the bar, not toward the rate (one chunk aside).
		p.there = done
		p.out.resumed(done)
	} else {
		p.out.sent(done - p.counted)
		p.out.wire.Add(done - p.counted)
	}
	p.started = true
	p.out.add(done - p.counted)
	p.counted = done
}

// settle corrects the counts once the attempt ended with res and err.
func (p *attemptProgress) settle(res uploader.Result, err error) {
	if err != nil {
		// The next attempt reports its own progress, from its resume point.
		p.out.add(-p.counted)
		p.out.sent(-(p.counted - p.there))
		p.out.resumed(-p.there)
	} else if res.Resumed != p.there {
		// The exact resume point, now known: the first report was one chunk past it.
		p.out.resumed(res.Resumed - p.there)
		p.out.sent(p.there - res.Resumed)
		p.out.wire.Add(p.there - res.Resumed)
	}
}

// before is what the attempt found on the server from an earlier run (resumed, not sent
// in this one): its first report's, or the exact resume point once it succeeded.
func (p *attemptProgress) before(res uploader.Result, err error) int64 {
	if !p.resumed {
		return 0
	}
	if err == nil {
		return res.Resumed
	}
	return p.there
}

// sendOutput writes per-file lines to stdout and, on a terminal, redraws a progress bar
// with rate and ETA on stderr below them.
type sendOutput struct {
	stdout, stderr io.Writer
	tty            bool
	total          int64
	files          int

	bytes     atomic.Int64 // read and sent, including finished files and resumed parts
	sentBytes atomic.Int64 // sent in this run: what rate and ETA are made of
	there     atomic.Int64 // resumed parts, already on the server before this run
	// For the summary, which counts what went whatever became of it: wire is every byte the
	// server acknowledged in this run, attempts that failed included (the bar's sentBytes
	// forgets those, as the next attempt reports from its resume point); prior is what
	// files' first attempts found on the server from an earlier run.
	wire, prior atomic.Int64
	doneFiles   atomic.Int64
	failed      atomic.Int64
	began       time.Time

	mu   sync.Mutex // serialises writes so lines and the bar do not interleave
	quit chan struct{}
	wg   sync.WaitGroup
}

func newSendOutput(stdout, stderr io.Writer, items []sendItem) *sendOutput {
	o := &sendOutput{stdout: stdout, stderr: stderr, files: len(items), quit: make(chan struct{})}
	for _, it := range items {
		o.total += it.size
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		o.tty = true
	}
	return o
}

// Write lets the uploader's warnings pass through without breaking the bar.
func (o *sendOutput) Write(p []byte) (int, error) {
	o.line("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (o *sendOutput) add(n int64)     { o.bytes.Add(n) }
func (o *sendOutput) sent(n int64)    { o.sentBytes.Add(n) }
func (o *sendOutput) resumed(n int64) { o.there.Add(n) }

// done counts a delivered file; skip counts a file given up (its bytes leave the total, the
// file stays counted: "1 of 2 files delivered, 1 failed").
func (o *sendOutput) done(int64) { o.doneFiles.Add(1) }
func (o *sendOutput) skip(size int64) {
	o.mu.Lock()
	o.total -= size
	o.mu.Unlock()
	o.failed.Add(1)
}

func (o *sendOutput) line(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tty {
		fmt.Fprint(o.stderr, "\r\033[K")
	}
	fmt.Fprintf(o.stdout, format+"\n", args...)
	if o.tty {
		o.drawLocked()
	}
}

func (o *sendOutput) start() {
	o.began = time.Now()
	if !o.tty {
		return
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-o.quit:
				return
			case <-tick.C:
				o.mu.Lock()
				o.drawLocked()
				o.mu.Unlock()
			}
		}
	}()
}

// stop ends the bar and prints the summary.
func (o *sendOutput) stop() {
	close(o.quit)
	o.wg.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tty {
		o.drawLocked()
		fmt.Fprintln(o.stderr)
	}
	fmt.Fprintln(o.stdout, o.summary(time.Since(o.began)))
}

// summary is the last line: files delivered (and failed), bytes sent in this run at what
// rate, and what a resume found already on the server.
func (o *sendOutput) summary(el time.Duration) string {
	done, n := o.doneFiles.Load(), o.wire.Load()
	secs := max(el.Seconds(), 1e-3)
	s := fmt.Sprintf("%d of %d files delivered", done, o.files)
	if f := o.failed.Load(); f > 0 {
		s += fmt.Sprintf(", %d failed", f)
	}
	s += fmt.Sprintf("; %s sent in %s (%s/s", humanBytes(n), el.Round(time.Millisecond), humanBytes(int64(float64(n)/secs)))
	switch rate := float64(done) / secs; {
	case done == 0:
	case rate >= 10:
		s += fmt.Sprintf(", %.0f files/s", rate)
	case rate >= 1:
		s += fmt.Sprintf(", %.1f files/s", rate)
	default:
		s += fmt.Sprintf(", %s per file", (el / time.Duration(done)).Round(100*time.Millisecond))
	}
	s += ")"
	if t := o.prior.Load(); t > 0 {
		s += fmt.Sprintf("; %s resumed, already on the server", humanBytes(t))
	}
	return s
}

func (o *sendOutput) drawLocked() {
	n, total := o.bytes.Load(), o.total
	el := time.Since(o.began).Seconds()
	frac := 1.0
	if total > 0 {
		frac = min(float64(n)/float64(total), 1)
	}
	const width = 30
	bar := strings.Repeat("#", int(frac*width)) + strings.Repeat(".", width-int(frac*width))
	rate := float64(o.sentBytes.Load()) / max(el, 1e-3)
	eta := "--:--"
	if rate > 0 && n > 0 {
		left := time.Duration(float64(total-n) / rate * float64(time.Second))
		eta = fmt.Sprintf("%d:%02d", int(left.Minutes()), int(left.Seconds())%60)
	}
	fmt.Fprintf(o.stderr, "\r\033[K[%s] %3.0f%% %s/%s %s/s ETA %s  %d/%d files", bar, frac*100,
		humanBytes(n), humanBytes(total), humanBytes(int64(rate)), eta, o.doneFiles.Load(), o.files)
}

// humanBytes prints sizes in binary units, as the config's bandwidth takes them.
func humanBytes(n int64) string { return delivery.HumanBytes(n) }
