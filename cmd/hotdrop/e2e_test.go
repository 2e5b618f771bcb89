package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/hotdrop/hotdrop/report"
)

const e2eRequests = `
[[request]]
id = "SR-1"
title = "Wednesday"
package_id = "PKG-1"
source_type = "Subtitle"
language = "fr-FR"

[[request]]
id = "SR-2"
title = "Wednesday"
package_id = "PKG-1"
source_type = "SDH/CC"
language = "en-US"
`

// e2e is one daemon under test, with its folders and a count of the uploads it started.
type e2e struct {
	t       *testing.T
	dir     string
	cfg     *config.Config
	uploads atomic.Int64
	reload  chan struct{}
	reloads chan error
	cancel  context.CancelFunc
	done    chan error
	hooks   daemonHooks       // further hooks for start (engine options, events)
	logged  lockedLog         // what the daemon logged
	drops   map[string]string // drop folders (below watch.root) of requests other than SR-1 and SR-2
}

// newE2E writes a config for the destination (url, identity, known_hosts) into a fresh folder.
func newE2E(t *testing.T, dir, url, identity, knownHosts, mode string) *e2e {
	t.Helper()
	return newE2EWith(t, dir, url, identity, knownHosts, mode, "")
}

// newE2EWith is newE2E with extra lines for the [destination] table.
func newE2EWith(t *testing.T, dir, url, identity, knownHosts, mode, destExtra string) *e2e {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(filepath.Join(dir, "requests.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "requests.d", "r.toml"), []byte(e2eRequests), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
settle = "600ms"
poll = "100ms"
rescan = "1m"
mode = %q
[requests]
files = ["requests.d/*.toml"]
[destination]
url = %q
identity_file = %q
known_hosts = %q
%s
[status]
listen = ""
[checks]
probe = false # the files are arbitrary bytes, not media or timed text
`, mode, url, identity, knownHosts, destExtra)
	cfgPath := filepath.Join(dir, "hotdrop.toml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return &e2e{t: t, dir: dir, cfg: cfg, reload: make(chan struct{}), reloads: make(chan error, 8)}
}

type countingUploader struct {
	delivery.Uploader
	n *atomic.Int64
}

func (c countingUploader) Upload(ctx context.Context, j delivery.Job) (delivery.Result, error) {
	if !strings.HasSuffix(j.RemoteRel, ".hotdrop.json") { // manifests are not deliveries
		c.n.Add(1)
	}
	return c.Uploader.Upload(ctx, j)
}

// FinishPublish passes the optional ability through: without it the engine would not finish
// a publish interrupted after the rename.
func (c countingUploader) FinishPublish(ctx context.Context, j delivery.Job) (delivery.Result, error) {
	return c.Uploader.(delivery.Finisher).FinishPublish(ctx, j)
}

// Reachable passes the optional ability through, like FinishPublish.
func (c countingUploader) Reachable(ctx context.Context) error {
	return c.Uploader.(delivery.Reacher).Reachable(ctx)
}

// Discard passes the optional ability through, like FinishPublish.
func (c countingUploader) Discard(ctx context.Context, rel string) error {
	return c.Uploader.(delivery.Discarder).Discard(ctx, rel)
}

func (e *e2e) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() {
		h := e.hooks
		h.started, h.reload = started, e.reload
		h.reloaded = func(err error) { e.reloads <- err }
		h.wrapUploader = func(u delivery.Uploader) delivery.Uploader { return countingUploader{u, &e.uploads} }
		e.done <- runDaemon(ctx, e.cfg, newLogger(io.MultiWriter(testWriter{e.t}, &e.logged)), h)
	}()
	select {
	case <-started:
	case err := <-e.done:
		e.t.Fatalf("daemon did not start: %v", err)
	}
	e.t.Cleanup(e.stop)
}

func (e *e2e) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("daemon: %v", err)
		}
	case <-time.After(15 * time.Second):
		e.t.Errorf("daemon did not stop within 15 s of cancellation")
	}
	e.cancel = nil
}

func (e *e2e) folder(id string) string {
	names := map[string]string{"SR-1": "Wednesday/Subtitle fr-FR [SR-1]", "SR-2": "Wednesday/SDH_CC en-US [SR-2]"}
	if d, ok := e.drops[id]; ok {
		names[id] = d
	}
	return filepath.Join(e.cfg.Watch.Root, filepath.FromSlash(names[id]))
}

// waitStatus polls a drop folder's status file until the request reaches want.
func (e *e2e) waitStatus(id, want string) report.Status {
	e.t.Helper()
	return e.waitStatusWithin(id, want, 30*time.Second)
}

// waitStatusWithin is waitStatus with its own deadline.
func (e *e2e) waitStatusWithin(id, want string, within time.Duration) report.Status {
	e.t.Helper()
	return waitFolderStatusWithin(e.t, e.folder(id), want, within)
}

func stateOf(s report.Status) string {
	if s.Request == nil {
		return "(no status file)"
	}
	return s.Request.State
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// remoteFiles lists every file below dir (relative, slash paths).
func remoteFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func sameContent(t *testing.T, a, b string) {
	t.Helper()
	ha, err := sha256File(a)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := sha256File(b)
	if err != nil {
		t.Fatalf("remote file: %v", err)
	}
	if ha != hb {
		t.Errorf("%s sha256 %s, remote %s sha256 %s", a, ha, b, hb)
	}
}

// TestEndToEndRealSSHD runs the whole daemon against a real OpenSSH sshd: two requests, a file
// dropped into each, both delivered byte-identical with no partial left; then a restart sends
// nothing again.
func TestEndToEndRealSSHD(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	e.start()

	sub := filepath.Join(e.folder("SR-1"), "ep1_fr-FR.ttml")
	sdh := filepath.Join(e.folder("SR-2"), "nested", "ep1_en-US.scc")
	writeFile(t, sub, 300<<10)
	if err := os.MkdirAll(filepath.Dir(sdh), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sdh, 5<<20)

	s1 := e.waitStatus("SR-1", "delivered")
	s2 := e.waitStatus("SR-2", "delivered")
	sameContent(t, sub, filepath.Join(srv.Dir, "PKG-1", "Subtitle", "ep1_fr-FR.ttml"))
	sameContent(t, sdh, filepath.Join(srv.Dir, "PKG-1", "SDH_CC", "nested", "ep1_en-US.scc"))
	for _, s := range []report.Status{s1, s2} {
		if len(s.Files) != 1 || s.Files[0].State != "delivered" || len(s.Files[0].SHA256) != 64 {
			t.Errorf("status files = %+v, want one delivered file with its sha256", s.Files)
		}
	}
	want := "PKG-1/SDH_CC/SR-2.hotdrop.json PKG-1/SDH_CC/nested/ep1_en-US.scc PKG-1/SDH_CC/nested/ep1_en-US.scc.sha256 " +
		"PKG-1/Subtitle/SR-1.hotdrop.json PKG-1/Subtitle/ep1_fr-FR.ttml PKG-1/Subtitle/ep1_fr-FR.ttml.sha256"
	// The manifest follows the request's delivered state, from its own upload: wait for it.
	var got string
	if !eventually(15*time.Second, func() bool { got = strings.Join(remoteFiles(t, srv.Dir), " "); return got == want }) {
		t.Errorf("remote files = %v, want exactly the two deliveries, their checksum files and manifests (no .partial left)", got)
	}
	// The checksum file is in sha256sum format and agrees with the status file.
	if data, err := os.ReadFile(filepath.Join(srv.Dir, "PKG-1", "Subtitle", "ep1_fr-FR.ttml.sha256")); err != nil ||
		string(data) != s1.Files[0].SHA256+"  ep1_fr-FR.ttml\n" {
		t.Errorf("checksum file = %q, %v; want %q", data, err, s1.Files[0].SHA256+"  ep1_fr-FR.ttml\n")
	}
	var m delivery.Manifest
	data, err := os.ReadFile(filepath.Join(srv.Dir, "PKG-1", "SDH_CC", "SR-2.hotdrop.json"))
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err != nil || m.Request != "SR-2" || len(m.Files) != 1 || m.Files[0].Name != "nested/ep1_en-US.scc" || m.Files[0].SHA256 != s2.Files[0].SHA256 {
		t.Errorf("manifest = %+v, %v; want SR-2 with its one file and checksum", m, err)
	}
	if n := e.uploads.Load(); n != 2 {
		t.Errorf("uploads = %d, want 2", n)
	}
	e.stop()

	// Restart on the same journal: both files are seen again, neither is sent again.
	e2 := newE2E(t, e.dir, srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	e2.start()
	// A file dropped now is judged a settle period after the daemon saw the delivered files
	// again: once it shows in the File Bin's status, any upload of theirs has started.
	bin := filepath.Join(e2.cfg.Watch.Root, "_bin")
	writeFile(t, filepath.Join(bin, "probe.txt"), 10)
	waitFor(t, 30*time.Second, "probe.txt held in the File Bin", func() bool {
		s, err := report.ReadStatus(bin)
		return err == nil && len(s.Files) == 1 && s.Files[0].Name == "probe.txt" && s.Files[0].State == "held"
	})
	e2.waitStatus("SR-1", "delivered")
	e2.waitStatus("SR-2", "delivered")
	if n := e2.uploads.Load(); n != 0 {
		t.Errorf("uploads after restart = %d, want 0", n)
	}
}

// TestGrowingFileWaitsForSettle: a writer that appends with pauses shorter than the settle
// period is not uploaded until it stops, and what arrives is the final file.
func TestGrowingFileWaitsForSettle(t *testing.T) {
	srv := sshdtest.Start(t)
	for _, mode := range []string{"events", "poll"} {
		t.Run(mode, func(t *testing.T) {
			e := newE2E(t, "", srv.URL()+"/"+mode, srv.IdentityFile, srv.KnownHosts, mode)
			e.start()
			p := filepath.Join(e.folder("SR-1"), "growing.ttml")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			chunk := make([]byte, 64<<10)
			last := time.Now()
			for i := 0; i < 12; i++ { // 12 × 200 ms: well past the 600 ms settle in total
				rand.Read(chunk)
				if _, err := f.Write(chunk); err != nil {
					t.Fatal(err)
				}
				if gap := time.Since(last); gap > e.cfg.Watch.Settle*3/4 {
					// The premise failed, not hotdrop: a pause that long may rightly end the settle.
					t.Skipf("machine too loaded: the writer paused %s between writes (settle %s)", gap, e.cfg.Watch.Settle)
				}
				last = time.Now()
				time.Sleep(200 * time.Millisecond) // a real writer pausing, shorter than the settle period
				if n := e.uploads.Load(); n != 0 {
					t.Fatalf("upload started while the file was still growing (after %d chunks)", i+1)
				}
			}
			f.Close()
			e.waitStatus("SR-1", "delivered")
			sameContent(t, p, filepath.Join(srv.Dir, mode, "PKG-1", "Subtitle", "growing.ttml"))
			if n := e.uploads.Load(); n != 1 {
				t.Errorf("uploads = %d, want 1", n)
			}
		})
	}
}

// TestHostKeyChanged: a server whose key differs from known_hosts gets nothing, and the file
// is failed with host_key_changed and a message that shows the offered key.
func TestHostKeyChanged(t *testing.T) {
	srv := sshdtest.Start(t)
	dir := t.TempDir()
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	kh := filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, other)
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newE2E(t, dir, srv.URL(), srv.IdentityFile, kh, "auto")
	e.start()
	writeFile(t, filepath.Join(e.folder("SR-1"), "a.ttml"), 1000)
	s := e.waitStatus("SR-1", "failed")
	if len(s.Files) != 1 || s.Files[0].Reason == nil || s.Files[0].Reason.Code != "host_key_changed" {
		t.Fatalf("status files = %+v, want failed host_key_changed", s.Files)
	}
	if msg := s.Files[0].Reason.Message; !strings.Contains(msg, ssh.FingerprintSHA256(srv.HostKey)) {
		t.Errorf("message %q does not show the offered key's fingerprint %s", msg, ssh.FingerprintSHA256(srv.HostKey))
	}
	if got := remoteFiles(t, srv.Dir); len(got) != 0 {
		t.Errorf("remote files = %v, want none", got)
	}
}

// TestUnsafeEntriesHeld: a FIFO and a symlink to outside the root are held unsafe_path and
// never opened (a FIFO opened for reading would hang the daemon).
func TestUnsafeEntriesHeld(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote")
	os.MkdirAll(remote, 0o755)
	e := newE2E(t, dir, "file://"+remote, "", "", "auto")
	e.start()
	outside := filepath.Join(dir, "secret.txt")
	writeFile(t, outside, 100)
	if err := os.Symlink(outside, filepath.Join(e.folder("SR-1"), "link.ttml")); err != nil {
		t.Fatal(err)
	}
	mkfifo(t, filepath.Join(e.folder("SR-2"), "pipe.scc"))
	for _, id := range []string{"SR-1", "SR-2"} {
		s := e.waitStatus(id, "held")
		if len(s.Files) != 1 || s.Files[0].Reason == nil || s.Files[0].Reason.Code != "unsafe_path" || s.Files[0].Reason.Message == "" {
			t.Errorf("%s files = %+v, want one held unsafe_path with a sentence", id, s.Files)
		}
	}
	if got := remoteFiles(t, remote); len(got) != 0 {
		t.Errorf("remote files = %v, want none", got)
	}
	// Nothing hangs: a normal file next to them in another request still goes through.
	e.stop()
}

// TestReloadDuringUpload: SIGHUP's reload with a broken config is refused with the error's
// position while an upload runs; a valid one opens a request the studio reopened; the upload
// in flight finishes either way.
func TestReloadDuringUpload(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	reqFile := filepath.Join(e.dir, "requests.d", "r.toml")
	closed := strings.Replace(e2eRequests, `source_type = "SDH/CC"`, `source_type = "SDH/CC"`+"\nstatus = \"closed\"", 1)
	if err := os.WriteFile(reqFile, []byte(closed), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	if _, err := os.Stat(e.folder("SR-2")); err == nil {
		t.Fatalf("closed request got a drop folder")
	}
	big := filepath.Join(e.folder("SR-1"), "big.ttml")
	writeFile(t, big, 48<<20)
	waitFor(t, 30*time.Second, "upload started", func() bool { return e.uploads.Load() == 1 })

	good, _ := os.ReadFile(e.cfg.File)
	if err := os.WriteFile(e.cfg.File, append(good, []byte("\n[watch]\nsetle = \"1s\"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	e.reload <- struct{}{}
	if err := <-e.reloads; err == nil || !strings.Contains(err.Error(), "hotdrop.toml:") {
		t.Fatalf("reload of a broken config: %v, want an error naming the file and line", err)
	}
	if err := os.WriteFile(e.cfg.File, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqFile, []byte(e2eRequests), 0o644); err != nil {
		t.Fatal(err)
	}
	e.reload <- struct{}{}
	if err := <-e.reloads; err != nil {
		t.Fatalf("reload of a good config: %v", err)
	}
	e.waitStatus("SR-1", "delivered")
	sameContent(t, big, filepath.Join(srv.Dir, "PKG-1", "Subtitle", "big.ttml"))
	writeFile(t, filepath.Join(e.folder("SR-2"), "b.scc"), 1000)
	e.waitStatus("SR-2", "delivered")
	if n := e.uploads.Load(); n != 2 {
		t.Errorf("uploads = %d, want 2 (the one in flight was not restarted)", n)
	}
}

// TestFileBinEndToEnd: files dropped in the File Bin are matched by the naming rules; the
// bin's status file says which request each went to, or why it is held.
func TestFileBinEndToEnd(t *testing.T) {
	dir := t.TempDir()
	remote := filepath.Join(dir, "remote")
	os.MkdirAll(remote, 0o755)
	e := newE2E(t, dir, "file://"+remote, "", "", "auto")
	rules := "\n[[rule]]\nname = \"timed-text\"\npattern = \"{title}_{source_type}_{language}.{ext}\"\n"
	f, err := os.OpenFile(e.cfg.File, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(rules)
	f.Close()
	if e.cfg, err = config.Load(e.cfg.File); err != nil {
		t.Fatal(err)
	}
	e.start()
	bin := filepath.Join(e.cfg.Watch.Root, "_bin")
	writeFile(t, filepath.Join(bin, "Wednesday_SDH_en-us.scc"), 2000)
	writeFile(t, filepath.Join(bin, "Thursday_SUB_fr-FR.ttml"), 100)
	e.waitStatus("SR-2", "delivered")
	if _, err := os.Stat(filepath.Join(remote, "PKG-1", "SDH_CC", "Wednesday_SDH_en-us.scc")); err != nil {
		t.Errorf("bin file not at its request's remote path: %v", err)
	}
	waitFor(t, 10*time.Second, "bin status lists both files", func() bool {
		s, err := report.ReadStatus(bin)
		if err != nil || len(s.Files) != 2 {
			return false
		}
		var matched, held bool
		for _, f := range s.Files {
			matched = matched || f.Name == "Wednesday_SDH_en-us.scc" && f.Request == "SR-2" && f.State == "delivered"
			held = held || f.Name == "Thursday_SUB_fr-FR.ttml" && f.State == "held" && f.Reason != nil &&
				f.Reason.Code == "no_matching_request" && strings.Contains(f.Reason.Message, "title")
		}
		return matched && held
	})
}
