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

// maxUserWatchesFile is where the kernel says how many inotify watches a user may have; tests
// point it at a file of their own to lower the limit hotdrop sees.
var maxUserWatchesFile = "/proc/sys/fs/inotify/max_user_watches"

// checkSystem returns plain-words warnings about the machine hotdrop runs on: today the
// inotify watch limit against the number of folders under watch.root (one watch per folder).
func checkSystem(cfg *config.Config) []string {
	data, err := os.ReadFile(maxUserWatchesFile)
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
	return []string{fmt.Sprintf("inotify: %d folder(s) to watch, limit %d: ok (headroom %d)", dirs, limit, limit-dirs)}
}

// unitFiles are where the systemd unit of `hotdrop service install` and of the packages sits.
var unitFiles = []string{
	"/etc/systemd/system/hotdrop.service",
	"/lib/systemd/system/hotdrop.service",
	"/usr/lib/systemd/system/hotdrop.service",
}

// checkAccount is the user whose view of the files `check` takes: --as USER, else, for root,
// the User= of an installed unit (root sees every file, the service does not), else this
// process. It also says where the choice came from.
func checkAccount(as string) (config.Account, string, error) {
	if as != "" {
		a, err := config.LookupAccount(as)
		if err != nil {
			return a, "", usageError{"--as: " + err.Error()}
		}
		return a, "--as " + as, nil
	}
	if os.Geteuid() == 0 {
		for _, f := range unitFiles {
			name, groups := unitUser(f)
			if name == "" {
				continue
			}
			a, err := config.LookupAccount(name, groups...)
			if err != nil {
				return a, "", fmt.Errorf("%s runs the service as %s: %w", f, name, err)
			}
			return a, "User= of " + f, nil
		}
	}
	return config.CurrentAccount(), "this process", nil
}

// unitUser reads User= and SupplementaryGroups= from a systemd unit ("" when it has none).
func unitUser(file string) (string, []string) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", nil
	}
	var name string
	var groups []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "User="); ok {
			name = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "SupplementaryGroups="); ok {
			groups = append(groups, strings.Fields(v)...)
		}
	}
	return name, groups
}
