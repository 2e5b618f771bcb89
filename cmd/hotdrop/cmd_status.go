package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/report"
	"github.com/hotdrop/hotdrop/store"
)

// cmdStatus is `hotdrop status [ID] [--json]`: the running daemon's view through its API, or
// the journal's when the daemon is not running.
func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "status [ID] [--json] [--wide] [--config FILE]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	asJSON := fs.Bool("json", false, "print JSON (the API's form) instead of a table")
	wide := fs.Bool("wide", false, "print whole reasons instead of cutting them to fit the table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError{fmt.Sprintf("status: expected at most one request ID, got %q", strings.Join(pos, " "))}
	}
	cfg, err := loadConfig(*cfgPath)
	var cfgErr error
	if err != nil {
		// A config being fixed must not blind status: what decodes (state_dir, the listen
		// address) is enough to read the state, and the error is said above the table.
		partial, _ := config.LoadPartial(configPath(*cfgPath))
		if partial == nil {
			return err
		}
		cfg, cfgErr = partial, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	list, live, err := statusRequests(ctx, cfg)
	if err != nil {
		if cfgErr != nil {
			return fmt.Errorf("%w\n(and, reading the state with what of the config decodes: %v)", cfgErr, err)
		}
		return err
	}
	if cfgErr != nil && !hasProblem(list.Problems, cfgErr.Error()) {
		if live && !*asJSON {
			fmt.Fprintf(stdout, "PROBLEM: the config file has errors; the running daemon keeps the config it has, and refuses this one on a reload or restart:\n")
			for _, line := range strings.Split(cfgErr.Error(), "\n") {
				fmt.Fprintf(stdout, "  %s\n", line)
			}
			fmt.Fprintln(stdout)
		} else if !live {
			list.Problems = append(list.Problems, report.Problem{Message: cfgErr.Error()})
		}
	}
	reqs := list.Requests
	if !live {
		fmt.Fprintln(stderr, "hotdrop: the daemon is not running; showing the state database (no live progress or retries)")
		if cfgErr == nil {
			if _, err := config.LoadRequests(cfg); err != nil {
				list.Problems = []report.Problem{{Message: err.Error()}}
			}
		}
	}
	if !*asJSON {
		printProblems(stdout, list.Problems, live)
	}
	if len(pos) == 1 {
		id := pos[0]
		for _, r := range reqs {
			if !r.Bin && r.ID == id {
				if *asJSON {
					return writeStatusJSON(stdout, r)
				}
				printStatusRequest(stdout, r)
				return nil
			}
		}
		return fmt.Errorf("request %s is not known to hotdrop", id)
	}
	if *asJSON {
		return writeStatusJSON(stdout, list)
	}
	printStatusTable(stdout, reqs, *wide)
	return nil
}

// statusRequests asks the daemon, or reads the journal when nothing answers.
func statusRequests(ctx context.Context, cfg *config.Config) (report.RequestList, bool, error) {
	c, err := newAPIClient(cfg)
	if err == nil {
		var list report.RequestList
		err = c.do(ctx, http.MethodGet, "/api/requests", &list)
		if err == nil {
			return list, true, nil
		}
	}
	if !errors.Is(err, errNoDaemon) {
		return report.RequestList{}, false, err
	}
	dbPath := filepath.Join(cfg.StateDir, "state.db")
	if _, serr := os.Stat(dbPath); errors.Is(serr, fs.ErrNotExist) {
		return report.RequestList{}, false, fmt.Errorf("the daemon is not running and there is no state database at %s: hotdrop has not run with this configuration yet", dbPath)
	}
	st, err := store.Open(dbPath)
	if err != nil {
		return report.RequestList{}, false, err
	}
	defer st.Close()
	rs, err := st.Requests(ctx)
	if err != nil {
		return report.RequestList{}, false, err
	}
	files, err := st.Files(ctx)
	if err != nil {
		return report.RequestList{}, false, err
	}
	list := report.InfoFromStore(rs, files)
	for i := range list {
		noteMissingFolder(&list[i], cfg.Watch.Root)
	}
	return report.RequestList{Requests: list}, false, nil
}

// noteMissingFolder says, in the journal's view, why a waiting request has no drop folder.
// The running daemon says it from its own try (a name too long for the file system, a folder
// it may not make); without it, the folder itself is looked at, and only what that shows of
// the folder is said: a folder this user may not look at, or a watch.root that is not there
// (a share not mounted), says nothing of the request.
func noteMissingFolder(ri *report.RequestInfo, root string) {
	if ri.Bin || ri.Folder == "" || ri.Why != "" || ri.Reason != nil || ri.State != "waiting" {
		return
	}
	_, err := os.Lstat(ri.Folder)
	var pe *fs.PathError
	switch {
	case err == nil, errors.Is(err, fs.ErrPermission):
	case errors.Is(err, fs.ErrNotExist):
		if fi, rerr := os.Stat(root); rerr == nil && fi.IsDir() {
			ri.Why = "no drop folder (the daemon makes it again when it starts)"
		}
	case errors.Is(err, syscall.ENAMETOOLONG) && errors.As(err, &pe):
		ri.Why = "no drop folder: " + pe.Err.Error() + " (fix the request or watch.folder)"
	case errors.As(err, &pe):
		ri.Why = "no drop folder: " + pe.Err.Error()
	default:
		ri.Why = "no drop folder: " + err.Error()
	}
}

// printProblems puts refused config or requests-file errors above the table: the daemon
// runs with the last good files, and a broken one must not pass unnoticed.
func printProblems(w io.Writer, ps []report.Problem, live bool) {
	for _, p := range ps {
		what := "the daemon refused a reload and runs with the last good config and requests files"
		if !live {
			what = "the config or requests files have errors; the daemon will refuse them"
		}
		if !p.Since.IsZero() {
			what += " (since " + p.Since.Local().Format("2006-01-02 15:04:05") + ")"
		}
		fmt.Fprintf(w, "PROBLEM: %s:\n", what)
		for _, line := range strings.Split(p.Message, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
		fmt.Fprintln(w)
	}
}

func writeStatusJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// reasonWidth is how much of a reason the table shows without --wide.
const reasonWidth = 60

func printStatusTable(w io.Writer, reqs []report.RequestInfo, wide bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTITLE\tTYPE\tLANGUAGE\tSTATE\tFILES\tPROGRESS\tREASON")
	width, cut := reasonWidth, false
	if wide {
		width = 0
	}
	for _, r := range reqs {
		id, state := r.ID, r.State
		if r.Bin {
			id, state = "(File Bin)", binState(r)
		}
		reason := reasonOrWhy(r.Reason, r.Why, width)
		cut = cut || reason != reasonOrWhy(r.Reason, r.Why, 0)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, orDash(clipText(r.Title, 30)), orDash(r.SourceType), orDash(r.Language),
			state, filesColumn(r), progressColumn(r), orDash(reason))
	}
	tw.Flush()
	if cut {
		fmt.Fprintln(w, "(reasons cut to fit: hotdrop status --wide shows them whole, hotdrop status ID one request's files)")
	}
}

// binState is the File Bin's state as the dashboard shows it: it has none of its own, so it
// is held while any file there needs a person.
func binState(r report.RequestInfo) string {
	for _, f := range r.Files {
		if f.State == "held" {
			return "held"
		}
	}
	return "waiting"
}

func printStatusRequest(w io.Writer, r report.RequestInfo) {
	fmt.Fprintf(w, "%s  %s\n", r.ID, r.Title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  source type:\t%s\n  language:\t%s\n  package id:\t%s\n  status:\t%s\n  state:\t%s\n  files:\t%s\n  progress:\t%s\n",
		orDash(r.SourceType), orDash(r.Language), orDash(r.PackageID), orDash(r.Status), r.State, filesColumn(r), progressColumn(r))
	if r.Why != "" {
		fmt.Fprintf(tw, "  why:\t%s\n", r.Why)
	}
	if r.Folder != "" {
		fmt.Fprintf(tw, "  folder:\t%s\n", r.Folder)
	}
	tw.Flush()
	if len(r.Files) == 0 && len(r.Sequences) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FILE\tSTATE\tSIZE\tPROGRESS\tREASON")
	for _, s := range r.Sequences {
		// One row per frame sequence: shot_010.[1001-2400].exr — 1,400 frames, 1,388 delivered.
		prog := fmt.Sprintf("%s of %s frames delivered", thousands(s.Delivered), thousands(s.Frames))
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.Name, s.State, humanBytes(s.Size), prog, orDash(reasonOrWhy(s.Reason, "", 0)))
	}
	for _, f := range r.Files {
		prog := "-"
		switch {
		case f.State == "delivered":
			prog = "100%"
		case f.State == "uploading" && f.Size > 0:
			prog = fmt.Sprintf("%d%%", 100*min(f.Done, f.Size)/f.Size)
		}
		if f.Retrying != nil {
			prog += fmt.Sprintf(" (retry %d at %s)", f.Retrying.Attempt, f.Retrying.NextTry.Local().Format("15:04:05"))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.Name, f.State, humanBytes(f.Size), prog, orDash(reasonOrWhy(f.Reason, f.Why, 0)))
	}
	tw.Flush()
	if r.FilesOmitted > 0 {
		fmt.Fprintf(w, "  … and %s more files not listed (those needing attention are listed first; counts: %s)\n", thousands(r.FilesOmitted), countsText(r.Counts))
	}
}

