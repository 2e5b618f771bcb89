package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
)

// Striping: one file written over several SFTP streams at once. On a long
// link one stream moves at most the server's SSH channel window per round
// trip (OpenSSH's sshd grants about 2 MiB: some 20 MB/s at 100 ms), whatever
// the bandwidth. Every further stream is another SFTP session with a window
// of its own: a channel on one of the pool's SSH connections, and the pool
// has several connections, so neither one TCP connection's window nor one
// sftp-server process bounds the file. Each stream holds its own handle on
// the same partial and writes the chunks it is handed at their offsets; the
// file is still read once, in order, by one reader that hashes it (pump).
//
// Streams are opened one by one, and what fails is left out: a server that
// caps sessions per connection (MaxSessions) or connections per user, or
// drops logins under load (MaxStartups), leaves the file on the streams it
// has. A server that refuses a second handle on one file, or writes out of
// order, turns striping off for the destination, which is said once.

const (
	// AutoStreamsMax is the most streams destination.streams = "auto" uses.
	AutoStreamsMax = 16
	// autoStartStreams is where "auto" starts on a long link: at 100 ms and
	// sshd's window, eight streams carry some 160 MB/s; at 10 ms they cost
	// only a few more sessions.
	autoStartStreams = 8
	// stripeMinRTT: on a shorter round trip one stream's window carries more
	// than the CPUs can encrypt (2 MiB per 5 ms is 400 MB/s), so "auto"
	// stays on one stream and nothing on a LAN or loopback changes.
	stripeMinRTT = 5 * time.Millisecond
	// stripeMinBytes: a smaller file goes over one stream; opening handles
	// elsewhere would cost more than its few round trips gain.
	stripeMinBytes = 16 << 20
	// streamInflight write requests per further stream: about 4 MiB, twice
	// sshd's window, so the window never waits for the next request.
	streamInflight = 16
	// growBy: "auto" doubles the streams while that raises the throughput by
	// at least this factor.
	growBy = 1.2
)

// stripeConns is how many of the pool's SSH connections striping spreads
// streams over: four at most for "auto" (each further stream then a channel
// on one of them, at most channelsPerConn each), more for a larger fixed
// number.
func stripeConns(streams int) int {
	return min(max(min(streams, 4), (streams+channelsPerConn-1)/channelsPerConn), 8)
}

// smallInFlightMax bounds FilesInFlight on a long link.
const smallInFlightMax = 64

// FilesInFlight is how many uploads the caller may have going at once, for
// a destination.concurrency of concurrency: that many large files (of
// SmallFileMax bytes or more) at most, and on a long link more small ones.
// A small file spends its time waiting on round trips (open, write, close
// and hash, rename, checksum file's rename: five of them), not moving
// bytes, so on a link of 100 ms eight at a time leave it idle; four times
// concurrency of them (at most 64) keep it busy, sharing the pool's
// streams. The answer follows what the uploader learnt: concurrency until
// the first connection showed a long round trip, and always with
// destination.streams = 1, which asks for one stream, or a file:// folder.
func (u *Uploader) FilesInFlight(concurrency int) int {
	concurrency = max(concurrency, 1)
	if u.local || u.streams.max <= 1 || time.Duration(u.rtt.Load()) < stripeMinRTT {
		return concurrency
	}
	return max(concurrency, min(4*concurrency, smallInFlightMax))
}

// SmallFileMax: files below it may go beyond destination.concurrency on a
// long link (FilesInFlight); from it on a file may be striped.
const SmallFileMax = stripeMinBytes

// stripeState is destination.streams for one Uploader, with what "auto"
// learnt about the link: every upload reads it, so the second large file
// starts with the streams the first found useful.
type stripeState struct {
	fixed int // destination.streams as a number; 0 = auto
	max   int // the most streams one file uses

	level   atomic.Int32 // auto: the streams the last file ended with
	settled atomic.Bool  // auto: doubling stopped helping; no more probing
	off     atomic.Bool  // the server refused striping; one stream from now on
}

func (s *stripeState) init(streams int) {
	s.fixed, s.max = streams, streams
	if streams == 0 {
		s.max = AutoStreamsMax
	}
	s.level.Store(1)
}

// want is how many streams a file of remain bytes starts with over a
// connection of round trip rtt, when sharing striped files (itself
// included) are being sent, and whether "auto" may add more.
func (s *stripeState) want(remain int64, rtt time.Duration, sharing int) (start int, grow bool) {
	switch {
	case s.off.Load() || s.max <= 1 || remain < stripeMinBytes:
		return 1, false
	case s.fixed > 0:
		start = s.fixed
	case rtt < stripeMinRTT:
		return 1, false
	default:
		start = max(int(s.level.Load()), min(autoStartStreams, s.max))
		grow = !s.settled.Load() && start < s.max && sharing == 1
	}
	return max(2, (start+sharing-1)/sharing), grow
}

