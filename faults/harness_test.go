//go:build faults

package faults

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/hotdrop/hotdrop/report"
	"github.com/hotdrop/hotdrop/store"
)

// scenario is one fault scenario: a real sshd, the counting proxy in front of it, a config
// that points the daemon at the proxy, and the daemon processes started so far. Its figure
// line is printed when the test ends, failed or not.
type scenario struct {
	t       *testing.T
	name    string
	dir     string // config, state, drop folders, daemon logs
	cfgFile string
	state   string
	root    string
	listen  string // status.listen, 127.0.0.1:PORT
	srv     *sshdtest.Server
	proxy   *sshdtest.Proxy
	remote  string // local path of the destination URL's folder on the server
	rng     *rand.Rand
	procs   []*proc
	fig     []string
	started time.Time
}

// concurrency is destination.concurrency in every scenario: files in flight at once.
const concurrency = 4

// setup describes the config a scenario runs with.
type setup struct {
	sub        string // below the server's folder: the destination URL's folder
	bandwidth  string
	alertAfter time.Duration
	requests   []request
	srvOpts    sshdtest.Options
}

type request struct {
	id, language string
	files        int
}

// newScenario starts sshd and the proxy and writes the config. The figure line is printed
// last, after every other cleanup, with result=PASS or FAIL.
func newScenario(t *testing.T, name string, su setup) *scenario {
	s := &scenario{t: t, name: name, started: time.Now(), rng: rand.New(rand.NewPCG(uint64(cfg.seed), uint64(len(name))))}
	t.Cleanup(s.printFigure)
	s.srv = sshdtest.StartWith(t, su.srvOpts)
	s.proxy = sshdtest.StartProxy(t, s.srv.Addr)
	s.srv.Pin(t, s.proxy.Addr)
	s.remote = filepath.Join(s.srv.Dir, filepath.FromSlash(su.sub))
	s.dir = t.TempDir()
	if d := os.Getenv("HOTDROP_FAULTS_KEEP"); d != "" {
		s.dir, _ = os.MkdirTemp(d, t.Name())
	}
	s.state, s.root = filepath.Join(s.dir, "state"), filepath.Join(s.dir, "root")
	s.listen = freeAddr(t)
	if len(su.requests) == 0 {
		su.requests = []request{{"SR-1", "fr-FR", 1}}
	}
	var reqs strings.Builder
	for _, r := range su.requests {
		fmt.Fprintf(&reqs, "[[request]]\nid = %q\ntitle = \"Faults\"\npackage_id = \"PKG-1\"\nsource_type = \"Subtitle\"\nlanguage = %q\nfiles = %d\n\n", r.id, r.language, r.files)
	}
	reqFile := filepath.Join(s.dir, "requests.toml")
	must(t, os.WriteFile(reqFile, []byte(reqs.String()), 0o644))
	url := fmt.Sprintf("sftp://%s@%s%s", s.srv.User, s.proxy.Addr, filepath.ToSlash(s.remote))
	dest := ""
	if su.bandwidth != "" {
		dest += fmt.Sprintf("bandwidth = %q\n", su.bandwidth)
	}
	if su.alertAfter > 0 {
		dest += fmt.Sprintf("alert_after = %q\n", su.alertAfter.String())
	}
	conf := fmt.Sprintf(`state_dir = %q
[watch]
root = %q
settle = "500ms"
poll = "100ms"
rescan = "1m"
[requests]
files = [%q]
[destination]
url = %q
identity_file = %q
known_hosts = %q
concurrency = %d
%s
[status]
listen = %q
[checks]
probe = false # the files are arbitrary bytes, not media or timed text
`, s.state, s.root, reqFile, url, s.srv.IdentityFile, s.srv.KnownHosts, concurrency, dest, s.listen)
	s.cfgFile = filepath.Join(s.dir, "hotdrop.toml")
	must(t, os.WriteFile(s.cfgFile, []byte(conf), 0o644))
	must(t, os.MkdirAll(s.root, 0o755))
	return s
}

// figure adds "key=value" to the scenario's line.
func (s *scenario) figure(key string, value any) {
	s.fig = append(s.fig, fmt.Sprintf("%s=%v", key, value))
}

