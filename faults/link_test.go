//go:build faults

package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestCuts drops the link 10 times (every connection at once, as a real link failure does)
// at random points while a 500 MiB file and many small ones upload. It measures the bytes on
// the wire per byte delivered and, after each cut, how long until the big file's upload
// resumes: the first write to its remote partial after the cut (the goal: within 2 s, since
// each cut follows progress), and, for information, how long until the first new connection.
func TestCuts(t *testing.T) {
	r := request{"SR-1", "fr-FR", 1 + cfg.cutsSmall}
	s := newScenario(t, "cuts", setup{requests: []request{r}})
	s.figure("big", fmt.Sprintf("%dMiB", cfg.cutsBigMiB))
	s.figure("small", cfg.cutsSmall)
	p := s.start()
	dir := s.waitFolder(r)
	big := int64(cfg.cutsBigMiB) << 20
	srcs := []source{s.drop(dir, "cuts_big.ttml", big)}
	for i := 0; i < cfg.cutsSmall; i++ {
		srcs = append(srcs, s.drop(dir, fmt.Sprintf("cuts_small_%02d.ttml", i), int64(64<<10+s.rng.IntN(960<<10))))
	}
	partial := filepath.Join(s.remoteDir(), ".cuts_big.ttml.partial")
	final := filepath.Join(s.remoteDir(), "cuts_big.ttml")
	published := func() bool { _, err := os.Stat(final); return err == nil }

	// Each cut comes after a random amount of progress on the wire: between a third and all
	// of an even share of the big file.
	share := big / int64(cfg.cuts+1)
	phaseEnd := time.Now().Add(cfg.deliverWithin)
	var resumes, dials []string
	var worst time.Duration
	cuts := 0
	for cuts < cfg.cuts && time.Now().Before(phaseEnd) {
		next := s.proxy.Up() + share/3 + s.rng.Int64N(share-share/3)
		if !poll(time.Until(phaseEnd), 2*time.Millisecond, func() bool { return s.proxy.Up() >= next || published() }) || published() {
			break // the big file is there (or the run is out of time): no cut can land in it
		}
		if _, err := os.Stat(partial); err != nil {
			continue // between attempts; cut when its partial is being written
		}
		cut, accepted := time.Now(), s.proxy.Accepted()
		s.proxy.CutAll()
		cuts++
		var dialed time.Time
		sawDial := func() {
			if dialed.IsZero() && s.proxy.Accepted() > accepted {
				dialed = time.Now()
			}
		}
		// Writes the server had already received land in the next moments; a resume is a
		// write after them.
		poll(200*time.Millisecond, 2*time.Millisecond, func() bool { sawDial(); return false })
		fi, err := os.Stat(partial)
		if err != nil {
			resumes = append(resumes, "published")
			continue // those writes were the last: nothing to resume
		}
		before := fi.ModTime()
		resumed := poll(time.Until(phaseEnd), 2*time.Millisecond, func() bool {
			sawDial()
			fi, err := os.Stat(partial)
			return err != nil || !fi.ModTime().Equal(before)
		})
		gap := time.Since(cut)
		worst = max(worst, gap)
		if !resumed {
			resumes = append(resumes, fmt.Sprintf(">%.0f", gap.Seconds()))
			break
		}
		resumes = append(resumes, fmt.Sprintf("%.1f", gap.Seconds()))
		if !dialed.IsZero() {
			dials = append(dials, fmt.Sprintf("%.1f", dialed.Sub(cut).Seconds()))
		}
	}
	s.figure("cuts", cuts)
	s.figure("resume_gaps_s", "["+strings.Join(resumes, ",")+"]")
	s.figure("max_gap", secs(worst))
	s.figure("first_dial_s", "["+strings.Join(dials, ",")+"]")
	s.goal(cuts == cfg.cuts, "only %d of %d cuts landed before the big file was delivered", cuts, cfg.cuts)
	s.goal(worst <= cfg.cutsGap, "the big file resumed %s after a cut, goal <= %s", worst, cfg.cutsGap)
	s.finish(p, []request{r}, srcs)
	ratio := float64(s.proxy.Up()) / float64(totalSize(srcs))
	s.figure("wire/delivered", fmt.Sprintf("%.3f", ratio))
	s.goal(ratio <= cfg.cutsRatio, "bytes on the wire / bytes delivered = %.3f, goal <= %.2f", ratio, cfg.cutsRatio)
}

// observer records, with the time each was seen, the daemon's events (from its SSE stream)
// and its /healthz answers (polled every 100 ms).
type observer struct {
	mu      sync.Mutex
	events  []seen
	healthz []seen
}

type seen struct {
	what string
	at   time.Time
}

func (s *scenario) observe(ctx context.Context) *observer {
	o := &observer{}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		for ctx.Err() == nil {
			code := "down"
			if resp, err := client.Get("http://" + s.listen + "/healthz"); err == nil {
				code = fmt.Sprint(resp.StatusCode)
				resp.Body.Close()
			}
			o.mu.Lock()
			o.healthz = append(o.healthz, seen{code, time.Now()})
			o.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	go func() {
		stream := &http.Client{}
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.listen+"/api/events", nil)
			if resp, err := stream.Do(req); err == nil {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if typ, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
						o.mu.Lock()
						o.events = append(o.events, seen{typ, time.Now()})
						o.mu.Unlock()
					}
				}
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return o
}

