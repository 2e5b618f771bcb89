package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/config"
)

var updatePackaging = flag.Bool("update-packaging", false, "rewrite the packaged files under packaging/ that tests compare against")

// TestServicePackagedFilesAreCurrent keeps packaging/ equal to what the code makes: the
// unit from systemdUnit, the config from hotdrop init. Refresh with -update.
func TestServicePackagedFilesAreCurrent(t *testing.T) {
	unit, err := systemdUnit(packagedUnit())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ path, want string }{
		{"../../packaging/hotdrop.service", unit},
		{"../../packaging/hotdrop.toml", initConfig},
	} {
		if *updatePackaging {
			if err := os.WriteFile(f.path, []byte(f.want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != f.want {
			t.Errorf("%s is not what the code makes; run go test ./cmd/hotdrop -run PackagedFiles -update-packaging", f.path)
		}
	}
	verifyUnit(t, unit, false)
}

func TestServiceUnitFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := writeServiceConfig(t, dir, `group = "render"`)
	unit, err := systemdUnit(unitFromConfig(cfg, "/opt/hotdrop/bin/hotdrop", false))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ExecStart=/opt/hotdrop/bin/hotdrop run --config " + cfg.File + "\n",
		"User=hotdrop\n",
		"SupplementaryGroups=render\n",
		"NoNewPrivileges=yes\n",
		"ProtectSystem=strict\n",
		"ReadWritePaths=-" + cfg.StateDir + " -" + cfg.Watch.Root + "\n",
		"ProtectHome=yes\n",
		"PrivateTmp=yes\n",
		"Restart=on-failure\n",
		"RestartPreventExitStatus=64 78\n",
		"RestartSec=15s\n",
		"ExecReload=/bin/kill -HUP $MAINPID\n",
		"WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	for _, bad := range []string{"RestrictSUIDSGID=yes", "Restart=always", "{{"} {
		if strings.Contains(unit, bad) {
			t.Errorf("unit holds %q:\n%s", bad, unit)
		}
	}
	verifyUnit(t, unit, false)
}

// TestServiceDefinition: every platform's service runs `run --config FILE` with the config's
// absolute path; on Linux the library gets hotdrop's own unit, not its built-in one.
func TestServiceDefinition(t *testing.T) {
	cfg := writeServiceConfig(t, t.TempDir(), "")
	for _, goos := range []string{"linux", "darwin", "windows"} {
		c, err := serviceDefinition(cfg, "/usr/bin/hotdrop", false, goos)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(c.Arguments, " "); got != "run --config "+cfg.File || c.Executable != "/usr/bin/hotdrop" {
			t.Errorf("%s: runs %s %s, want /usr/bin/hotdrop run --config %s", goos, c.Executable, got, cfg.File)
		}
		unit, _ := c.Option["SystemdScript"].(string)
		if goos == "linux" && !strings.Contains(unit, "ExecStart=/usr/bin/hotdrop run --config "+cfg.File+"\n") {
			t.Errorf("linux: the systemd unit does not run the config:\n%s", unit)
		}
		if goos != "linux" && unit != "" {
			t.Errorf("%s: a systemd unit was set", goos)
		}
	}
}

func TestServiceUnitPerUser(t *testing.T) {
	cfg := writeServiceConfig(t, t.TempDir(), "")
	unit, err := systemdUnit(unitFromConfig(cfg, "/usr/bin/hotdrop", true))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(unit, "WantedBy=default.target\n") {
		t.Errorf("a user unit must be wanted by default.target, or the user manager never starts it:\n%s", unit)
	}
	for _, bad := range []string{"User=", "ProtectSystem=", "multi-user.target", "network-online.target"} {
		if strings.Contains(unit, bad) {
			t.Errorf("user unit holds %q, which a user manager cannot honour:\n%s", bad, unit)
		}
	}
	if !strings.Contains(unit, "NoNewPrivileges=yes\n") {
		t.Errorf("user unit lacks NoNewPrivileges:\n%s", unit)
	}
	verifyUnit(t, unit, true)
}

func TestServiceUnitPaths(t *testing.T) {
	u := unitSpec{Exe: "/opt/hot drop/hotdrop", Config: "/etc/hotdrop/100%.toml",
		ReadWrite: []string{"/var/lib/hotdrop", "/home/vendor/drop zone"}}
	unit, err := systemdUnit(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ExecStart="/opt/hot drop/hotdrop" run --config /etc/hotdrop/100%%.toml` + "\n",
		`ReadWritePaths=-/var/lib/hotdrop "-/home/vendor/drop zone"` + "\n",
		"ProtectHome=read-only\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if _, err := systemdUnit(unitSpec{Exe: "/usr/bin/hotdrop", Config: "/etc/{{x}}.toml"}); err == nil {
		t.Error(`systemdUnit accepted a path with "{{", which the service library would take as a template`)
	}
}

// verifyUnit runs systemd-analyze verify on the unit where it is installed. Its ExecStart
// must name a real executable, so the unit is rewritten to run this test binary.
func verifyUnit(t *testing.T, unit string, perUser bool) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified by systemd (CI installs it)")
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(unit, "\n")
	for i, l := range lines {
		if rest, ok := strings.CutPrefix(l, "ExecStart="); ok {
			_, args, _ := strings.Cut(rest, " ")
			lines[i] = "ExecStart=" + exe + " " + args
		}
		if strings.HasPrefix(l, "ConditionFileIsExecutable=") {
			lines[i] = "ConditionFileIsExecutable=" + exe
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "hotdrop.service")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "--man=no", path)
	if perUser {
		// The user manager wants a runtime folder, which a CI shell has none of.
		cmd = exec.Command(sa, "--user", "verify", "--man=no", path)
		cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	}
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil || strings.Contains(text, "hotdrop.service:") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, text)
	}
}

func writeServiceConfig(t *testing.T, dir, watchExtra string) *config.Config {
	t.Helper()
	for _, d := range []string{"root", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
%s
[requests]
files = ["requests.d/*.toml"]
[destination]
url = "file://%s/outbox"
[status]
listen = ""
`, watchExtra, dir)
	path := filepath.Join(dir, "hotdrop.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestServiceProgramStartStop: Start returns while the daemon runs; Stop cancels it and
// returns once it has ended.
func TestServiceProgramStartStop(t *testing.T) {
	running := make(chan struct{})
	p := &serviceProgram{
		log: slog.New(slog.DiscardHandler),
		run: func(ctx context.Context, _ *config.Config, _ *slog.Logger) error {
			close(running)
			<-ctx.Done()
			return nil
		},
		exit: func(code int) { t.Errorf("exit(%d) after a Stop", code) },
	}
	start := time.Now()
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	<-running
	if err := p.Stop(nil); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Start and Stop took %v", d)
	}
}

// TestServiceProgramStopTimeout: a daemon that does not end in time makes Stop return an
// error rather than hang the service manager.
func TestServiceProgramStopTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := &serviceProgram{
		log:         slog.New(slog.DiscardHandler),
		stopTimeout: 50 * time.Millisecond,
		run: func(ctx context.Context, _ *config.Config, _ *slog.Logger) error {
			<-release
			return nil
		},
		exit: func(int) {},
	}
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(nil); err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Errorf("Stop = %v, want a did-not-stop error", err)
	}
}

// TestServiceProgramExitCode: a daemon that fails by itself ends the process with the
// code `hotdrop run` would give (78 for config errors: systemd does not restart those).
func TestServiceProgramExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{config.ErrorList{{Msg: "bad"}}, exitConfig},
		{errors.New("disk gone"), exitFail},
	} {
		got := make(chan int, 1)
		p := &serviceProgram{
			log:  slog.New(slog.DiscardHandler),
			run:  func(context.Context, *config.Config, *slog.Logger) error { return tc.err },
			exit: func(code int) { got <- code },
		}
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		select {
		case code := <-got:
			if code != tc.want {
				t.Errorf("daemon error %v: exit(%d), want exit(%d)", tc.err, code, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("daemon error %v: no exit", tc.err)
		}
	}
}

// TestServiceProgramRealDaemon runs daemonMain itself under the program: Stop must end it
// within seconds.
func TestServiceProgramRealDaemon(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "outbox"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeServiceConfig(t, dir, "")
	var exited atomic.Bool
	var logged lockedLog
	p := &serviceProgram{cfg: cfg, log: newLogger(io.MultiWriter(testWriter{t}, &logged)), run: daemonMain, exit: func(int) { exited.Store(true) }}
	if err := p.Start(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the daemon to open its journal and start watching", func() bool {
		return exited.Load() || strings.Contains(logged.String(), "hotdrop is watching")
	})
	if exited.Load() {
		t.Fatal("the daemon ended by itself")
	}
	start := time.Now()
	if err := p.Stop(nil); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Stop took %v", d)
	}
}

func TestServiceCommandLine(t *testing.T) {
	for _, args := range [][]string{{"service"}, {"service", "frobnicate"}, {"service", "status", "extra"}} {
		var out, errb strings.Builder
		if code := run(args, &out, &errb); code != exitUsage {
			t.Errorf("hotdrop %s: exit %d, want %d; stderr %s", strings.Join(args, " "), code, exitUsage, errb.String())
		}
	}
}
