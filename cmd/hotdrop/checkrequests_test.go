//go:build unix

package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/config"
)

// TestCheckWarnsOfAnEmptyGlob (operator review, item 1): a requests.files glob that matches
// nothing is not an error (a tracker may write there later) but check says so, at its entry.
func TestCheckWarnsOfAnEmptyGlob(t *testing.T) {
	dir, cfg := checkWorld(t, func(s string) string {
		return strings.Replace(s, `"requests.d/*.toml"`, `"requests.d/*.toml", "tracker/*.toml"`, 1)
	})
	code, out, errOut := hotdrop("check", "--config", cfg)
	want := "WARNING: " + cfg + ":5:31: requests.files: no file matches " + filepath.Join(dir, "etc/tracker/*.toml") + " yet, so no request comes from it"
	if code != exitOK || !strings.Contains(out, want) || !strings.Contains(out, "requests: 1 from") {
		t.Errorf("check with a glob that matches nothing: exit %d, want 0 saying\n%s\ngot:\n%s%s", code, want, out, errOut)
	}
}

// TestCheckNamesRequestsWithoutADropFolder (operator review, item 2): a request whose fields
// leave watch.folder empty gets no drop folder; check names it at its [[request]] table.
func TestCheckNamesRequestsWithoutADropFolder(t *testing.T) {
	dir, cfg := checkWorld(t, func(s string) string {
		return strings.Replace(s, "[requests]", "folder = \"{episode}\"\n[requests]", 1)
	})
	other := "[[request]]\nid = \"SR-2\"\nepisode = \"S01E02\"\npackage_id = \"PKG-1\"\nsource_type = \"Subtitle\"\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/requests.d/s.toml"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := hotdrop("check", "--config", cfg)
	want := filepath.Join(dir, "etc/requests.d/r.toml") + `:1:1: request SR-1 gets no drop folder: folder template "{episode}" gives an empty folder name (watch.folder, ` +
		cfg + `:4:10); expected a template whose fields the request has`
	if code != exitFail || !strings.Contains(out, want) || strings.Contains(out, "SR-2 gets no") || !strings.Contains(errOut, "1 problem(s) found") {
		t.Errorf("check with a request that watch.folder names no folder for: exit %d, want 1 saying\n%s\ngot:\n%s%s", code, want, out, errOut)
	}
}

// TestRunAndReloadRefuseAMissingRequestsFile (operator review, item 1): run refuses a
// requests.files path that names no file as check does (exit 78), and a reload with such a
// typo is refused with its position: the running daemon keeps its requests.
func TestRunAndReloadRefuseAMissingRequestsFile(t *testing.T) {
	runAndReloadRefuse(t,
		func(s string) string { return strings.Replace(s, `"requests.d/*.toml"`, `"requests.d/r.toml"`, 1) },
		func(s string) string { return strings.Replace(s, `"requests.d/r.toml"`, `"requests.d/r.tmol"`, 1) },
		"hotdrop.toml:5:10: requests.files: ", "requests.d/r.tmol does not exist; expected a requests file")
}

