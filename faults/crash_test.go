//go:build faults

package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// finish waits for every request to be delivered, stops the daemon with SIGTERM and checks
// the server and the journal: each file there once, identical, with its checksum file, no
// temp file left, one file.delivered event per file. It adds those figures to the line.
func (s *scenario) finish(p *proc, reqs []request, srcs []source) {
	s.t.Helper()
	allDelivered := true
	for _, r := range reqs {
		st, ok := s.waitState(r, cfg.deliverWithin, "delivered", "failed")
		if !ok || st.Request.State != "delivered" {
			allDelivered = false
			s.t.Errorf("request %s is %s (reason %q) after %s, want delivered", r.id, stateOf(st), reasonOf(st), cfg.deliverWithin)
		}
	}
	s.figure("delivered_state", yesNo(allDelivered))
	if code := p.stop(); code != 0 {
		s.t.Errorf("the daemon exited %d on SIGTERM, want 0", code)
	}
	rc := s.checkRemote(srcs)
	s.figure("delivered", fmt.Sprintf("%d/%d", rc.delivered, len(srcs)))
	s.figure("identical", yesNo(rc.identical == len(srcs)))
	s.figure("partials_left", len(rc.leftovers))
	s.figure("checksum_files", rc.checksums)
	s.goal(rc.delivered == len(srcs) && rc.identical == len(srcs), "%d of %d files delivered, %d identical", rc.delivered, len(srcs), rc.identical)
	s.goal(len(rc.leftovers) == 0, "temp or partial files left on the server: %v", rc.leftovers)
	s.goal(len(rc.extra) == 0, "files on the server that are not deliveries: %v", rc.extra)
	s.goal(rc.checksums == len(srcs), "%d of %d checksum files present and right", rc.checksums, len(srcs))
	j, err := s.readJournal()
	if err != nil {
		s.t.Errorf("reading the journal: %v", err)
		return
	}
	once, bad := j.onceEach(srcs)
	s.figure("once", yesNo(once == len(srcs)))
	s.figure("delivered_events", j.total())
	s.goal(once == len(srcs), "files without exactly one file.delivered event (name:count): %v", bad)
	var notDelivered []string
	for _, src := range srcs {
		if st := j.fileStates[src.name]; st != "delivered" {
			notDelivered = append(notDelivered, src.name+":"+st)
		}
	}
	s.goal(len(notDelivered) == 0, "the journal does not record these files as delivered: %v", notDelivered)
}

// dataPartials counts the files with an upload partial on the server now (not checksum files'
// or manifests' temp files).
func (s *scenario) dataPartials() int {
	entries, _ := os.ReadDir(s.remoteDir())
	n := 0
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".partial") &&
			!strings.HasSuffix(name, ".sha256.partial") && !strings.HasSuffix(name, ".hotdrop.json.partial") {
			n++
		}
	}
	return n
}

