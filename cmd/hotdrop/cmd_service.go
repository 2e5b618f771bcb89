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
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/kardianos/service"

	"github.com/hotdrop/hotdrop/config"
)

// serviceName names the systemd unit, the launchd label and the Windows service.
const serviceName = "hotdrop"

// serviceAccount is the dedicated user a system service runs as on Linux; the packages create it.
const serviceAccount = "hotdrop"

// serviceStopTimeout bounds Stop: the daemon checkpoints uploads within 10 s of being told
// to stop, and service managers lose patience soon after (Windows at about 20 s).
const serviceStopTimeout = 15 * time.Second

const serviceUsage = `service install|uninstall|start|stop|restart|reload|status [--config FILE] [--user]

  install    register hotdrop with the service manager (systemd, launchd or the Windows
             service manager), recording the config path; enabled, not started
  uninstall  stop and remove it
  start, stop, restart, status
  reload     re-read the config and requests without dropping uploads (SIGHUP; not on Windows)`

// serviceFlags are the flags every service action takes.
func serviceFlags(fs *flag.FlagSet) (cfgPath *string, perUser *bool) {
	cfgPath = fs.String("config", "", "install: the config file the service runs with, recorded in the unit (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	perUser = fs.Bool("user", false, "a per-user service (systemd --user, a launchd agent) instead of a system one; every action takes it to find that service")
	return cfgPath, perUser
}

func cmdService(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlags("service", serviceUsage, stderr)
		serviceFlags(fs)
		if len(args) > 0 {
			if err := fs.Parse(args); err != nil {
				return err // --help
			}
		}
		fs.Usage()
		return usageError{"service: name an action: install, uninstall, start, stop, restart, reload or status"}
	}
	action := args[0]
	fs := newFlags("service "+action, serviceUsage, stderr)
	cfgPath, perUser := serviceFlags(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *perUser && runtime.GOOS == "windows" {
		return usageError{"service --user: Windows has no per-user services; install a system service as an administrator"}
	}
	switch action {
	case "install":
		return serviceInstall(*cfgPath, *perUser, stdout)
	case "uninstall", "start", "stop", "restart":
		s, err := newService(nil, baseServiceConfig(*perUser))
		if err != nil {
			return err
		}
		do := map[string]func() error{"start": s.Start, "stop": s.Stop, "restart": s.Restart, "uninstall": func() error {
			_ = s.Stop() // systemd's uninstall would leave it running; not running is fine
			return s.Uninstall()
		}}[action]
		if err := do(); err != nil {
			return fmt.Errorf("service %s: %s", action, plainServiceError(err))
		}
		fmt.Fprintf(stdout, "hotdrop service (%s): %s done\n", describeService(s, *perUser), action)
		return nil
	case "reload":
		return serviceReload(*perUser, stdout)
	case "status":
		return serviceStatus(*perUser, stdout)
	}
	return usageError{fmt.Sprintf("service: unknown action %q; expected install, uninstall, start, stop, restart, reload or status", action)}
}

// serviceStatus prints the state; like systemctl is-active it fails unless running.
func serviceStatus(perUser bool, stdout io.Writer) error {
	s, err := newService(nil, baseServiceConfig(perUser))
	if err != nil {
		return err
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		fmt.Fprintf(stdout, "hotdrop service (%s): not installed\n", describeService(s, perUser))
		return errors.New("the hotdrop service is not installed; `hotdrop service install` registers it")
	case err != nil:
		return fmt.Errorf("service status: %s", plainServiceError(err))
	case st == service.StatusRunning:
		fmt.Fprintf(stdout, "hotdrop service (%s): running\n", describeService(s, perUser))
		return nil
	}
	fmt.Fprintf(stdout, "hotdrop service (%s): stopped\n", describeService(s, perUser))
	return errors.New("the hotdrop service is not running")
}

// baseServiceConfig is what every action needs to find the service.
func baseServiceConfig(perUser bool) *service.Config {
	return &service.Config{
		Name:        serviceName,
		DisplayName: "hotdrop",
		Description: "hotdrop delivers media files from drop folders to a studio's SFTP server",
		Option:      service.KeyValue{"UserService": perUser},
	}
}

func newService(prg service.Interface, c *service.Config) (service.Service, error) {
	if prg == nil {
		prg = &serviceProgram{}
	}
	s, err := service.New(prg, c)
	if err != nil {
		return nil, fmt.Errorf("no service manager found on this machine (hotdrop knows systemd, launchd and the Windows service manager): %w", err)
	}
	if runtime.GOOS == "linux" && s.Platform() != "linux-systemd" {
		return nil, fmt.Errorf("this machine's service manager is %s; hotdrop service supports systemd on Linux. Run `hotdrop run --config FILE` from your init system instead", s.Platform())
	}
	return s, nil
}

func describeService(s service.Service, perUser bool) string {
	scope := "system"
	if perUser {
		scope = "per-user"
	}
	return s.Platform() + ", " + scope
}

// plainServiceError rewords kardianos/service's terse errors.
func plainServiceError(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return "the hotdrop service is not installed; `hotdrop service install` registers it"
	case strings.HasPrefix(msg, "Init already exists: "):
		return fmt.Sprintf("a hotdrop service is already installed (%s); `hotdrop service uninstall` first to replace it",
			strings.TrimPrefix(msg, "Init already exists: "))
	case msg == "service in failed state":
		return "the hotdrop service has failed; `journalctl -u hotdrop` says why (exit status 78: a config error, see `hotdrop check`; 64: a wrong command line in the unit)"
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "Access is denied"):
		return msg + " (a system service needs root or an administrator; --user installs one for yourself)"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && runtime.GOOS == "linux" {
		// The library runs systemctl without showing what it said.
		return fmt.Sprintf("systemctl failed (%v); run `systemctl daemon-reload` and `systemctl status %s` to see why (a container often has no running systemd)", err, serviceName)
	}
	return msg
}

