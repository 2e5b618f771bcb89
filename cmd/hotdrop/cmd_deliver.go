package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// cmdDeliver is `hotdrop deliver ID`: for auto_deliver = false it releases a complete
// request, and for a request of any number of files it stands in for the ready marker. It
// never overrides a hold.
func cmdDeliver(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("deliver", "deliver ID [--config FILE]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{"deliver: expected one request ID"}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	c, ctx, cancel, err := daemonClient(cfg, "deliver")
	if err != nil {
		return err
	}
	defer cancel()
	id := pos[0]
	var reply struct {
		Message string `json:"message"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/requests/"+url.PathEscape(id)+"/deliver", &reply); err != nil {
		return daemonNeeded(err, "deliver")
	}
	if reply.Message == "" {
		reply.Message = id + " released"
	}
	fmt.Fprintln(stdout, reply.Message)
	return nil
}
