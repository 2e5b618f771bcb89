package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/uploader"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check [--config FILE] [--as USER] [--connect]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	as := fs.String("as", "", "check files and folders as this user sees them (default: for root, the User= of an installed service unit; else yourself)")
	connect := fs.Bool("connect", false, "also connect to the destination: handshake, host key, login, and write, rename and delete a test file in its folder")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	reqs, err := config.LoadRequests(cfg)
	if err != nil {
		return err
	}
	acct, why, err := checkAccount(*as)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: syntax and values ok\n", cfg.File)
	fmt.Fprintf(stdout, "requests: %d from %s\n", len(reqs), strings.Join(cfg.Requests.Files, ", "))
	for _, w := range config.UnmatchedRequestGlobs(cfg) {
		fmt.Fprintln(stdout, "WARNING: "+w.Error())
	}
	for _, w := range config.FolderFieldWarnings(cfg, reqs) {
		fmt.Fprintln(stdout, "WARNING: "+w.Error())
	}
	fmt.Fprintf(stdout, "files and folders: as the user %s (%s)\n", acct.Name, why)
	bad := configProblems(cfg, reqs, acct)
	if bad == nil {
		fmt.Fprintln(stdout, "files and folders: ok")
	}
	unprofiled(cfg, reqs, stdout)
	problems := dropFolderProblems(cfg, reqs, stdout)
	if msg := probeProblem(newChecker(cfg), cfg); msg != "" {
		fmt.Fprintln(stdout, msg)
		problems++
	}
	if msg := listenProblem(cfg); msg != "" {
		fmt.Fprintln(stdout, msg)
		problems++
	}
	if cfg.Status.TokenFile != "" {
		if _, err := statusToken(cfg); err != nil {
			fmt.Fprintln(stdout, err)
			problems++
		}
	}
	if w := clearTrackerToken(cfg); w != "" {
		fmt.Fprintln(stdout, "WARNING: "+w)
	}
	for _, w := range checkSystem(cfg) {
		fmt.Fprintln(stdout, w)
	}
	if *connect {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if !checkConnect(ctx, cfg, stdout) {
			problems++
		}
	}
	if bad != nil {
		return bad // exit 78: the service would refuse to start
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) found", problems)
	}
	return nil
}

// dropFolderProblems names the requests watch.folder gives no drop folder (the daemon only
// logs them and never delivers to them) and returns how many. A template that fails them all
// is also a config error; the first few requests are enough to show it.
func dropFolderProblems(cfg *config.Config, reqs []config.Request, stdout io.Writer) int {
	var errs config.ErrorList
	errors.As(config.CheckFolderNames(cfg, reqs, func(fields map[string]string) error {
		_, err := delivery.DropFolder(cfg.Watch.Folder, fields, cfg.Watch.Bin)
		return err
	}), &errs)
	const shown = 10
	for i, e := range errs {
		if i == shown {
			fmt.Fprintf(stdout, "… and %d more requests without a drop folder\n", len(errs)-shown)
			break
		}
		fmt.Fprintln(stdout, e.Error())
	}
	return len(errs)
}