// runAndReloadRefuse checks that run refuses the config that breakIt makes of checkWorld's
// (with edit, and a local destination), exiting 78 with a log holding runWant; and that a
// daemon started on the good config refuses a reload to the broken one with an error holding
// reloadWant, so the running configuration and its requests stay.
func runAndReloadRefuse(t *testing.T, edit, breakIt func(string) string, runWant, reloadWant string) {
	t.Helper()
	_, cfgPath := checkWorld(t, func(s string) string {
		s = strings.Replace(s, "sftp://partner@ingest.example.com:22/incoming", "file:///nonexistent-outbox", 1)
		if edit != nil {
			s = edit(s)
		}
		return s
	})
	good, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := breakIt(string(good))
	start := func(text string, hooks daemonHooks, log *strings.Builder) (context.CancelFunc, chan error) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- runDaemon(ctx, c, newLogger(log), hooks) }()
		return cancel, done
	}

	var log strings.Builder
	started := make(chan struct{})
	cancel, done := start(broken, daemonHooks{started: started}, &log)
	select {
	case err := <-done:
		if code := exitCode(err, &log); code != exitConfig || !strings.Contains(log.String(), runWant) {
			t.Errorf("run with the broken config: exit %d, want 78 saying %q:\n%s", code, runWant, log.String())
		}
	case <-started:
		cancel()
		<-done
		t.Errorf("run with the broken config started; want exit 78 saying %q:\n%s", runWant, log.String())
	}
	cancel()

	var log2 strings.Builder
	started, reload, reloads := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	cancel, done = start(string(good), daemonHooks{started: started, reload: reload, reloaded: func(err error) { reloads <- err }}, &log2)
	defer func() { cancel(); <-done }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("daemon ended: %v\n%s", err, log2.String())
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}
	if err := os.WriteFile(cfgPath, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	if err := <-reloads; err == nil || !strings.Contains(err.Error(), reloadWant) {
		t.Errorf("reload to the broken config: %v, want it refused saying %q", err, reloadWant)
	}
}

// TestCheckWarnsOfAnUnknownSourceType (operator review): a request whose source_type no
// profile knows had its files sent unchecked, which only explain said. check warns, at the
// request.
func TestCheckWarnsOfAnUnknownSourceType(t *testing.T) {
	dir, cfg := checkWorld(t, func(s string) string { return s })
	other := "[[request]]\nid = \"SR-2\"\npackage_id = \"PKG-1\"\nsource_type = \"Nonsense\"\n"
	if err := os.WriteFile(filepath.Join(dir, "etc/requests.d/s.toml"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := hotdrop("check", "--config", cfg)
	want := "WARNING: " + filepath.Join(dir, "etc/requests.d/s.toml") + `:1:1: request SR-2: source_type "Nonsense" is not a known source type`
	if code != exitOK || !strings.Contains(out, want) || strings.Contains(out, "request SR-1: source_type") {
		t.Errorf("check with an unknown source_type: exit %d, want 0 saying\n%s\ngot:\n%s%s", code, want, out, errOut)
	}
}

// TestCheckWarnsOfFolderFields: a {field} of watch.folder that no request has is a WARNING
// naming the fields the requests have, never a refusal: a field of the studio's own that no
// open request has now (the last episodic one closed) refused every later change to the
// requests on reload. A template of such fields alone names no folder: that is a problem.
func TestCheckWarnsOfFolderFields(t *testing.T) {
	for _, tc := range []struct {
		folder string
		code   int
		want   string
	}{
		{"{tittle} [{id}]", exitOK, `:4:10: watch.folder: {tittle} is not a field of any request (did you mean {title}?); requests have {id}, `},
		{"{nosuchfield}", exitFail, `:4:10: watch.folder: {nosuchfield} is not a field of any request; requests have {id}, `},
	} {
		_, cfg := checkWorld(t, func(s string) string {
			return strings.Replace(s, "[requests]", "folder = \""+tc.folder+"\"\n[requests]", 1)
		})
		code, out, errOut := hotdrop("check", "--config", cfg)
		if code != tc.code || !strings.Contains(out, "WARNING: "+cfg+tc.want) {
			t.Errorf("check with watch.folder = %q: exit %d, want %d saying\nWARNING: %s%s\ngot:\n%s%s", tc.folder, code, tc.code, cfg, tc.want, out, errOut)
		}
		if strings.Contains(out, "{language}") {
			t.Errorf("the warning lists {language}, which no request has:\n%s", out)
		}
	}
}

// TestRunTakesAFolderFieldNoRequestHas: watch.folder naming a field of the studio's own
// that no open request has now (the last episodic one closed) refused run and every later
// reload, freezing the requests: it is check's warning, not a refusal.
func TestRunTakesAFolderFieldNoRequestHas(t *testing.T) {
	_, cfgPath := checkWorld(t, func(s string) string {
		s = strings.Replace(s, "sftp://partner@ingest.example.com:22/incoming", "file:///nonexistent-outbox", 1)
		return strings.Replace(s, "[requests]", "folder = \"{title}/{episode} [{id}]\"\n[requests]", 1)
	})
	c, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	started, reload, reloads := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runDaemon(ctx, c, newLogger(&log), daemonHooks{started: started, reload: reload, reloaded: func(err error) { reloads <- err }})
	}()
	defer func() { cancel(); <-done }()
	select {
	case <-started:
	case err := <-done:
		done <- err // for the deferred wait
		t.Fatalf("run refused watch.folder with a field no request has: %v\n%s", err, log.String())
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not start")
	}
	reload <- struct{}{}
	if err := <-reloads; err != nil {
		t.Errorf("reload refused: %v", err)
	}
}

// TestCheckSaysTheListenPortIsTaken (operator review): with status.listen taken by another
// program, run only logged it and went on without the dashboard, the API, /metrics and
// /healthz; check said nothing. It is now a problem of check (exit 1); a free port is not.
func TestCheckSaysTheListenPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, cfg := checkWorld(t, func(s string) string {
		return strings.Replace(s, "listen = \"\"", "listen = \""+ln.Addr().String()+"\"", 1)
	})
	code, out, errOut := hotdrop("check", "--config", cfg)
	want := "status.listen: " + ln.Addr().String() + " is in use by another program"
	if code != exitFail || !strings.Contains(out, want) {
		t.Errorf("check with status.listen taken: exit %d, want 1 saying %q\ngot:\n%s%s", code, want, out, errOut)
	}
	ln.Close()
	if code, out, errOut := hotdrop("check", "--config", cfg); code != exitOK || strings.Contains(out, "status.listen") {
		t.Errorf("check with status.listen free: exit %d\n%s%s", code, out, errOut)
	}
}

