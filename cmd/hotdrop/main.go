// Command hotdrop is the hot-folder delivery daemon: it watches drop folders, waits until each
// file is really finished, uploads it to the studio over SFTP, verifies it and reports back.
//
// This file holds the command line; daemon.go wires the pipeline (adapters.go lets the engine
// use the concrete uploader and journal); demo.go is `hotdrop demo`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/statelock"
)

// version is set at build time with -ldflags "-X main.version=1.2.3".
var version = ""

// Exit codes (SPEC.md, Commands), from sysexits.h where one fits. 2 is left to the Go runtime,
// which exits 2 on a crash (an unrecovered panic, running out of memory): the service manager
// must restart that, and must not restart exitUsage or exitConfig, which would only repeat.
const (
	exitOK     = 0
	exitFail   = 1
	exitUsage  = 64 // EX_USAGE: a wrong command line
	exitConfig = 78 // EX_CONFIG: the config or a requests file is wrong; `hotdrop check` says where
	// exitBusy (EX_TEMPFAIL) is another hotdrop holding the state_dir: a temporary condition,
	// which a script may retry later and a service manager restarts after its delay.
	exitBusy = 75
)

const usage = `hotdrop delivers media from drop folders to a studio's SFTP server.

Usage:
  hotdrop <command> [flags]

Commands:
  run       watch the drop folders and deliver (what the service runs)
  demo      the whole flow on this machine: embedded SFTP server, sample requests and files
  init      write a commented config with every key and its default
  check     validate the config and requests files (--connect: log in and probe the server)
  trust     show the server's host key fingerprint and pin it in known_hosts
  explain   say how files would be matched, held or delivered, and why
  status    requests and files, from the running daemon or the journal
  retry     try a failed or held request or file again
  deliver   release a request (auto_deliver = false, or files = 0 without the marker)
  send      upload files or folders once, with the same transfer engine
  service   install, start, stop or remove hotdrop as a system service
  version   print the version
  help      this text

Every command takes --help (or: hotdrop help COMMAND). The config is /etc/hotdrop/hotdrop.toml unless --config or
HOTDROP_CONFIG says otherwise.
Exit codes: 0 success, 1 failure, 64 usage error, 75 the state_dir is in use by another
hotdrop process (try again later), 78 config error. 2 is a crash (the service manager
restarts it).
`

func main() {
	stop, stopMem := startProfile(), startMemProfile()
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stopMem()
	stop()
	os.Exit(code)
}

// usageError is a wrong command line: exit 64 (EX_USAGE) with the message.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "help", "-h", "--help", "-help":
		if len(rest) > 0 && rest[0] != "help" && !strings.HasPrefix(rest[0], "-") {
			// hotdrop help send = hotdrop send --help, on stdout.
			return run([]string{rest[0], "--help"}, stdout, stdout)
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	case "version", "--version":
		err = cmdVersion(rest, stdout)
	case "run":
		err = cmdRun(rest, stdout, stderr)
	case "check":
		err = cmdCheck(rest, stdout, stderr)
	case "demo":
		err = cmdDemo(rest, stdout, stderr)
	case "explain":
		err = cmdExplain(rest, stdout, stderr)
	case "send":
		err = cmdSend(rest, stdout, stderr)
	case "init":
		err = cmdInit(rest, stdout, stderr)
	case "trust":
		err = cmdTrust(rest, stdout, stderr)
	case "service":
		err = cmdService(rest, stdout, stderr)
	case "status":
		err = cmdStatus(rest, stdout, stderr)
	case "retry":
		err = cmdRetry(rest, stdout, stderr)
	case "deliver":
		err = cmdDeliver(rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "hotdrop: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ue usageError
	var el config.ErrorList
	var ce *config.Error
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "hotdrop: %s\n", ue.msg)
		return exitUsage
	case errors.As(err, &el), errors.As(err, &ce):
		fmt.Fprintf(stderr, "%v\n", err)
		return exitConfig
	case errors.Is(err, statelock.ErrBusy):
		fmt.Fprintf(stderr, "hotdrop: %v\n", err)
		return exitBusy
	}
	fmt.Fprintf(stderr, "hotdrop: %v\n", err)
	return exitFail
}

func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printUsage(stderr, fs, synopsis) }
	return fs
}

// parse parses flags, turning a flag error into a usage error (exit 64).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

// parseInterspersed parses flags given before or after the positional arguments
// (`hotdrop status SR-1 --json`) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func versionString() string {
	v := version
	if v == "" {
		v = "dev"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	return v
}

func cmdVersion(args []string, stdout io.Writer) error {
	fs := newFlags("version", "version", stdout)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hotdrop %s\n", versionString())
	return nil
}

// configPath is the config file --config gives, or the default.
func configPath(flag string) string {
	if flag == "" {
		return config.DefaultPath()
	}
	return flag
}

func loadConfig(path string) (*config.Config, error) {
	path = configPath(path)
	cfg, err := config.Load(path)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w\n(pass --config FILE or set HOTDROP_CONFIG; `hotdrop init --config FILE` writes a commented one)", err)
	}
	return cfg, err
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", "run [--config FILE] [--log-format text|json] [--log-level LEVEL]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	logOpts := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := logOpts.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if underWindowsSCM() {
		return runService(cfg, log) // the Windows service manager speaks its own protocol
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return daemonMain(ctx, cfg, log)
}

// daemonMain runs the daemon until ctx ends: what `hotdrop run` and the service manager's
// start both call. It owns signal-driven reloads.
func daemonMain(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Info("SIGHUP: reloading the config and requests")
				select {
				case reload <- struct{}{}:
				default: // one is already pending
				}
			}
		}
	}()
	return runDaemon(ctx, cfg, log, daemonHooks{reload: reload})
}