// serviceInstall registers the service with the config recorded in its command line.
func serviceInstall(cfgPath string, perUser bool, stdout io.Writer) error {
	if cfgPath == "" {
		cfgPath = config.DefaultPath()
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err // exit 78: a service that would only fail to start is no use
	}
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err != nil {
		return fmt.Errorf("cannot tell where the hotdrop binary is: %w", err)
	}
	if strings.HasPrefix(exe, os.TempDir()) {
		return fmt.Errorf("the hotdrop binary %s is in a temporary folder (go run?); install it first (e.g. make build, then bin/hotdrop service install)", exe)
	}
	if runtime.GOOS == "linux" {
		if _, err := newService(nil, baseServiceConfig(perUser)); err != nil {
			return err // not systemd: say so before anything else
		}
		if _, err := user.Lookup(serviceAccount); err != nil && !perUser {
			return fmt.Errorf("the service runs as the user %q, which does not exist; create it with\n  useradd --system --user-group --home-dir %s --shell /usr/sbin/nologin %s\nand let it write %s and %s",
				serviceAccount, cfg.StateDir, serviceAccount, cfg.StateDir, cfg.Watch.Root)
		}
	}
	c, err := serviceDefinition(cfg, exe, perUser, runtime.GOOS)
	if err != nil {
		return err
	}
	s, err := newService(nil, c)
	if err != nil {
		return err
	}
	if err := s.Install(); err != nil {
		return fmt.Errorf("service install: %s", plainServiceError(err))
	}
	fmt.Fprintf(stdout, "hotdrop service installed (%s), running `%s run --config %s` when started\n",
		describeService(s, perUser), exe, cfg.File)
	if runtime.GOOS == "linux" && !perUser {
		fmt.Fprintf(stdout, "it runs as user %s, which must be able to write %s and %s and read %s\n",
			serviceAccount, cfg.StateDir, cfg.Watch.Root, cfg.File)
	}
	if perUser {
		fmt.Fprintln(stdout, "start it with: hotdrop service start --user")
	} else {
		fmt.Fprintln(stdout, "start it with: hotdrop service start")
	}
	return nil
}

// serviceDefinition is the service hotdrop installs on goos: `exe run --config FILE`, FILE
// the config's absolute path; on Linux with hotdrop's own hardened systemd unit.
func serviceDefinition(cfg *config.Config, exe string, perUser bool, goos string) (*service.Config, error) {
	c := baseServiceConfig(perUser)
	c.Executable = exe
	c.Arguments = []string{"run", "--config", cfg.File}
	c.Option["ReloadSignal"] = "HUP"
	// launchd: start at boot or login, and again if it dies.
	c.Option["KeepAlive"] = true
	c.Option["RunAtLoad"] = true
	// Windows: start after boot settles (network shares), restart after a crash.
	c.Option["DelayedAutoStart"] = true
	c.Option["OnFailure"] = "restart"
	c.Option["OnFailureDelayDuration"] = "15s"
	c.Option["OnFailureResetPeriod"] = 3600
	if goos == "linux" {
		unit, err := systemdUnit(unitFromConfig(cfg, exe, perUser))
		if err != nil {
			return nil, err
		}
		c.Option["SystemdScript"] = unit
	}
	return c, nil
}

