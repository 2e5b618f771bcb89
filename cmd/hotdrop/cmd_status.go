package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	fs := newFlags("status", "status [ID] [--json] [--config FILE]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	asJSON := fs.Bool("json", false, "print JSON (the API's form) instead of a table")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError{fmt.Sprintf("status: expected at most one request ID, got %q", strings.Join(pos, " "))}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	reqs, live, err := statusRequests(ctx, cfg)
	if err != nil {
		return err
	}
	if !live {
		fmt.Fprintln(stderr, "hotdrop: the daemon is not running; showing the state database (no live progress or retries)")
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
		return writeStatusJSON(stdout, report.RequestList{Requests: reqs})
	}
	printStatusTable(stdout, reqs)
	return nil
}

// statusRequests asks the daemon, or reads the journal when nothing answers.
func statusRequests(ctx context.Context, cfg *config.Config) ([]report.RequestInfo, bool, error) {
	c, err := newAPIClient(cfg)
	if err == nil {
		var list report.RequestList
		err = c.do(ctx, http.MethodGet, "/api/requests", &list)
		if err == nil {
			return list.Requests, true, nil
		}
	}
	if !errors.Is(err, errNoDaemon) {
		return nil, false, err
	}
	dbPath := filepath.Join(cfg.StateDir, "state.db")
	if _, serr := os.Stat(dbPath); errors.Is(serr, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("the daemon is not running and there is no state database at %s: hotdrop has not run with this configuration yet", dbPath)
	}
	st, err := store.Open(dbPath)
	if err != nil {
		return nil, false, err
	}
	defer st.Close()
	rs, err := st.Requests(ctx)
	if err != nil {
		return nil, false, err
	}
	files, err := st.Files(ctx)
	if err != nil {
		return nil, false, err
	}
	return report.InfoFromStore(rs, files), false, nil
}

func writeStatusJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStatusTable(w io.Writer, reqs []report.RequestInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTITLE\tTYPE\tLANGUAGE\tSTATE\tFILES\tPROGRESS\tREASON")
	for _, r := range reqs {
		id := r.ID
		if r.Bin {
			id = "(File Bin)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, orDash(clipText(r.Title, 30)), orDash(r.SourceType), orDash(r.Language),
			r.State, filesColumn(r), progressColumn(r), orDash(reasonColumn(r.Reason, 60)))
	}
	tw.Flush()
}

func printStatusRequest(w io.Writer, r report.RequestInfo) {
	fmt.Fprintf(w, "%s  %s\n", r.ID, r.Title)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  source type:\t%s\n  language:\t%s\n  package id:\t%s\n  status:\t%s\n  state:\t%s\n  files:\t%s\n  progress:\t%s\n",
		orDash(r.SourceType), orDash(r.Language), orDash(r.PackageID), orDash(r.Status), r.State, filesColumn(r), progressColumn(r))
	if r.Folder != "" {
		fmt.Fprintf(tw, "  folder:\t%s\n", r.Folder)
	}
	tw.Flush()
	if len(r.Files) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FILE\tSTATE\tSIZE\tPROGRESS\tREASON")
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
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.Name, f.State, humanBytes(f.Size), prog, orDash(reasonColumn(f.Reason, 0)))
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip shortens s to n characters with an ellipsis (n = 0: no limit).
func clipText(s string, n int) string {
	if n <= 0 || utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

func filesColumn(r report.RequestInfo) string {
	delivered := 0
	for _, f := range r.Files {
		if f.State == "delivered" {
			delivered++
		}
	}
	if r.Bin {
		return fmt.Sprint(len(r.Files))
	}
	if r.FilesExpected == 0 {
		return fmt.Sprintf("%d/%d (any)", delivered, len(r.Files))
	}
	return fmt.Sprintf("%d/%d", delivered, r.FilesExpected)
}

func progressColumn(r report.RequestInfo) string {
	done, total := r.Progress()
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%d%% of %s", 100*done/total, humanBytes(total))
}

func reasonColumn(rs *report.Reason, n int) string {
	if rs == nil {
		return ""
	}
	return clipText(rs.Code+": "+rs.Message, n)
}

// errNoDaemon means nothing answers on status.listen (or it is off).
var errNoDaemon = errors.New("the daemon is not running")

// apiClient talks to the running daemon's API on status.listen.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func newAPIClient(cfg *config.Config) (*apiClient, error) {
	if cfg.Status.Listen == "" {
		return nil, fmt.Errorf("%w, or cannot be asked (status.listen is off)", errNoDaemon)
	}
	host, port, err := net.SplitHostPort(cfg.Status.Listen)
	if err != nil {
		return nil, fmt.Errorf("status.listen %q: %w", cfg.Status.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	c := &apiClient{http: &http.Client{Timeout: 20 * time.Second}}
	scheme := "http"
	if cfg.Status.TLSCert != "" {
		scheme = "https"
		pinned, err := pinnedTLS(cfg.Status.TLSCert)
		if err != nil {
			return nil, err
		}
		c.http.Transport = &http.Transport{TLSClientConfig: pinned}
	}
	c.base = scheme + "://" + net.JoinHostPort(host, port)
	if cfg.Status.TokenFile != "" {
		// Without read access to the token the API still answers on loopback.
		if tok, err := readSecretFile("status.token_file", cfg.Status.TokenFile); err == nil {
			c.token = tok
		}
	}
	return c, nil
}

// pinnedTLS trusts exactly the daemon's own certificate (status.tls_cert): the command talks
// to its own daemon, whose certificate may be self-signed or name another host.
func pinnedTLS(certFile string) (*tls.Config, error) {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("status.tls_cert: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("status.tls_cert: %s holds no PEM certificate", certFile)
	}
	want := block.Bytes
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], want) {
				return errors.New("the server's certificate is not status.tls_cert")
			}
			return nil
		},
	}, nil
}

// do calls the API; out, when not nil, receives the JSON answer.
func (c *apiClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w (nothing answers on %s)", errNoDaemon, c.base)
		}
		return fmt.Errorf("asking the daemon at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("the daemon at %s wants the token from status.token_file, which this user cannot read", c.base)
	}
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
