package uploader

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// Striping against the real OpenSSH sshd: one file over several SFTP streams
// (further connections of the pool and further channels on them).

// stripedSize is not a multiple of OpenSSH's 255 KiB write nor of a MiB, so
// the last chunk of every stream is a short one somewhere.
const stripedSize = 40<<20 + 12345

// warmStreams uploads a first striped file so the pool's connections and
// channels are open: the next file's streams then join within a round trip,
// before it is half sent, and the test can demand that all of them carried it.
func warmStreams(t *testing.T, u *Uploader, dir string) {
	t.Helper()
	j, data := localFile(t, stripedSize, "warm/first.bin")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(dir, "warm", "first.bin"), data)
	if res.Streams < 2 {
		t.Fatalf("the first file went over %d stream(s); striping did not start", res.Streams)
	}
}

// TestSSHDStriped: with destination.streams = 6 a 40 MiB file goes over six
// streams (four connections, two of them with a second channel), each
// writing its chunks of the one partial at their offsets; the file arrives
// byte for byte, the server's sha256 proves it, and the local file was read
// once.
func TestSSHDStriped(t *testing.T) {
	s := sshdtest.Start(t)
	o := sshdOptions(s)
	o.Streams = 6
	o.Checksum = ChecksumSHA256
	u := newUploader(t, o)
	warmStreams(t, u, s.Dir)

	j, data := localFile(t, stripedSize, "striped/movie.mxf")
	u.readBytes.Store(0)
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "striped", "movie.mxf"), data)
	assertNoPartial(t, s.Dir)
	if res.Streams != 6 {
		t.Errorf("the file went over %d streams, want 6", res.Streams)
	}
	if res.SHA256 != sum(data) || res.Verified != VerifyHash {
		t.Errorf("Upload() = sha256 %s verified %q, want %s verified by the server's hash", res.SHA256, res.Verified, sum(data))
	}
	sumFile, err := os.ReadFile(filepath.Join(s.Dir, "striped", "movie.mxf.sha256"))
	must(t, err)
	if want := sum(data) + "  movie.mxf\n"; string(sumFile) != want {
		t.Errorf("checksum file = %q, want %q", sumFile, want)
	}
	if got := u.readBytes.Load(); got != stripedSize {
		t.Errorf("read %d local bytes for a %d byte file, want one pass", got, stripedSize)
	}
	u.mu.Lock()
	conns := 0
	for _, sl := range u.slots {
		if sl.conn != nil && sl.conn.alive() {
			conns++
		}
	}
	u.mu.Unlock()
	if conns != 4 {
		t.Errorf("%d SSH connections open, want 4 (six streams over four connections)", conns)
	}
}

// TestSSHDStripedStreamsLost: the connections of the further streams drop in
// the middle of the file (the lease's stays); what those streams had in
// flight goes over the one left, and the file is delivered in the same
// Upload, intact.
//
// The further streams join while the file is being sent and are not waited
// for, so on a loaded machine a file may go over the lease's stream alone
// before they do: then the cut tested nothing, and the scenario runs again
// (three times at most) with the streams warmed anew.
func TestSSHDStripedStreamsLost(t *testing.T) {
	s := sshdtest.Start(t)
	u, logs := loggedUploader(t, s, func(o *Options) { o.Streams = 4 })
	for try := range 3 {
		warmStreams(t, u, s.Dir)
		name := fmt.Sprintf("movie%d.mxf", try)
		j, data := localFile(t, stripedSize, "lost/"+name)
		cut := false
		j.Progress = func(done int64) {
			if !cut && done > stripedSize/3 {
				cut = true
				u.mu.Lock()
				victims := []*sftpConn{u.slots[1].conn, u.slots[2].conn, u.slots[3].conn} // one upload at a time leases slot 0
				u.mu.Unlock()
				for _, c := range victims {
					if c != nil {
						c.ssh.Close()
					}
				}
			}
		}
		res, err := u.Upload(t.Context(), j)
		must(t, err)
		assertFile(t, filepath.Join(s.Dir, "lost", name), data)
		assertNoPartial(t, s.Dir)
		if !cut || res.SHA256 != sum(data) {
			t.Errorf("cut=%v sha256 %s, want a cut and %s", cut, res.SHA256, sum(data))
		}
		if res.Streams < 2 {
			t.Logf("try %d: the file went over %d stream(s) before the others joined; again", try+1, res.Streams)
			continue
		}
		m := regexp.MustCompile(`msg=striped remote=\S*lost/\.` + regexp.QuoteMeta(name) + `\.partial .* sent_again=(\d+)`).FindStringSubmatch(logs.String())
		if m == nil || m[1] == "0" {
			t.Errorf("no chunk of the lost streams was sent again over the one left; log:\n%s", logs)
		}
		return
	}
	t.Fatal("in three tries the file never went over more than one stream: it was not striped")
}

