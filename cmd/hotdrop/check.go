package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hotdrop/hotdrop/config"
)

// checkSystem returns plain-words warnings about the machine hotdrop runs on: today the
// inotify watch limit against the number of folders under watch.root (one watch per folder).
func checkSystem(cfg *config.Config) []string {
	data, err := os.ReadFile("/proc/sys/fs/inotify/max_user_watches")
	if err != nil {
		return nil // not Linux, or /proc not mounted: nothing to say
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return nil
	}
	dirs := 0
	filepath.WalkDir(cfg.Watch.Root, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs++
		}
		return nil
	})
	if dirs*5 > limit*4 {
		return []string{fmt.Sprintf("inotify: %d folders under %s use most of fs.inotify.max_user_watches = %d; raise it with `sysctl -w fs.inotify.max_user_watches=%d` (and in /etc/sysctl.d/) or hotdrop falls back to polling",
			dirs, cfg.Watch.Root, limit, limit*4)}
	}
	return []string{fmt.Sprintf("inotify: %d folder(s) to watch, limit %d: ok", dirs, limit)}
}