// TestKill9 kills the daemon with SIGKILL at random moments while a 30-50 file request
// uploads, restarting it each time, and checks that every file arrives once and identical
// and how many bytes crossed the wire for the bytes delivered.
func TestKill9(t *testing.T) {
	r := request{"SR-1", "fr-FR", cfg.kill9Files}
	s := newScenario(t, "kill9", setup{bandwidth: cfg.kill9Bandwidth, requests: []request{r}})
	s.figure("files", cfg.kill9Files)
	p := s.start()
	dir := s.waitFolder(r)
	var srcs []source
	for i := 0; i < cfg.kill9Files; i++ {
		size := int64(cfg.kill9MinKiB+s.rng.IntN(cfg.kill9MaxKiB-cfg.kill9MinKiB+1))<<10 + int64(s.rng.IntN(1000))
		srcs = append(srcs, s.drop(dir, fmt.Sprintf("kill9_%02d.ttml", i), size))
	}
	s.figure("bytes", mib(totalSize(srcs)))

	kills, maxPartials := 0, 0
	for kills < cfg.kill9Kills {
		// A kill lands while bytes flow: after this daemon's uploads have started, at a
		// random moment within the next 2.5 s.
		base := s.proxy.Up()
		flowing := poll(60*time.Second, 5*time.Millisecond, func() bool {
			return s.proxy.Up() > base+64<<10 || s.status(r).Request != nil && s.status(r).Request.State == "delivered"
		})
		if !flowing || stateOf(s.status(r)) == "delivered" {
			break
		}
		time.Sleep(time.Duration(s.rng.Int64N(int64(2500 * time.Millisecond))))
		if stateOf(s.status(r)) == "delivered" {
			break
		}
		maxPartials = max(maxPartials, s.dataPartials())
		if !p.signal(syscall.SIGKILL, 10*time.Second) {
			t.Fatalf("the daemon did not die of SIGKILL within 10 s")
		}
		kills++
		p = s.start()
	}
	s.figure("kills", kills)
	s.figure("max_partials_at_kill", maxPartials)
	s.goal(kills == cfg.kill9Kills, "only %d of %d kills landed before the request was delivered (slow the upload: -kill9-bandwidth)", kills, cfg.kill9Kills)
	// The files here are small (under 16 MiB): the daemon keeps twice destination.concurrency
	// of them in flight, so that many partials may exist at a kill; a restart that started new
	// files before resuming those would leave more.
	inFlight := 2 * concurrency
	s.goal(maxPartials <= inFlight, "%d files had a partial on the server at once, more than the daemon keeps in flight (%d): a restart starts new files before it resumes the ones it had begun", maxPartials, inFlight)
	s.finish(p, []request{r}, srcs)
	ratio := float64(s.proxy.Up()) / float64(totalSize(srcs))
	s.figure("wire/delivered", fmt.Sprintf("%.3f", ratio))
	s.goal(ratio <= cfg.kill9Ratio, "bytes on the wire / bytes delivered = %.3f, goal <= %.2f", ratio, cfg.kill9Ratio)
}

// TestSIGTERM stops the daemon with SIGTERM in the middle of an upload: it must exit 0
// within its grace period, and the next start must resume, not start over.
func TestSIGTERM(t *testing.T) {
	r := request{"SR-1", "fr-FR", 1}
	s := newScenario(t, "sigterm", setup{bandwidth: "8MiB", requests: []request{r}})
	p := s.start()
	size := int64(cfg.sigtermMiB) << 20
	src := s.drop(s.waitFolder(r), "sigterm.ttml", size)
	partial := filepath.Join(s.remoteDir(), ".sigterm.ttml.partial")
	if !poll(2*time.Minute, 10*time.Millisecond, func() bool { fi, err := os.Stat(partial); return err == nil && fi.Size() > size*2/5 }) {
		t.Fatalf("the upload did not pass 40%% within 2 min")
	}
	fi, _ := os.Stat(partial)
	s.figure("term_at", mib(fi.Size()))
	sent := time.Now()
	exited := p.signal(syscall.SIGTERM, 30*time.Second)
	took := time.Since(sent)
	s.figure("exit", map[bool]string{true: strconv.Itoa(p.code), false: "none"}[exited])
	s.figure("stop_took", secs(took))
	s.goal(exited && p.code == 0, "exit after SIGTERM: exited=%v code=%d, want 0", exited, p.code)
	p = s.start()
	s.finish(p, []request{r}, []source{src})
	ratio := float64(s.proxy.Up()) / float64(size)
	s.figure("resume_ratio", fmt.Sprintf("%.3f", ratio))
	s.goal(ratio <= cfg.sigtermRatio, "bytes on the wire / bytes delivered = %.3f, goal <= %.2f", ratio, cfg.sigtermRatio)
}

