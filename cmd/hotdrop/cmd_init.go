package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hotdrop/hotdrop/config"
)

// cmdInit is `hotdrop init`: it writes a config holding every key with its default and why.
func cmdInit(args []string, stdout, stderr io.Writer) error {
	flags := newFlags("init", "init [--config FILE] [--force]", stderr)
	cfgPath := flags.String("config", "", `where to write the config (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml; "-" = standard output)`)
	force := flags.Bool("force", false, "replace an existing file")
	if err := parse(flags, args); err != nil {
		return err
	}
	if *cfgPath == "-" {
		_, err := io.WriteString(stdout, initConfig)
		return err
	}
	path := *cfgPath
	if path == "" {
		path = config.DefaultPath()
	}
	if err := writeInitConfig(path, *force); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\nnext: set destination.url and watch.root in it, `hotdrop trust --config %s` to pin the server's host key, then `hotdrop check --connect --config %s`\n",
		path, path, path)
	return nil
}

// writeInitConfig writes the file through a temporary name, so an interrupted init never
// leaves half a config, and never replaces one unless force.
func writeInitConfig(path string, force bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%s already exists; hotdrop init does not overwrite a config unless --force is given", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot create the folder for the config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".hotdrop-init-*")
	if err != nil {
		return fmt.Errorf("cannot write the config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.WriteString(tmp, initConfig); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write the config: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write the config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot write the config: %w", err)
	}
	return nil
}