// serviceReload asks the running service to re-read its config: SIGHUP through the
// service manager.
func serviceReload(perUser bool, stdout io.Writer) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "linux":
		if _, err := newService(nil, baseServiceConfig(perUser)); err != nil {
			return err
		}
		args := []string{"reload", serviceName + ".service"}
		if perUser {
			args = append([]string{"--user"}, args...)
		}
		cmd = exec.Command("systemctl", args...)
	case "darwin":
		domain := "system/"
		if perUser {
			domain = fmt.Sprintf("gui/%d/", os.Getuid())
		}
		cmd = exec.Command("launchctl", "kill", "SIGHUP", domain+serviceName)
	case "windows":
		return errors.New("Windows services cannot be reloaded; `hotdrop service restart` applies a new config (uploads in flight resume after the restart)")
	default:
		return fmt.Errorf("hotdrop service reload is not supported on %s; send SIGHUP to the hotdrop process", runtime.GOOS)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("service reload: %s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	fmt.Fprintln(stdout, "hotdrop service: reload requested; the log says whether the new config was taken")
	return nil
}

// underWindowsSCM reports whether `hotdrop run` was started by the Windows service manager,
// which must be answered through its own protocol. systemd and launchd need nothing special:
// they send signals, which `run` handles itself.
func underWindowsSCM() bool {
	return runtime.GOOS == "windows" && !service.Interactive()
}

// runService runs the daemon under the Windows service manager, logging to the event log.
func runService(cfg *config.Config, log *slog.Logger) error {
	prg := &serviceProgram{cfg: cfg, log: log, run: daemonMain, exit: os.Exit}
	s, err := newService(prg, baseServiceConfig(false))
	if err != nil {
		return err
	}
	if el, err := s.Logger(nil); err == nil {
		prg.log = slog.New(&serviceLogHandler{out: el, next: log.Handler()})
	}
	return s.Run()
}

// serviceProgram is hotdrop as kardianos/service drives it: Start returns at once with the
// daemon running in a goroutine; Stop cancels it and waits at most stopTimeout.
type serviceProgram struct {
	cfg         *config.Config
	log         *slog.Logger
	run         func(context.Context, *config.Config, *slog.Logger) error // daemonMain
	exit        func(code int)                                            // os.Exit
	stopTimeout time.Duration                                             // 0: serviceStopTimeout

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

// Start implements service.Interface.
func (p *serviceProgram) Start(service.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return errors.New("hotdrop is already running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() {
		err := p.run(ctx, p.cfg, p.log)
		p.done <- err
		if ctx.Err() == nil {
			// The daemon ended by itself: the service manager must see the process end
			// with the code `run` would have given, or it would wait for nothing.
			if err != nil {
				p.log.Error("hotdrop stopped", "err", err)
			}
			p.exit(exitCode(err, io.Discard))
		}
	}()
	return nil
}

// Stop implements service.Interface.
func (p *serviceProgram) Stop(service.Service) error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	limit := p.stopTimeout
	if limit <= 0 {
		limit = serviceStopTimeout
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			p.log.Error("hotdrop stopped with an error", "err", err)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("hotdrop did not stop within %s; uploads in flight resume on the next start", limit)
	}
}

// serviceLogHandler copies records of info and above to the service manager's log (the
// Windows event log) and passes every record on.
type serviceLogHandler struct {
	out   service.Logger
	next  slog.Handler
	attrs []slog.Attr
}

func (h *serviceLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *serviceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		var b strings.Builder
		b.WriteString(r.Message)
		add := func(a slog.Attr) bool {
			a = redactAttr(a)
			fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
			return true
		}
		for _, a := range h.attrs {
			add(a)
		}
		r.Attrs(add)
		switch {
		case r.Level >= slog.LevelError:
			_ = h.out.Error(b.String())
		case r.Level >= slog.LevelWarn:
			_ = h.out.Warning(b.String())
		default:
			_ = h.out.Info(b.String())
		}
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *serviceLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &serviceLogHandler{out: h.out, next: h.next.WithAttrs(as), attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *serviceLogHandler) WithGroup(name string) slog.Handler {
	return &serviceLogHandler{out: h.out, next: h.next.WithGroup(name), attrs: h.attrs}
}
