package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hotdrop/hotdrop/config"
)

// unitSpec is what a systemd unit for hotdrop depends on. The package ships the unit made
// from packagedUnit(); `hotdrop service install` makes one from the config it is given.
type unitSpec struct {
	Exe, Config string // absolute paths
	// ReadWrite are the only folders the service may write: state_dir and watch.root.
	ReadWrite []string
	// Read are other paths it reads (requests, keys, known_hosts); they decide whether
	// home folders must stay visible.
	Read []string
	// Group is watch.group: the service must belong to it to give drop folders that group.
	Group   string
	PerUser bool   // a systemd --user unit: no User=, no namespaces, WantedBy=default.target
	Note    string // comment lines at the top saying where the unit came from
}

// packagedUnit is the unit the .deb and .rpm install: the packaged config's paths.
func packagedUnit() unitSpec {
	return unitSpec{
		Exe:       "/usr/bin/hotdrop",
		Config:    "/etc/hotdrop/hotdrop.toml",
		ReadWrite: []string{"/var/lib/hotdrop", "/srv/deliveries"},
		Note: "Installed by the hotdrop package; enabled, and started once the config is complete.\n" +
			"Site changes go in a drop-in (`systemctl edit hotdrop`), e.g. when watch.root is not\n" +
			"/srv/deliveries:  [Service]  ReadWritePaths=/your/watch/root",
	}
}

// unitFromConfig is the unit `hotdrop service install` writes for cfg.
func unitFromConfig(cfg *config.Config, exe string, perUser bool) unitSpec {
	read := append([]string{cfg.File, cfg.Destination.IdentityFile, cfg.Destination.PasswordFile,
		cfg.Destination.KnownHosts, cfg.Requests.TokenFile, cfg.Status.TokenFile, cfg.Status.TLSCert,
		cfg.Status.TLSKey, cfg.Status.WebhookSecretFile}, cfg.Requests.Files...)
	return unitSpec{
		Exe:       exe,
		Config:    cfg.File,
		ReadWrite: []string{cfg.StateDir, cfg.Watch.Root},
		Read:      read,
		Group:     cfg.Watch.Group,
		PerUser:   perUser,
		Note: "Written by `hotdrop service install --config " + cfg.File + "`.\n" +
			"Install again (uninstall first) after changing state_dir, watch.root or watch.group.",
	}
}

// systemdUnit renders the unit. The text is handed to kardianos/service as its template, so
// it must not hold "{{"; systemd's own specifier character % is escaped.
func systemdUnit(u unitSpec) (string, error) {
	for _, p := range append([]string{u.Exe, u.Config, u.Group}, u.ReadWrite...) {
		if strings.Contains(p, "{{") || strings.ContainsAny(p, "\n\"\\") {
			return "", fmt.Errorf("the path %q holds characters a systemd unit cannot carry here; use a plainer path", p)
		}
	}
	var b unitText
	for _, l := range strings.Split(u.Note, "\n") {
		b.line("# %s", l)
	}
	b.unitSection(u)
	b.serviceSection(u)
	if !u.PerUser {
		b.systemSandbox(u)
	}
	b.line("")
	b.line("[Install]")
	if u.PerUser {
		b.line("WantedBy=default.target")
	} else {
		b.line("WantedBy=multi-user.target")
	}
	return b.String(), nil
}

// unitText is a unit file being written, a line at a time.
type unitText struct{ strings.Builder }

func (b *unitText) line(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }

func (b *unitText) unitSection(u unitSpec) {
	b.line("[Unit]")
	b.line("Description=hotdrop: delivers media from drop folders to a studio's SFTP server")
	b.line("Documentation=https://github.com/hotdrop/hotdrop")
	if !u.PerUser {
		// Drop folders are often NFS or SMB mounts, and the studio is on the network.
		b.line("Wants=network-online.target")
		b.line("After=network-online.target remote-fs.target")
	}
	b.line("ConditionFileIsExecutable=%s", unitPath(u.Exe))
	// Never give up restarting: a network or mount that comes back later is the normal case.
	b.line("StartLimitIntervalSec=0")
	b.line("")
}

// serviceSection is how hotdrop is run and restarted, with the hardening a per-user unit
// can have too; systemSandbox adds the rest for the system's unit.
func (b *unitText) serviceSection(u unitSpec) {
	b.line("[Service]")
	b.line("Type=simple")
	b.line("ExecStart=%s run --config %s", execArg(u.Exe), execArg(u.Config))
	b.line("ExecReload=/bin/kill -HUP $MAINPID")
	b.line("Restart=on-failure")
	b.line("RestartSec=15s")
	b.line("# 78 is a config error, 64 a wrong command line: restarting would only repeat them")
	b.line("# (`hotdrop check` says why). A crash exits 2 and is restarted.")
	b.line("RestartPreventExitStatus=64 78")
	b.line("# On SIGTERM hotdrop takes no new work and checkpoints uploads within 10 s.")
	b.line("TimeoutStopSec=30s")
	if !u.PerUser {
		b.line("User=%s", serviceAccount)
		if u.Group != "" {
			b.line("# watch.group: drop folders are given this group so render-farm users can write.")
			b.line("SupplementaryGroups=%s", u.Group)
		}
	}
	b.line("NoNewPrivileges=yes")
	b.line("LockPersonality=yes")
	b.line("RestrictRealtime=yes")
	b.line("MemoryDenyWriteExecute=yes")
	b.line("SystemCallArchitectures=native")
}

func (b *unitText) systemSandbox(u unitSpec) {
	// The file system is read-only but for state_dir and watch.root; "-": a folder that
	// is missing does not stop the start, so hotdrop itself can say what is wrong.
	rw := make([]string, 0, len(u.ReadWrite))
	for _, p := range u.ReadWrite {
		rw = append(rw, unitPath("-"+p))
	}
	b.line("ProtectSystem=strict")
	b.line("ReadWritePaths=%s", strings.Join(rw, " "))
	if underHome(append(u.ReadWrite, u.Read...)) {
		b.line("# Some configured paths are in home folders, so those stay visible (read-only).")
		b.line("ProtectHome=read-only")
	} else {
		b.line("ProtectHome=yes")
	}
	b.line("PrivateTmp=yes")
	b.line("PrivateDevices=yes")
	b.line("ProtectKernelTunables=yes")
	b.line("ProtectKernelModules=yes")
	b.line("ProtectKernelLogs=yes")
	b.line("ProtectControlGroups=yes")
	b.line("ProtectClock=yes")
	b.line("ProtectHostname=yes")
	b.line("RestrictNamespaces=yes")
	b.line("CapabilityBoundingSet=")
	b.line("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6")
	b.line("# No RestrictSUIDSGID=: drop folders are setgid (watch.folder_mode \"2775\").")
}

// unitPath writes a path for a unit file: % escaped, quoted when it holds a blank.
func unitPath(p string) string {
	p = strings.ReplaceAll(p, "%", "%%")
	if strings.ContainsAny(p, " \t") {
		return `"` + p + `"`
	}
	return p
}

// execArg writes a path for an Exec line, where $ would start a variable.
func execArg(p string) string { return strings.ReplaceAll(unitPath(p), "$", "$$") }

// underHome reports whether any path is where ProtectHome=yes would hide it.
func underHome(paths []string) bool {
	for _, p := range paths {
		for _, h := range []string{"/home", "/root", "/run/user"} {
			if p == h || strings.HasPrefix(filepath.Clean(p), h+"/") {
				return true
			}
		}
	}
	return false
}