// first is when what was first seen at or after since in list, or false.
func (o *observer) first(list *[]seen, what string, since time.Time) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range *list {
		if e.what == what && !e.at.Before(since) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// waitSeen polls for what in list until d has passed; it returns how long after since.
func (o *observer) waitSeen(list *[]seen, what string, since time.Time, d time.Duration) (time.Duration, bool) {
	var at time.Time
	ok := poll(d, 20*time.Millisecond, func() bool {
		var seen bool
		at, seen = o.first(list, what, since)
		return seen
	})
	return at.Sub(since), ok
}

func after(d time.Duration, ok bool) string {
	if !ok {
		return "never"
	}
	return secs(d)
}

// TestOutage takes the server away for longer than destination.alert_after in the middle of
// the uploads and brings it back: destination.unreachable and /healthz 503 while it is away,
// destination.back and 200 within 5 s of its return, and everything delivered unattended.
// The outage is long enough for the retry backoff to grow, and the files large enough that
// an upload in flight after the return takes longer than 5 s to finish.
func TestOutage(t *testing.T) {
	r := request{"SR-1", "fr-FR", 4}
	s := newScenario(t, "outage", setup{bandwidth: "4MiB", alertAfter: cfg.alertAfter, requests: []request{r}})
	s.figure("alert_after", cfg.alertAfter)
	s.figure("down", cfg.outageDown)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := s.start()
	o := s.observe(ctx)
	dir := s.waitFolder(r)
	var srcs []source
	for i := 0; i < 4; i++ {
		srcs = append(srcs, s.drop(dir, fmt.Sprintf("outage_%d.ttml", i), int64(cfg.outageMiB)<<20+int64(s.rng.IntN(1<<20))))
	}
	if !poll(time.Minute, 5*time.Millisecond, func() bool { return s.proxy.Up() > 1<<20 }) {
		t.Fatalf("the uploads did not start within 1 min")
	}
	dead, err := sshdtest.DeadAddr()
	must(t, err)
	down := time.Now()
	s.proxy.Retarget(dead)
	s.proxy.CutAll()

	unreachable, okU := o.waitSeen(&o.events, "destination.unreachable", down, cfg.outageDown+time.Minute)
	sick, ok503 := o.waitSeen(&o.healthz, "503", down, cfg.outageDown+time.Minute)
	s.figure("unreachable_after", after(unreachable, okU))
	s.figure("healthz503_after", after(sick, ok503))
	s.goal(okU, "no destination.unreachable event while the server was down")
	s.goal(ok503, "/healthz never answered 503 while the server was down")
	if rest := time.Until(down.Add(cfg.outageDown)); rest > 0 {
		time.Sleep(rest) // the outage itself: the server stays away this long
	}

	back := time.Now()
	s.proxy.Retarget(s.srv.Addr)
	backEv, okB := o.waitSeen(&o.events, "destination.back", back, 2*time.Minute)
	healthy, ok200 := o.waitSeen(&o.healthz, "200", back, 2*time.Minute)
	s.figure("back_event_after", after(backEv, okB))
	s.figure("healthz200_after", after(healthy, ok200))
	s.goal(okB && backEv <= cfg.backWithin, "destination.back %s after the server returned, goal <= %s", after(backEv, okB), cfg.backWithin)
	s.goal(ok200 && healthy <= cfg.backWithin, "/healthz 200 %s after the server returned, goal <= %s", after(healthy, ok200), cfg.backWithin)
	cancel()
	s.finish(p, []request{r}, srcs)
}

// TestHostKeyChanged sends the daemon, in the middle of an upload, to a server with another
// host key (the proxy redirects and drops the link). Not one byte of the file may reach it:
// the file fails host_key_changed.
func TestHostKeyChanged(t *testing.T) {
	r := request{"SR-1", "fr-FR", 1}
	s := newScenario(t, "hostkey-changed", setup{bandwidth: "4MiB", requests: []request{r}})
	impostor := sshdtest.Start(t)
	p := s.start()
	size := int64(cfg.hostKeyMiB) << 20
	s.drop(s.waitFolder(r), "hostkey.ttml", size)
	partial := filepath.Join(s.remoteDir(), ".hostkey.ttml.partial")
	if !poll(time.Minute, 10*time.Millisecond, func() bool { fi, err := os.Stat(partial); return err == nil && fi.Size() > size/4 }) {
		t.Fatalf("the upload did not pass 25%% within 1 min")
	}
	dials := s.proxy.Accepted()
	s.proxy.Retarget(impostor.Addr)
	s.proxy.CutAll()
	if fi, err := os.Stat(partial); err == nil {
		s.figure("changed_at", mib(fi.Size()))
	}
	st, ok := s.waitState(r, 2*time.Minute, "failed", "delivered")
	s.figure("state", stateOf(st))
	s.figure("reason", reasonOf(st))
	s.goal(ok && stateOf(st) == "failed" && reasonOf(st) == "host_key_changed", "request %s reason %q, want failed host_key_changed", stateOf(st), reasonOf(st))

	var leaked int64
	var files []string
	_ = filepath.Walk(impostor.Dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			leaked += fi.Size()
			files = append(files, p)
		}
		return nil
	})
	logins := strings.Count(impostor.Log(), "Accepted publickey")
	s.figure("dials_after_change", s.proxy.Accepted()-dials)
	s.figure("logins_after_change", logins)
	s.figure("file_bytes_after_change", leaked)
	s.goal(logins == 0, "the daemon logged in %d times to the server with the changed key", logins)
	s.goal(leaked == 0, "the server with the changed key holds %d bytes: %v", leaked, files)
	if code := p.stop(); code != 0 {
		t.Errorf("the daemon exited %d on SIGTERM, want 0", code)
	}
}