// TestSSHDStripedResumeAfterCut: the link drops while a 384 MiB file is on
// four streams, all of them at once as a real cut does. The Upload fails as
// transient and keeps its partial; the next one resumes from the journal's
// offset, keeps every block past it that reached the server (striped writes
// leave holes there, and blocks beyond them), and re-sends less than 2 % of
// the file. Measured at the proxy, every byte the client sent in both tries.
func TestSSHDStripedResumeAfterCut(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 384 MiB")
	}
	s := sshdtest.Start(t)
	p := sshdtest.StartProxy(t, s.Addr)
	o := viaOptions(t, s, p.Addr)
	o.Streams = 4
	u := newUploader(t, o)
	warmStreams(t, u, s.Dir)
	resumeAfterCut(t, u, p, s.Dir, 384<<20)
}

// TestSSHDStripedResumeLongLink: the same at a round trip of 100 ms (the
// delay proxy), with destination.streams = "auto" as shipped: the file is
// striped because the link is long, and the cut loses what was on the way.
func TestSSHDStripedResumeLongLink(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 384 MiB through a 100 ms link")
	}
	s := sshdtest.Start(t)
	p := sshdtest.StartDelayProxy(t, s.Addr, 100*time.Millisecond)
	u := newUploader(t, viaOptions(t, s, p.Addr()))
	resumeAfterCut(t, u, p, s.Dir, 384<<20)
}

// cutter is a proxy that can drop every connection and counts what the
// client sent through it.
type cutter interface {
	CutAll()
	Up() int64
}

// resumeAfterCut sends a file of size through p, drops every connection
// when 40 % of it was read, resumes from the checkpoint and checks what
// arrives and how much went over the wire beyond the file's size.
func resumeAfterCut(t *testing.T, u *Uploader, p cutter, dir string, size int) {
	t.Helper()
	j, data := localFile(t, size, "cut/movie.mxf")
	var ck checkpoints
	j.Checkpoint = ck.save
	cutAt := int64(size * 2 / 5)
	cut := false
	j.Progress = func(done int64) {
		if !cut && done >= cutAt {
			cut = true
			p.CutAll()
		}
	}
	before := p.Up()
	_, err := u.Upload(t.Context(), j)
	wantCode(t, err, CodeTransient, true)
	last := ck.last()
	if last == nil || last.Offset <= 0 {
		t.Fatalf("no checkpoint after the cut: %+v", ck.list)
	}

	j.Progress = nil
	j.Resume = last
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(dir, "cut", "movie.mxf"), data)
	assertNoPartial(t, dir)
	if res.SHA256 != sum(data) || res.Resumed < last.Offset {
		t.Errorf("resumed Upload() = %+v, want sha256 %s and Resumed >= %d", res, sum(data), last.Offset)
	}
	if res.Streams < 2 {
		t.Errorf("the resumed file went over %d stream(s); it was not striped", res.Streams)
	}
	// Everything over the wire beyond the file itself: SSH and SFTP framing
	// (some 0.2 %), the logins, and what the cut made us send twice.
	extra := p.Up() - before - int64(size)
	t.Logf("checkpoint at %.1f MiB, resumed at %.1f MiB over %d streams; %.2f%% sent beyond the file's size",
		float64(last.Offset)/(1<<20), float64(res.Resumed)/(1<<20), res.Streams, 100*float64(extra)/float64(size))
	if extra > int64(size)/50 {
		t.Errorf("%d bytes (%.2f%%) sent beyond the file's size, want < 2%%", extra, 100*float64(extra)/float64(size))
	}
}

// TestSSHDStripedBandwidth: the bandwidth limit caps the file, not each
// stream: 48 MiB at 16 MiB/s over four streams takes 3 s on the limiter's
// clock, every byte of every stream reserved from the one limit.
func TestSSHDStripedBandwidth(t *testing.T) {
	s := sshdtest.Start(t)
	o := sshdOptions(s)
	o.Streams = 4
	u := newUploader(t, o)
	warmStreams(t, u, s.Dir)

	clk := clock.NewSkipping(time.Date(2026, 1, 1, 12, 0, 0, 0, time.Local))
	u.limit = newLimiter(clk, 16<<20, nil)
	const size = 48 << 20
	j, data := localFile(t, size, "bw/striped.bin")
	t0 := clk.Now()
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "bw", "striped.bin"), data)
	took := clk.Now().Sub(t0)
	if res.Streams != 4 {
		t.Errorf("the file went over %d streams, want 4", res.Streams)
	}
	if took < 2700*time.Millisecond || took > 3300*time.Millisecond {
		t.Errorf("48 MiB at 16 MiB/s over four streams took %v on the limiter's clock, want 3s ± 10%%", took)
	}
}

