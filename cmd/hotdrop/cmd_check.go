package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hotdrop/hotdrop/config"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check [--config FILE]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
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
	fmt.Fprintf(stdout, "%s: ok\n", cfg.File)
	fmt.Fprintf(stdout, "requests: %d from %s\n", len(reqs), strings.Join(cfg.Requests.Files, ", "))
	problems := 0
	if fi, err := os.Stat(cfg.Watch.Root); err != nil {
		fmt.Fprintf(stdout, "watch.root %s: %v (hotdrop run creates drop folders below it; create the folder first)\n", cfg.Watch.Root, err)
		problems++
	} else if !fi.IsDir() {
		fmt.Fprintf(stdout, "watch.root %s: not a folder\n", cfg.Watch.Root)
		problems++
	}
	for _, w := range checkSystem(cfg) {
		fmt.Fprintln(stdout, w)
	}
	if problems > 0 {
		return fmt.Errorf("%d problem(s) found", problems)
	}
	return nil
}