// TestShortStatusTokenIsRefused: a status token too short to guard anything ("a" was taken
// without a word, found by an attacker's review) is a problem for check and refused by run,
// with how to make one.
func TestShortStatusTokenIsRefused(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "status.token")
	if err := os.WriteFile(tok, []byte("a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Status.TokenFile = tok
	if _, err := statusToken(cfg); err == nil || !strings.Contains(err.Error(), "at least 16") || !strings.Contains(err.Error(), "openssl rand") {
		t.Errorf("a 1-character token: %v; want refused, saying how long and how to make one", err)
	}
	if err := os.WriteFile(tok, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := statusToken(cfg); err != nil || got != "0123456789abcdef0123" {
		t.Errorf("a 20-character token: %q, %v", got, err)
	}
}

// TestClearTrackerTokenIsSaid: a tracker token sent over plain http:// to another host is
// check's WARNING (and run's); https, or a tracker on this machine, is not.
func TestClearTrackerTokenIsSaid(t *testing.T) {
	cfg := &config.Config{}
	cfg.Requests.Source, cfg.Requests.TokenFile = "http", "/etc/hotdrop/tracker.token"
	for u, want := range map[string]bool{
		"http://tracker.example/api":  true,
		"HTTP://10.0.0.5:8080/api":    true,
		"https://tracker.example/api": false,
		"http://127.0.0.1:8080/api":   false,
		"http://localhost/api":        false,
		"http://[::1]:9/api":          false,
	} {
		cfg.Requests.URL = u
		if got := clearTrackerToken(cfg); (got != "") != want || want && !strings.Contains(got, "https://") {
			t.Errorf("%s: %q, want a warning %v", u, got, want)
		}
	}
	cfg.Requests.URL, cfg.Requests.TokenFile = "http://tracker.example/api", ""
	if got := clearTrackerToken(cfg); got != "" {
		t.Errorf("no token: %q, want nothing to say", got)
	}
}