// initConfig is what `hotdrop init` writes and what the packages ship as
// /etc/hotdrop/hotdrop.toml (packaging/hotdrop.toml; a test keeps the two equal). Every
// key holds its default; destination.url has none and stays commented out, so hotdrop run
// says it is missing instead of delivering anywhere.
const initConfig = `# hotdrop configuration. Every key is shown with its default; the ones left commented out
# have no default. Relative paths are relative to this file's folder.
# After editing: hotdrop check --connect   (validates everything, then tries the server)
# Then apply:    systemctl reload hotdrop  (or hotdrop service reload)

# The SQLite journal (state.db): what was delivered, so nothing is ever sent twice.
state_dir = "/var/lib/hotdrop"

[watch]
# The folder holding one drop folder per open request; hotdrop creates the drop folders.
root = "/srv/deliveries"
# The File Bin below root: files dropped here are matched to requests by the [[rule]]s.
bin = "_bin"
# Drop folder names; {field} is any request field, empty parts collapse.
folder = "{title}/{source_type} {language} [{id}]"
# A file is complete when its size and mtime stay unchanged this long.
settle = "30s"
# A full walk this often catches whatever events missed.
rescan = "10m"
# "auto": events on local disks, polling on NFS/SMB (other machines' writes make no events);
# "events" or "poll" force one way.
mode = "auto"
# How often polled trees are looked at.
poll = "5s"
# Writers' temporary files, never delivered ("." files include rsync's .NAME.XXXXXX).
ignore = [".*", "*.part", "*.partial", "*.tmp", "*~", "*.crdownload", "Thumbs.db", "desktop.ini"]
# For requests with files = 0: this file in the drop folder says the set is complete.
ready_marker = "_READY"
# Mode of the drop folders hotdrop creates: setgid, so files written there keep the group.
folder_mode = "2775"
# The group given to drop folders, so render-farm users in it can write there.
# group = "render"

[requests]
# "file": requests come from the files below; "http": from a tracker at url.
source = "file"
# Request files, each holding [[request]] tables; globs allowed (a glob may match
# nothing yet; a path without glob characters must name a file).
files = ["/etc/hotdrop/requests.d/*.toml"]
# source = "http": GET {url}/source-requests, events POSTed back.
# url = "https://tracker.example/api"
# The tracker's bearer token, first line of this file (never logged).
# token_file = "/etc/hotdrop/tracker.token"
# How often the tracker is asked for requests.
poll = "1m"
# The most requests one tracker reply may list (1 to 200000); a reply with more is
# refused whole and the requests last seen stay in force.
max = 20000

[destination]
# Where files go: sftp://user@host[:port]/folder or file:///mounted/folder. Required;
# hotdrop will not start without it.
# url = "sftp://partner@ingest.example.com:22/incoming"
# The login key (OpenSSH format, no passphrase: a service cannot type one). Without it or a
# password_file, hotdrop uses the ssh-agent at SSH_AUTH_SOCK.
# identity_file = "/etc/hotdrop/id_ed25519"
# A password, first line of this file; it also answers keyboard-interactive logins.
# password_file = "/etc/hotdrop/sftp.password"
# The server's pinned host key (hotdrop trust adds it). Host keys are always verified.
known_hosts = "/etc/hotdrop/known_hosts"
# Where each file goes below the URL's folder: any request field, and {name}, the file's
# path inside its drop folder.
path = "{package_id}/{source_type}/{name}"
# Files uploaded at the same time (on a long link up to four times as many small ones).
concurrency = 4
# SFTP streams one large file is written over at once, for long links: "auto" stripes where
# the round trip is 5 ms or more (8 streams, more while that helps, up to 16); or 1 to 32.
streams = "auto"
# Upload limit per second, e.g. "40MiB"; "0" = unlimited.
bandwidth = "0"
# Checksum file written beside each delivered file: "sha256", "md5", "xxh64" or "none".
checksum = "sha256"
# "portable": hold names outside [A-Za-z0-9._-] or paths over 255 bytes before sending; "any".
names = "portable"
# After upload: "auto" uses the strongest check the server offers (sha256sum/md5sum over SSH,
# else the size; a resumed file is never checked on its size alone: its earlier part is read
# back when the server cannot hash); "size" compares sizes; "hash" requires the server's hash.
verify = "auto"
# Where a file is written before its rename into place, relative to its final folder:
# {name} is its name. For servers that refuse or hide dotfiles: "{name}.partial", or one
# folder such as ".hotdrop-tmp/{name}".
temp_name = ".{name}.partial"
# What happens to a source file after its delivery is verified: "keep", "move" (to
# watch.root/_delivered/) or "delete".
after = "keep"
# REQUEST_ID.hotdrop.json beside a delivered request's files: the studio's sign it is whole.
manifest = true
# Unreachable this long: a destination.unreachable event, and /healthz answers 503.
alert_after = "10m"
# false: complete requests wait for hotdrop deliver ID or the dashboard.
auto_deliver = true

# Bandwidth by local time of day; add one table per window. None by default.
# [[destination.schedule]]
# from = "08:00"
# to = "20:00"
# bandwidth = "20MiB"

[status]
# Dashboard, JSON API, events, /metrics and /healthz; "" turns them off.
listen = "127.0.0.1:8470"
# The token every request must carry off loopback; on loopback, what a POST (retry,
# deliver) needs unless it comes from a dashboard logged in with it.
# token_file = "/etc/hotdrop/status.token"
# Further names accepted in the Host header (a reverse proxy's, a DNS name).
# hosts = ["hotdrop.vendor.lan"]
# HTTPS for a dashboard reached over the network: set both.
# tls_cert = "/etc/hotdrop/tls.crt"
# tls_key = "/etc/hotdrop/tls.key"
# .hotdrop-status.json in every drop folder: the state people see next to their files.
status_files = true
# Every event is POSTed here as JSON.
# webhook = "https://hooks.example/hotdrop"
# Signs webhook deliveries: X-Hotdrop-Signature: sha256=HMAC-SHA256 of "TIMESTAMP.BODY",
# with X-Hotdrop-Timestamp: TIMESTAMP (Unix seconds), so receivers can refuse replays.
# webhook_secret_file = "/etc/hotdrop/webhook.secret"

[checks]
# Look inside files before any byte leaves: media of the AV, proxy, Non-IMF and audio source
# types with ffprobe (frame rate, resolution, duration, channels, sample rate, language
# against the metadata), timed text (TTML frame rate and xml:lang, SRT/WebVTT timing, SCC
# header). A mismatch holds the file media_mismatch. IMF packages are always checked
# against their asset map and packing lists (imf_mismatch). Needs FFmpeg (apt install ffmpeg);
# hotdrop check says when it is missing.
probe = true
# ffprobe = "/usr/bin/ffprobe"   # default: ffprobe from PATH
timeout = "1m0s"

# Naming rules for the File Bin, tried in order; the first whose pattern fits decides.
# None by default: files in the bin are held until a rule or a sidecar names their request.
# [[rule]]
# name = "timed-text"
# pattern = "{title}_{episode}_{source_type}_{language}.{ext}"
# [rule.where]
# episode = "S[0-9]{2}E[0-9]{2}"

# Source type profiles override or add to the built-in ones. None by default.
# [[source_type]]
# name = "Subtitle"
# aliases = ["SUB"]
# extensions = ["ttml", "dfxp", "srt", "vtt", "scc", "stl"]
# multi = false                # takes several files per request (a request's own files wins)
# require_checksum = false     # deliver only files with a writer's NAME.sha256/.md5/.xxh64
# require_marker = false       # deliver only once the ready marker is there
# [source_type.checks]         # which content checks apply, and how strict (default: the built-in's)
# apply = ["frame_rate", "resolution", "duration", "channels", "sample_rate", "language", "timing"]
# sample_rate = 48000          # expected when the metadata gives no sample_rate
# channels = "5.1"             # expected when the metadata gives no channels/audio_config
# duration_tolerance = "1s"    # how far the running time may be from duration/runtime
# probe = true                 # media probe with ffprobe; timed_text = true, imf = false, video = false
# [source_type.metadata]
# language = { required = true }
# frame_rate = { required = true, values = ["23.976", "24", "25", "29.97", "30"] }
`