// thousands writes n with thousands separators: 100,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// countsText writes counts by state in the order a request moves through them.
func countsText(c map[string]int) string {
	var parts []string
	for _, st := range []string{"failed", "held", "uploading", "ready", "settling", "waiting", "delivered"} {
		if c[st] > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", thousands(c[st]), st))
		}
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clipText shortens s to n characters with an ellipsis (n = 0: no limit), at a word's end
// when one is near: a reason cut mid-word reads as a different word.
func clipText(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	for i := len(r) - 1; i > n*2/3; i-- {
		if r[i] == ' ' {
			return strings.TrimRight(string(r[:i]), " ,;:") + " …"
		}
	}
	return string(r) + "…"
}

func filesColumn(r report.RequestInfo) string {
	delivered, total := 0, len(r.Files)+r.FilesOmitted
	for _, f := range r.Files {
		if f.State == "delivered" {
			delivered++
		}
	}
	for _, s := range r.Sequences {
		delivered += s.Delivered
		total += s.Frames
	}
	if r.Counts != nil {
		delivered = r.Counts["delivered"] // the omitted files too
	}
	if r.Bin {
		return thousands(total)
	}
	if r.FilesExpected == 0 {
		return fmt.Sprintf("%s/%s (any)", thousands(delivered), thousands(total))
	}
	return fmt.Sprintf("%s/%s", thousands(delivered), thousands(r.FilesExpected))
}

// progressColumn is the share of bytes sent while a request uploads or once delivered;
// otherwise only its size: a held request's bytes are not on their way, whatever share its
// delivered files make.
func progressColumn(r report.RequestInfo) string {
	done, total := r.Progress()
	if total == 0 {
		return "-"
	}
	if r.State != "uploading" && r.State != "delivered" {
		return humanBytes(total)
	}
	return fmt.Sprintf("%d%% of %s", 100*done/total, humanBytes(total))
}

// reasonOrWhy is a held or failed thing's reason, else what it waits for.
func reasonOrWhy(rs *report.Reason, why string, n int) string {
	if rs == nil {
		return clipText(why, n)
	}
	return clipText(rs.Code+": "+rs.Message, n)
}

// errNoDaemon means nothing answers on the daemon's socket.
var errNoDaemon = errors.New("the daemon is not running")

// socketPath is where the running daemon answers local commands: state_dir/hotdrop.sock.
func socketPath(cfg *config.Config) string { return filepath.Join(cfg.StateDir, "hotdrop.sock") }

// apiClient talks to the running daemon's API over its socket in state_dir. Never over
// status.listen: when the daemon is down, any local user may hold that port, and a command
// that sent it the token (or trusted its answers) would be talking to them.
type apiClient struct {
	base string // for messages: the socket's path
	http *http.Client
}

func newAPIClient(cfg *config.Config) (*apiClient, error) {
	p := socketPath(cfg)
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", p)
	}}
	return &apiClient{base: p, http: &http.Client{Timeout: 20 * time.Second, Transport: tr}}, nil
}

// do calls the API; out, when not nil, receives the JSON answer.
func (c *apiClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://hotdrop"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			switch {
			case errors.Is(err, fs.ErrPermission):
				return fmt.Errorf("the daemon's socket %s refuses this user: run the command as the service user or a member of its group (or with sudo)", c.base)
			case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
				return fmt.Errorf("%w (nothing answers on %s)", errNoDaemon, c.base)
			}
		}
		return fmt.Errorf("asking the daemon at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		var ae struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			return &daemonError{status: resp.StatusCode, msg: ae.Error}
		}
		return &daemonError{status: resp.StatusCode, msg: strings.TrimSpace(string(body))}
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("the daemon at %s answered %s with something unexpected: %w", c.base, path, err)
		}
	}
	return nil
}

// daemonError is the daemon's refusal, in its words.
type daemonError struct {
	status int
	msg    string
}

func (e *daemonError) Error() string { return e.msg }

// hasProblem reports whether ps says msg already.
func hasProblem(ps []report.Problem, msg string) bool {
	for _, p := range ps {
		if p.Message == msg {
			return true
		}
	}
	return false
}