// checkConnect does what an upload does, on a test file: it reports each step's result
// and whether all went well.
func checkConnect(ctx context.Context, cfg *config.Config, stdout io.Writer) bool {
	dest := redactURL(cfg.Destination.URL)
	up, err := uploader.New(uploaderOptions(cfg.Destination, slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Fprintf(stdout, "destination %s: %v\n", dest, uploader.Classify(err).Msg)
		return false
	}
	defer up.Close()
	if err := up.Probe(ctx); err != nil {
		ue := uploader.Classify(err)
		msg := ue.Error() // the server's own words, after ours
		if ue.Code == uploader.CodeHostKeyUnknown || ue.Code == uploader.CodeHostKeyChanged {
			msg = ue.Msg // complete in itself; the underlying error only repeats it
		}
		if ue.Code == uploader.CodeHostKeyUnknown && !strings.Contains(msg, "SHA256:") {
			// known_hosts is missing, so the uploader never saw the key: look it up, so the
			// person can compare it before pinning.
			if addr, aerr := sftpAddr(cfg.Destination.URL); aerr == nil {
				if key, _, kerr := uploader.ScanHostKey(ctx, addr, nil, trustDialTimeout); kerr == nil {
					msg += fmt.Sprintf("; the server offers the %s host key %s", key.Type(), ssh.FingerprintSHA256(key))
				}
			}
		}
		fmt.Fprintf(stdout, "destination %s: %s: %s\n", dest, ue.Code, msg)
		if ue.Code == uploader.CodeHostKeyUnknown {
			fmt.Fprintln(stdout, "  after comparing the fingerprint with the server's administrator: hotdrop trust")
		}
		return false
	}
	if strings.HasPrefix(cfg.Destination.URL, "sftp:") {
		fmt.Fprintf(stdout, "destination %s: handshake, host key, login: ok\n", dest)
	}
	fmt.Fprintf(stdout, "destination %s: write, rename and delete a test file in the folder: ok\n", dest)
	printCapabilities(stdout, up.Capabilities(), cfg.Destination)
	return true
}

// printCapabilities shows, as a short table, what the probe found out about the server and
// what hotdrop does about it.
func printCapabilities(w io.Writer, c uploader.Capabilities, d config.Destination) {
	if c.Server == "" {
		return // file://: a local folder has none of these
	}
	has := func(ext string) bool { return slices.Contains(c.Extensions, ext) }
	yes := func(ok bool, y, n string) string {
		if ok {
			return "yes: " + y
		}
		return "no: " + n
	}
	exts := strings.Join(c.Extensions, " ")
	if exts == "" {
		exts = "(none)"
	}
	rows := [][2]string{
		{"server", c.Server},
		{"sftp extensions", exts},
		{"posix-rename", yes(has("posix-rename@openssh.com"), "a redelivery replaces the old file atomically",
			"new files are published by the plain rename, which never overwrites; a redelivery moves the old file aside first")},
		{"statvfs", yes(has("statvfs@openssh.com"), "a bare failure is checked against the free space",
			"no free-space check; a full disk is known from the server's answer alone")},
		{"fsync", yes(has("fsync@openssh.com"), "used when destination.fsync asks", "files are not flushed on the server")},
	}
	if c.SequentialOnly {
		rows = append(rows, [2]string{"in-order writes only", "yes: every file is sent in order, still pipelined (" + c.SequentialWhy + ")"})
	} else {
		rows = append(rows, [2]string{"in-order writes only", "no: writes are sent concurrently"})
	}
	switch {
	case c.Exec:
		rows = append(rows, [2]string{"ssh exec (hash)", "yes: files are verified by the server's sha256 before the rename"})
	case c.ExecWhy != "":
		rows = append(rows, [2]string{"ssh exec (hash)", "no: verify = \"auto\" checks sizes (and reads resumed parts back): " + c.ExecWhy})
	default:
		rows = append(rows, [2]string{"ssh exec (hash)", "not asked: verify = \"" + d.Verify + "\""})
	}
	if c.FreeKnown {
		rows = append(rows, [2]string{"free space", fmt.Sprintf("%s (%d bytes)", humanBytes(c.FreeSpace), c.FreeSpace)})
	} else {
		rows = append(rows, [2]string{"free space", "unknown"})
	}
	fmt.Fprintln(w, "server capabilities (used for every file, not asked again):")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-21s %s\n", r[0], r[1])
	}
}

// unprofiled warns of requests whose source_type no profile knows (a typo, or a type the
// config does not define): their files are sent without their extensions and metadata being
// checked, which only explain said.
func unprofiled(cfg *config.Config, reqs []config.Request, stdout io.Writer) {
	m, err := newMatcher(cfg, reqs)
	if err != nil {
		return // the config's own check says why
	}
	shown := 0
	for _, r := range reqs {
		if r.SourceType == "" || m.Profile(r.SourceType) != nil {
			continue
		}
		if shown++; shown > 10 {
			fmt.Fprintln(stdout, "WARNING: more requests with a source_type no profile knows; hotdrop explain FILE says which profile a file gets")
			return
		}
		fmt.Fprintf(stdout, "WARNING: %s: request %s: source_type %q is not a known source type nor a [[source_type]] of the config, "+
			"so its files' extensions and metadata are not checked; correct it, or define it with [[source_type]]\n", r.Pos, r.ID, r.SourceType)
	}
}

// listenProblem says when status.listen is taken by another program: run logs that and goes
// on without the dashboard, the API, /metrics and /healthz, which nobody would notice until
// they were needed. A running hotdrop holding it is no problem (its socket answers).
func listenProblem(cfg *config.Config) string {
	addr := cfg.Status.Listen
	if addr == "" {
		return ""
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return ""
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return "" // not this machine's to say (an address of another host): run says why
	}
	if c, cerr := newAPIClient(cfg); cerr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if c.do(ctx, http.MethodGet, "/api/requests", nil) == nil {
			return "" // the running daemon answers: the port is its own
		}
	}
	return fmt.Sprintf("status.listen: %s is in use by another program, and no hotdrop daemon answers on %s: "+
		"the dashboard, the API, /metrics and /healthz would not start (run logs it and goes on without them); "+
		"stop that program or choose a free port for status.listen", addr, socketPath(cfg))
}