func (s *scenario) printFigure() {
	result := "PASS"
	if s.t.Failed() {
		result = "FAIL"
	}
	if s.t.Skipped() {
		result = "SKIP"
	}
	printFigure(fmt.Sprintf("FAULT %s: %s took=%s seed=%d result=%s", s.name, strings.Join(s.fig, " "),
		time.Since(s.started).Round(100*time.Millisecond), cfg.seed, result))
}

// goal fails the test when ok is false: a goal missed, with the figure that missed it.
func (s *scenario) goal(ok bool, format string, args ...any) {
	s.t.Helper()
	if !ok {
		s.t.Errorf("goal missed: "+format, args...)
	}
}

// folder is a request's drop folder ("Faults/Subtitle fr-FR [SR-1]").
func (s *scenario) folder(r request) string {
	return filepath.Join(s.root, "Faults", fmt.Sprintf("Subtitle %s [%s]", r.language, r.id))
}

// remoteDir is where the requests' files land on the server.
func (s *scenario) remoteDir() string { return filepath.Join(s.remote, "PKG-1", "Subtitle") }

// proc is one daemon process.
type proc struct {
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	code    int // exit code once done; -1 when killed by a signal
	started time.Time
}

// start runs `hotdrop run --config` as its own process, its output in its own log file.
func (s *scenario) start() *proc {
	s.t.Helper()
	p := &proc{log: filepath.Join(s.dir, fmt.Sprintf("daemon-%d.log", len(s.procs)+1)), done: make(chan struct{})}
	f, err := os.Create(p.log)
	must(s.t, err)
	p.cmd = exec.Command(bin, "run", "--config", s.cfgFile)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), "HOTDROP_CONFIG=")
	must(s.t, p.cmd.Start())
	p.started = time.Now()
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	if len(s.procs) == 1 {
		s.t.Cleanup(s.stopAll)
	}
	return p
}