// stripe is one file's further streams: the handles it opened on the
// partial through other SFTP sessions, and, for "auto", the goroutine that
// measures the throughput and opens more while it grows.
type stripe struct {
	u       *Uploader
	partial string
	order   []*slot // the pool's slots in the order streams use them; [0] holds the lease
	rtt     time.Duration
	start   int
	grow    bool

	join   chan io.WriterAt // to the pump
	sent   atomic.Int64     // bytes acknowledged so far, in any order: the meter
	quit   chan struct{}
	cancel context.CancelFunc // ends run's dials
	wg     sync.WaitGroup

	mu    sync.Mutex
	files []*streamFile // every handle opened, joined or not
	level int           // streams asked for, the lease's own included
	dead  bool          // no further stream is to be tried
}

// newStripe returns the striping for one file written to partial over the
// lease's connection, or nil when it goes over that one stream alone.
func (u *Uploader) newStripe(t target, partial string, remain int64) *stripe {
	lc, ok := t.(leasedConn)
	if !ok || u.sequential.Load() {
		return nil
	}
	// Large files striped at the same time share the streams' windows: each
	// starts with its share, and only one alone measures for more.
	sharing := int(u.striping.Add(1))
	start, grow := u.streams.want(remain, lc.rtt, sharing)
	u.mu.Lock()
	var lease *slot
	for _, s := range u.slots {
		if s.conn == lc.sftpConn {
			lease = s
			break
		}
	}
	var order []*slot
	if lease != nil {
		order = append(order, lease)
		for _, s := range u.slots[:stripeConns(u.streams.max)] {
			if s != lease {
				order = append(order, s)
			}
		}
	}
	u.mu.Unlock()
	if (start <= 1 && !grow) || lease == nil { // lease == nil: its connection left the pool meanwhile
		u.striping.Add(-1)
		return nil
	}
	return &stripe{u: u, partial: partial, order: order, rtt: lc.rtt, start: start, grow: grow,
		join: make(chan io.WriterAt), quit: make(chan struct{}), level: 1}
}

// run opens the streams the file starts with, then (auto) measures and
// doubles while that helps. It returns when there is nothing more to do or
// stop is called.
func (s *stripe) run(ctx context.Context) {
	// A stream still dialling when the file is sent is not waited for.
	ctx, s.cancel = context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.open(ctx, s.start)
		if !s.grow {
			return
		}
		s.measureAndGrow(ctx)
	}()
}

// measureAndGrow doubles the streams while the throughput grows by growBy.
func (s *stripe) measureAndGrow(ctx context.Context) {
	u := s.u
	// Long enough for the new windows to fill and several of them to be
	// acknowledged; short enough that a 1 GiB file still profits.
	warm := max(2*s.rtt, 100*time.Millisecond)
	period := max(5*s.rtt, 500*time.Millisecond)
	prev, prevLevel := 0.0, 0
	for {
		if !s.sleep(ctx, warm) {
			return
		}
		from, began := s.sent.Load(), time.Now()
		if !s.sleep(ctx, period) {
			return
		}
		rate := float64(s.sent.Load()-from) / time.Since(began).Seconds()
		s.mu.Lock()
		level, dead := s.level, s.dead
		s.mu.Unlock()
		u.log.Debug("striping: measured", "streams", level, "rate_mb_s", fmt.Sprintf("%.1f", rate/1e6))
		if limit := u.limit.current(); limit > 0 && rate >= 0.8*float64(limit) {
			return // the bandwidth limit, not the window, bounds it
		}
		if prev > 0 && rate < prev*growBy {
			// The next file starts with the streams that were enough.
			u.streams.level.Store(int32(prevLevel))
			u.streams.settled.Store(true)
			u.log.Info("striping: more streams stopped raising the throughput", "streams", level,
				"rate_mb_s", fmt.Sprintf("%.1f", rate/1e6), "before_mb_s", fmt.Sprintf("%.1f", prev/1e6))
			return
		}
		if dead || level >= u.streams.max {
			return
		}
		prev, prevLevel = rate, level
		u.streams.level.Store(int32(min(2*level, u.streams.max)))
		s.open(ctx, min(2*level, u.streams.max))
	}
}

// sleep waits d; false when the stripe is stopped or ctx ends first.
func (s *stripe) sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-s.quit:
		return false
	case <-ctx.Done():
		return false
	}
}

