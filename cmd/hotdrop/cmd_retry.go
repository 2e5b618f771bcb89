package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/report"
)

// cmdRetry is `hotdrop retry ID|PATH`: the running daemon tries a request's failed and held
// files again, or one file given by its path.
func cmdRetry(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("retry", "retry ID|PATH [--replace] [--config FILE]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	replace := fs.Bool("replace", false, "for files held remote_exists: replace the file on the server (ask the studio first); journaled")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"retry: expected one request ID or file path"}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	c, ctx, cancel, err := daemonClient(cfg, "retry")
	if err != nil {
		return err
	}
	defer cancel()
	var list report.RequestList
	if err := c.do(ctx, http.MethodGet, "/api/requests", &list); err != nil {
		return daemonNeeded(err, "retry")
	}
	arg := pos[0]
	if *replace {
		return retryReplace(ctx, c, list, arg, stdout)
	}
	for _, r := range list.Requests {
		if !r.Bin && r.ID == arg {
			if err := c.do(ctx, http.MethodPost, "/api/requests/"+url.PathEscape(arg)+"/retry", nil); err != nil {
				return daemonNeeded(err, "retry")
			}
			fmt.Fprintf(stdout, "%s: its failed and held files are being tried again (a hold whose cause remains comes back with its reason)\n", arg)
			return nil
		}
	}
	abs, _ := filepath.Abs(arg)
	for _, r := range list.Requests {
		for _, f := range r.Files {
			if f.Path == abs || f.Path == arg {
				if err := c.do(ctx, http.MethodPost, fmt.Sprintf("/api/files/%d/retry", f.ID), nil); err != nil {
					return daemonNeeded(err, "retry")
				}
				fmt.Fprintf(stdout, "%s: being tried again\n", f.Path)
				return nil
			}
		}
	}
	if strings.ContainsAny(arg, `/\`) {
		return fmt.Errorf("%s is not a file hotdrop knows (it is outside every drop folder, or not settled yet)", abs)
	}
	return fmt.Errorf("%s is neither a request ID nor a file hotdrop knows", arg)
}

// daemonClient is the API client for a command that needs the running daemon.
func daemonClient(cfg *config.Config, cmd string) (*apiClient, context.Context, context.CancelFunc, error) {
	c, err := newAPIClient(cfg)
	if err != nil {
		return nil, nil, nil, daemonNeeded(err, cmd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	return c, ctx, cancel, nil
}

// daemonNeeded says plainly that a command needs the running daemon.
func daemonNeeded(err error, cmd string) error {
	if errors.Is(err, errNoDaemon) {
		return fmt.Errorf("%w: `hotdrop %s` needs the running daemon; start it with `hotdrop run` or `hotdrop service start`", err, cmd)
	}
	return err
}

// retryReplace is `hotdrop retry --replace ID|PATH`.
func retryReplace(ctx context.Context, c *apiClient, list report.RequestList, arg string, stdout io.Writer) error {
	target := ""
	abs, _ := filepath.Abs(arg)
	for _, r := range list.Requests {
		if !r.Bin && r.ID == arg {
			target = "/api/requests/" + url.PathEscape(arg) + "/replace"
		}
		for _, f := range r.Files {
			if f.Path == abs || f.Path == arg {
				target = fmt.Sprintf("/api/files/%d/replace", f.ID)
			}
		}
	}
	if target == "" {
		return fmt.Errorf("%s is neither a request ID nor a file hotdrop knows", arg)
	}
	var reply struct {
		Message string `json:"message"`
	}
	if err := c.do(ctx, http.MethodPost, target, &reply); err != nil {
		return daemonNeeded(err, "retry")
	}
	fmt.Fprintln(stdout, reply.Message)
	return nil
}