// stopAll kills what is still running (the test failed half-way) and shows the last log.
func (s *scenario) stopAll() {
	for _, p := range s.procs {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if s.t.Failed() && len(s.procs) > 0 {
		s.t.Logf("--- last daemon log (%s), tail ---\n%s", s.procs[len(s.procs)-1].log, tail(s.procs[len(s.procs)-1].log, 60))
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig and waits at most d for the exit; it reports whether the process exited.
func (p *proc) signal(sig syscall.Signal, d time.Duration) bool {
	_ = p.cmd.Process.Signal(sig)
	return p.wait(d)
}

func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop ends a daemon with SIGTERM as a service manager does, SIGKILL after 20 s.
func (p *proc) stop() int {
	if !p.signal(syscall.SIGTERM, 20*time.Second) {
		p.signal(syscall.SIGKILL, 10*time.Second)
	}
	return p.code
}

func (p *proc) output() string {
	data, _ := os.ReadFile(p.log)
	return string(data)
}

func tail(path string, lines int) string {
	data, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// poll calls cond every interval until it is true or d has passed; it says which.
func poll(d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// waitFolder waits for the daemon to create a request's drop folder.
func (s *scenario) waitFolder(r request) string {
	s.t.Helper()
	dir := s.folder(r)
	if !poll(30*time.Second, 20*time.Millisecond, func() bool { _, err := os.Stat(dir); return err == nil }) {
		s.t.Fatalf("the daemon did not create the drop folder %s within 30 s", dir)
	}
	return dir
}

// source is a file dropped for delivery: its name, size and sha256.
type source struct {
	name, path, sha string
	size            int64
}

// drop writes size random bytes under a hidden temp name (ignored by the watcher) and
// renames it into the drop folder, as a careful writer does.
func (s *scenario) drop(dir, name string, size int64) source {
	s.t.Helper()
	tmp := filepath.Join(dir, "."+name+".writing")
	f, err := os.Create(tmp)
	must(s.t, err)
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(s.rng.Uint32())
	}
	src := rand.NewChaCha8(seed)
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		_, _ = src.Read(buf[:n])
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			s.t.Fatal(err)
		}
		left -= n
	}
	must(s.t, f.Close())
	final := filepath.Join(dir, name)
	must(s.t, os.Rename(tmp, final))
	return source{name: name, path: final, sha: hex.EncodeToString(h.Sum(nil)), size: size}
}

// status reads a request's status file; the zero Status when there is none yet.
func (s *scenario) status(r request) report.Status {
	st, _ := report.ReadStatus(s.folder(r))
	return st
}

// waitState polls the request's status file until its state is one of want; it returns the
// last status read and whether it got there within d.
func (s *scenario) waitState(r request, d time.Duration, want ...string) (report.Status, bool) {
	var last report.Status
	ok := poll(d, 100*time.Millisecond, func() bool {
		last = s.status(r)
		if last.Request == nil {
			return false
		}
		for _, w := range want {
			if last.Request.State == w {
				return true
			}
		}
		return false
	})
	return last, ok
}

func stateOf(st report.Status) string {
	if st.Request == nil {
		return "(no status file)"
	}
	return st.Request.State
}

// reasonOf is the first file's reason code, "" when none.
func reasonOf(st report.Status) string {
	for _, f := range st.Files {
		if f.Reason != nil {
			return f.Reason.Code
		}
	}
	return ""
}

// remoteCheck is what the server holds for the sources: each delivered under its name and
// identical, its checksum file present and right, and whatever else lies there.
type remoteCheck struct {
	delivered, identical, checksums int
	leftovers                       []string // temp and partial files
	extra                           []string // any other file besides manifests
}

func (s *scenario) checkRemote(srcs []source) remoteCheck {
	var rc remoteCheck
	want := map[string]bool{}
	for _, src := range srcs {
		want[src.name], want[src.name+".sha256"] = true, true
		p := filepath.Join(s.remoteDir(), src.name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		rc.delivered++
		if sum, err := fileSHA256(p); err == nil && sum == src.sha {
			rc.identical++
		}
		if data, err := os.ReadFile(p + ".sha256"); err == nil && string(data) == src.sha+"  "+src.name+"\n" {
			rc.checksums++
		}
	}
	_ = filepath.WalkDir(s.srv.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(s.remoteDir(), p)
		base := d.Name()
		switch {
		case strings.HasPrefix(base, ".") || strings.HasSuffix(base, ".partial") || strings.HasSuffix(base, ".tmp") || strings.Contains(p, ".hotdrop-tmp"):
			rc.leftovers = append(rc.leftovers, p)
		case want[rel] || strings.HasSuffix(base, ".hotdrop.json"):
		default:
			rc.extra = append(rc.extra, p)
		}
		return nil
	})
	return rc
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// journal is what the state database recorded: file.delivered events per file name, every
// event type's count, and each file's state. Read with the daemon stopped.
type journal struct {
	deliveredEvents map[string]int
	types           map[string]int
	fileStates      map[string]string
}

func (s *scenario) readJournal() (journal, error) {
	j := journal{deliveredEvents: map[string]int{}, types: map[string]int{}, fileStates: map[string]string{}}
	st, err := store.Open(filepath.Join(s.state, "state.db"))
	if err != nil {
		return j, err
	}
	defer st.Close()
	ctx := context.Background()
	evs, err := st.Events(ctx, 0, "", 1_000_000)
	if err != nil {
		return j, err
	}
	for _, ev := range evs {
		j.types[ev.Type]++
		if ev.Type != "file.delivered" {
			continue
		}
		var body struct {
			File struct {
				Name string `json:"name"`
			} `json:"file"`
		}
		if err := json.Unmarshal(ev.Body, &body); err != nil {
			return j, fmt.Errorf("event %s: %w", ev.ID, err)
		}
		j.deliveredEvents[body.File.Name]++
	}
	files, err := st.Files(ctx)
	if err != nil {
		return j, err
	}
	for _, f := range files {
		j.fileStates[filepath.Base(f.Path)] = f.State
	}
	return j, nil
}

// onceEach counts the sources with exactly one file.delivered event, and lists the others.
func (j journal) onceEach(srcs []source) (int, []string) {
	n, bad := 0, []string(nil)
	for _, src := range srcs {
		if c := j.deliveredEvents[src.name]; c == 1 {
			n++
		} else {
			bad = append(bad, fmt.Sprintf("%s:%d", src.name, c))
		}
	}
	return n, bad
}

func (j journal) total() int {
	n := 0
	for _, c := range j.deliveredEvents {
		n += c
	}
	return n
}

func totalSize(srcs []source) int64 {
	var n int64
	for _, src := range srcs {
		n += src.size
	}
	return n
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(out)
	return out
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