// open brings the file's streams up to n: each opened on its own goroutine
// (a new connection takes several round trips), each handed to the pump
// the moment it is ready.
func (s *stripe) open(ctx context.Context, n int) {
	s.mu.Lock()
	from := s.level
	if s.dead || n <= from {
		s.mu.Unlock()
		return
	}
	s.level = n
	s.mu.Unlock()
	var wg sync.WaitGroup
	for i := from; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.openStream(ctx, i)
			if err != nil {
				s.failed(i, err)
				return
			}
			select {
			case s.join <- f:
			case <-s.quit:
			case <-ctx.Done():
			}
		}()
	}
	wg.Wait()
}

// openStream opens stream i: channel i/len(order) of the connection of
// slot i%len(order), dialling that connection when the pool has none.
func (s *stripe) openStream(ctx context.Context, i int) (*streamFile, error) {
	slot := s.order[i%len(s.order)]
	c, err := s.u.slotConn(ctx, slot)
	if err != nil {
		return nil, err
	}
	sc, err := c.channel(i / len(s.order))
	if err != nil {
		return nil, err
	}
	// Write-only, without O_APPEND or truncation: the lease created it.
	f, err := sc.OpenFile(s.partial, os.O_WRONLY)
	if err != nil {
		return nil, &openRefused{err}
	}
	sf := &streamFile{f: f, conn: c}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, sf)
	return sf, nil
}

// streamFile is one further stream's handle on the partial. A write that
// fails because the connection is gone closes it (so the pool dials again)
// and says errStreamLost: the pump sends the chunk over the other streams.
type streamFile struct {
	f       *sftp.File
	conn    *sftpConn
	written atomic.Int64
}

func (f *streamFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(b, off)
	if err != nil && connectionLost(err) {
		f.conn.close()
		return n, fmt.Errorf("%w: %w", errStreamLost, err)
	}
	f.written.Add(int64(n))
	return n, err
}

// openRefused is the server's answer to the open of a further handle.
type openRefused struct{ err error }

func (e *openRefused) Error() string { return e.err.Error() }
func (e *openRefused) Unwrap() error { return e.err }

// failed notes a stream that could not be opened. The file goes on with the
// streams it has; a server that refused the handle itself (not a session or
// a connection, which may be a limit of the moment) is not asked again.
func (s *stripe) failed(i int, err error) {
	var refused *openRefused
	if errors.As(err, &refused) && !Classify(err).Transient {
		s.u.stripeOff(fmt.Sprintf("it refused a second handle on %s (%s)", s.partial, Classify(refused.err).Reason()))
	}
	s.mu.Lock()
	first := !s.dead
	s.dead = true
	s.mu.Unlock()
	switch code := Classify(err).Code; {
	case code == CodeHostKeyChanged || code == CodeHostKeyUnknown:
		// Another connection reached a server whose key is not the pinned
		// one: nothing went to it, and a person should know.
		s.u.log.Warn("striping: a further connection to the destination failed its host key check; the file goes on over the streams open",
			"remote", s.partial, "stream", i+1, "err", err)
	case first:
		s.u.log.Info("striping: could not open another stream; going on with those open",
			"remote", s.partial, "stream", i+1, "err", err)
	}
}

// stripeOff turns striping off for the destination, and says so once.
func (u *Uploader) stripeOff(why string) {
	if !u.streams.off.Swap(true) {
		u.log.Warn("the destination does not take one file over several SFTP streams: hotdrop sends each file over one from now on",
			"addr", u.addr, "why", why)
	}
}

// stop ends the opening and measuring, waiting for them.
func (s *stripe) stop() {
	close(s.quit)
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.u.striping.Add(-1)
}

// close closes every handle the stripe opened, all at once, and returns
// the first error: a server may report a failed write only at the close.
func (s *stripe) close() error {
	s.mu.Lock()
	files := s.files
	s.mu.Unlock()
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.f.Close(); err != nil && f.conn.alive() {
				// A stream whose connection was lost was left by the pump;
				// what it carried went over the others.
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// used is how many streams carried the file's bytes, the lease's included.
func (s *stripe) used() (n int, bytes []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		if w := f.written.Load(); w > 0 {
			bytes = append(bytes, w)
		}
	}
	return 1 + len(bytes), bytes
}

// stripedFile is the lease's handle on the partial with the stripe's: the
// close closes all of them together, one round trip.
type stripedFile struct {
	remoteFile
	s *stripe
}

func (f stripedFile) Close() error {
	var serr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		serr = f.s.close()
	}()
	err := f.remoteFile.Close()
	<-done
	if err == nil {
		err = serr
	}
	return err
}