// TestRcloneStripingFallsBack: rclone serve sftp (no VFS cache) takes writes
// only in order. With four streams asked for, the file is still delivered,
// in order over one stream, and the log says why; the next file goes over
// one stream at once.
func TestRcloneStripingFallsBack(t *testing.T) {
	s := sshdtest.StartRclone(t)
	u, logs := loggedUploader(t, s, func(o *Options) { o.Streams = 4 })
	for i := range 2 {
		name := fmt.Sprintf("SR-902/big%d.mov", i)
		j, data := localFile(t, stripedSize, name)
		res, err := u.Upload(t.Context(), j)
		must(t, err)
		assertFile(t, filepath.Join(s.Dir, filepath.FromSlash(name)), data)
		if res.Streams != 1 {
			t.Errorf("file %d went over %d streams on a sequential-only server, want 1", i, res.Streams)
		}
	}
	if !u.sequential.Load() && !u.streams.off.Load() {
		t.Fatalf("striping is still on for a server that takes writes only in order; log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "in order") && !strings.Contains(logs.String(), "several SFTP streams") {
		t.Errorf("the log does not say why the file went over one stream:\n%s", logs)
	}
}

// TestStreamsWanted: how many streams a file starts with, and whether "auto" may add more.
func TestStreamsWanted(t *testing.T) {
	const big, small = 1 << 30, 1 << 20
	long, short := 100*time.Millisecond, time.Millisecond
	auto, four, one := stripeState{}, stripeState{}, stripeState{}
	auto.init(0)
	four.init(4)
	one.init(1)
	settled := stripeState{}
	settled.init(0)
	settled.level.Store(8)
	settled.settled.Store(true)
	off := stripeState{}
	off.init(0)
	off.off.Store(true)
	tests := []struct {
		name      string
		s         *stripeState
		remain    int64
		rtt       time.Duration
		sharing   int
		wantStart int
		wantGrow  bool
	}{
		{"auto, long link", &auto, big, long, 1, autoStartStreams, true},
		{"auto, short link", &auto, big, short, 1, 1, false},
		{"auto, small file", &auto, small, long, 1, 1, false},
		{"auto, two files share", &auto, big, long, 2, autoStartStreams / 2, false},
		{"auto, settled", &settled, big, long, 1, 8, false},
		{"fixed 4, short link too", &four, big, short, 1, 4, false},
		{"fixed 4, three files share", &four, big, short, 3, 2, false},
		{"fixed 1", &one, big, long, 1, 1, false},
		{"refused by the server", &off, big, long, 1, 1, false},
	}
	for _, tt := range tests {
		start, grow := tt.s.want(tt.remain, tt.rtt, tt.sharing)
		if start != tt.wantStart || grow != tt.wantGrow {
			t.Errorf("%s: want() = %d, %v; want %d, %v", tt.name, start, grow, tt.wantStart, tt.wantGrow)
		}
	}
}

// TestSSHDLiveHash: a large file is hashed on the server while it is written, so the
// hash after its close is not needed; with an account that runs no commands the upload
// neither waits for that hash nor fails, and is verified by size as before.
func TestSSHDLiveHash(t *testing.T) {
	const size = liveHashFrom + 12345
	s := sshdtest.Start(t)
	u, logs := loggedUploader(t, s, nil)
	j, data := localFile(t, size, "live/movie.mxf")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "live", "movie.mxf"), data)
	if res.Verified != VerifyHash || !strings.Contains(logs.String(), "verified by the hash the server took while the file was written") {
		t.Errorf("verified %q; want hash, by the live hash; log:\n%s", res.Verified, logs)
	}

	only := sshdtest.StartWith(t, sshdtest.Options{SFTPOnly: true})
	u2, logs2 := loggedUploader(t, only, nil)
	j2, data2 := localFile(t, size, "live/only.mxf")
	began := time.Now()
	res2, err := u2.Upload(t.Context(), j2)
	must(t, err)
	assertFile(t, filepath.Join(only.Dir, "live", "only.mxf"), data2)
	if res2.Verified != VerifySize {
		t.Errorf("SFTP-only account: verified %q, want size; log:\n%s", res2.Verified, logs2)
	}
	if took := time.Since(began); took > liveHashWait {
		t.Errorf("SFTP-only account: the upload took %v; it waited for a hash the server never runs", took)
	}
}

// TestSSHDStripeVerifiesEveryHostKey: every further connection of a striped file checks the
// host key as the first did. Once the address answers with another server (another key),
// the further connections go nowhere, the log says why, and the file is delivered over the
// one connection whose key was right; the other server gets nothing.
func TestSSHDStripeVerifiesEveryHostKey(t *testing.T) {
	s := sshdtest.Start(t)
	impostor := sshdtest.Start(t)
	p := sshdtest.StartProxy(t, s.Addr)
	o := viaOptions(t, s, p.Addr)
	o.Streams = 4
	var logs syncBuffer
	o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	u := newUploader(t, o)
	// The first connection, dialled while the address is the right server's.
	_, _, err := u.Stat(t.Context(), "nothing-here")
	must(t, err)
	p.Retarget(impostor.Addr)

	j, data := localFile(t, stripedSize, "hk/movie.mxf")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(s.Dir, "hk", "movie.mxf"), data)
	if res.Streams != 1 {
		t.Errorf("the file went over %d streams, want 1 (the others reached a server with another key)", res.Streams)
	}
	if !strings.Contains(logs.String(), "failed its host key check") {
		t.Errorf("the log does not say a further connection failed its host key check:\n%s", logs.String())
	}
	if got := files(t, impostor.Dir); len(got) != 0 {
		t.Errorf("the other server got %v", got)
	}
}