// TestTwoDaemons starts a second daemon on the state_dir of one that is uploading, as a
// sysadmin does "to watch the logs". The second must be refused at once, naming the holder.
func TestTwoDaemons(t *testing.T) {
	r := request{"SR-1", "fr-FR", 1}
	s := newScenario(t, "twodaemons", setup{bandwidth: "2MiB", requests: []request{r}})
	first := s.start()
	size := int64(cfg.twoDaemonsMiB) << 20
	src := s.drop(s.waitFolder(r), "two.ttml", size)
	partial := filepath.Join(s.remoteDir(), ".two.ttml.partial")
	if !poll(time.Minute, 10*time.Millisecond, func() bool { fi, err := os.Stat(partial); return err == nil && fi.Size() > 1<<20 }) {
		t.Fatalf("the first daemon's upload did not start within 1 min")
	}
	second := s.start()
	refused := second.wait(cfg.lockWithin)
	out := second.output()
	switch {
	case refused:
		s.figure("second", fmt.Sprintf("exited(%d)_after=%s", second.code, secs(time.Since(second.started))))
	default:
		// The second is running beside the first: stop it as `timeout` would, and see what
		// it did to the first one's delivery.
		second.stop()
		s.figure("second", fmt.Sprintf("running_after=%s(stopped_with_SIGTERM)", cfg.lockWithin))
	}
	refused = refused && second.code != 0
	namesHolder := strings.Contains(out, strconv.Itoa(first.cmd.Process.Pid))
	s.figure("second_refused", yesNo(refused))
	s.figure("names_holder_pid", yesNo(namesHolder))
	s.goal(refused, "a second daemon on the same state_dir was not refused within %s", cfg.lockWithin)
	s.goal(!refused || namesHolder, "the refusal does not name the holder's pid %d: %q", first.cmd.Process.Pid, out)

	// `hotdrop send` journals in the same state_dir: it must be refused too.
	extra := filepath.Join(s.dir, "send.ttml")
	must(t, os.WriteFile(extra, []byte("one-off\n"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), cfg.lockWithin)
	sendOut, sendErr := exec.CommandContext(ctx, bin, "send", extra, "--to", "oneoff", "--config", s.cfgFile).CombinedOutput()
	timedOut := ctx.Err() != nil
	cancel()
	sendRefused := sendErr != nil && !timedOut && strings.Contains(string(sendOut), strconv.Itoa(first.cmd.Process.Pid))
	s.figure("send_refused", yesNo(sendRefused))
	s.goal(sendRefused, "`hotdrop send` on the busy state_dir was not refused naming pid %d (err %v, timed out %v): %s",
		first.cmd.Process.Pid, sendErr, timedOut, strings.TrimSpace(string(sendOut)))
	_ = os.RemoveAll(filepath.Join(s.remote, "oneoff")) // not part of the request's delivery

	// `hotdrop status` only reads: it must still answer beside the running daemon.
	statusOut, statusErr := exec.Command(bin, "status", "--json", "--config", s.cfgFile).CombinedOutput()
	s.figure("status_reads", yesNo(statusErr == nil))
	s.goal(statusErr == nil, "`hotdrop status` beside the running daemon: %v: %s", statusErr, statusOut)
	s.finish(first, []request{r}, []source{src})
}

// TestStateDirRemoved removes state_dir under a running daemon. It must notice: an error in
// its log, no new work, and an exit with a non-zero status so the service manager restarts it.
func TestStateDirRemoved(t *testing.T) {
	r1, r2 := request{"SR-1", "fr-FR", 1}, request{"SR-2", "de-DE", 1}
	s := newScenario(t, "statedir-removed", setup{requests: []request{r1, r2}})
	p := s.start()
	s.drop(s.waitFolder(r1), "before.ttml", 256<<10)
	if st, ok := s.waitState(r1, cfg.deliverWithin, "delivered"); !ok {
		t.Fatalf("the first file was not delivered: %s", stateOf(st))
	}
	must(t, os.RemoveAll(s.state))
	removed := time.Now()
	s.drop(s.waitFolder(r2), "after.ttml", 256<<10)
	noticed := p.wait(cfg.noticeWithin)
	if noticed {
		s.figure("exit", p.code)
		s.figure("noticed_after", secs(time.Since(removed)))
	} else {
		s.figure("exit", "none")
		s.figure("noticed_after", fmt.Sprintf(">%s", cfg.noticeWithin))
	}
	out := p.output()
	errLogged := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "level=ERROR") && (strings.Contains(line, "state") || strings.Contains(line, "journal") || strings.Contains(line, "database")) {
			errLogged = true
		}
	}
	_, newWork := os.Stat(filepath.Join(s.remoteDir(), "after.ttml"))
	s.figure("error_logged", yesNo(errLogged))
	s.figure("new_work_delivered_meanwhile", yesNo(newWork == nil))
	s.goal(noticed && p.code != 0, "the daemon did not exit non-zero within %s of its state_dir being removed (exited=%v code=%d)", cfg.noticeWithin, noticed, p.code)
	s.goal(errLogged, "no ERROR naming the state database in the log")
	if !noticed {
		p.stop()
	}
}
