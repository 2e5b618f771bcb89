package config

import (
	"fmt"
	"net"
	"path"
	"path/filepath"
	"strings"
)

func decodeWatch(t *table, w *Watch, dir string) {
	if s, ok := t.str("root", "a path"); ok && s != "" {
		if p, ok := t.checkPath(t.valPos("root"), "watch.root", s, dir); ok {
			if filepath.Dir(p) == p {
				t.errorf(t.valPos("root"), `watch.root: %q is the whole file system: hotdrop would make drop folders in it and watch every file below it; give it a folder of its own, e.g. root = "/srv/deliveries"`, s)
			} else {
				w.Root = p
			}
		}
	} else if ok || !t.has("root") {
		p := t.pos
		if ok {
			p = t.valPos("root")
		}
		t.errorf(p, `watch.root is required: the folder that holds the drop folders, e.g. root = "/srv/deliveries" under [watch]`)
	}
	if s, ok := t.str("bin", "a folder name"); ok {
		if oneName(s) && s != "_delivered" {
			w.Bin = s
		} else {
			t.errorf(t.valPos("bin"), `watch.bin: %q must be one folder name inside watch.root (not "_delivered"), like "_bin"`, s)
		}
	}
	if s, ok := t.str("folder", "a folder template"); ok && t.template("folder", s, false) {
		w.Folder = s
	}
	t.setDuration("settle", &w.Settle)
	t.setDuration("rescan", &w.Rescan)
	t.setDuration("poll", &w.Poll)
	t.setEnum("mode", &w.Mode, "auto", "events", "poll")
	if list, ok := t.strList("ignore"); ok {
		good := true
		for i, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				t.errorf(t.itemPos("ignore", i), "watch.ignore: %q is not a valid pattern: %v", p, err)
				good = false
			}
		}
		if good {
			w.Ignore = list
		}
	}
	if s, ok := t.str("ready_marker", "a file name"); ok {
		if oneName(s) {
			w.ReadyMarker = s
		} else {
			t.errorf(t.valPos("ready_marker"), `watch.ready_marker: %q must be one file name, like "_READY"`, s)
		}
	}
	if s, ok := t.str("folder_mode", `an octal string like "2775"`); ok {
		m, err := parseFolderMode(s)
		switch {
		case err != nil:
			t.errorf(t.valPos("folder_mode"), `watch.folder_mode: %q is not an octal mode; expected e.g. "2775" or "0755"`, s)
		case m.Perm()&0o700 != 0o700:
			t.errorf(t.valPos("folder_mode"), `watch.folder_mode: %q does not let hotdrop (the owner) read, write and enter the folders it makes; expected e.g. "2775"`, s)
		default:
			w.FolderMode = m
		}
	}
	t.setStr("group", &w.Group)
}

// oneName reports whether s is a single, ordinary path element.
func oneName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`+"\x00")
}

// template checks a {field} template at key k. A path template must also
// stay relative and never climb with "..".
func (t *table) template(k, s string, needName bool) bool {
	fields, off, problem := templateProblem(s)
	if problem != "" {
		t.errorf(t.within(k, s, off), "%s: %s", t.label(k), problem)
		return false
	}
	if strings.TrimSpace(s) == "" {
		t.errorf(t.valPos(k), "%s: must not be empty", t.label(k))
		return false
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, `\`) {
		t.errorf(t.valPos(k), "%s: %q must be a relative path", t.label(k), s)
		return false
	}
	for _, el := range strings.Split(s, "/") {
		if el == ".." {
			t.errorf(t.valPos(k), `%s: %q must not contain ".."`, t.label(k), s)
			return false
		}
	}
	if needName && !contains(fields, "name") {
		t.errorf(t.valPos(k), "%s: %q must contain {name}, the file's own name (hotdrop never renames files)", t.label(k), s)
		return false
	}
	return true
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func decodeRequests(t *table, r *Requests, dir string) {
	t.setEnum("source", &r.Source, "file", "http")
	if list, ok := t.strList("files"); ok {
		var globs []string
		good := true
		for i, g := range list {
			if _, err := filepath.Match(g, ""); err != nil {
				t.errorf(t.itemPos("files", i), "requests.files: %q is not a valid glob: %v", g, err)
				good = false
				continue
			}
			if g == "" {
				t.errorf(t.itemPos("files", i), "requests.files: item %d is empty; expected a glob like \"requests.d/*.toml\"", i+1)
				good = false
				continue
			}
			if p, ok := t.checkPath(t.itemPos("files", i), "requests.files", g, dir); ok {
				globs = append(globs, p)
			} else {
				good = false
			}
		}
		if good {
			r.Files = globs
		}
	}
	urlSet := false
	if s, ok := t.str("url", "an http(s) URL"); ok {
		urlSet = true
		if p := httpURLProblem(s); s != "" && p != "" {
			t.errorf(t.valPos("url"), "requests.url: %q: %s", shownURL(s), p)
		} else {
			r.URL = s
			urlSet = s != ""
		}
	} else if t.has("url") {
		urlSet = true // its type error is already reported
	}
	t.setPath("token_file", dir, &r.TokenFile)
	t.setDuration("poll", &r.Poll)
	if n, ok := t.integer("max", 1); ok {
		if n > maxRequestsMax {
			t.errorf(t.valPos("max"), "requests.max: %d requests in one tracker reply is more than the %d hotdrop allows", n, maxRequestsMax)
		} else {
			r.Max = int(n)
		}
	}
	if r.Source == "http" && !urlSet {
		p := t.valPos("source")
		if t.has("url") {
			p = t.valPos("url")
		}
		t.errorf(p, `requests.url is required when requests.source = "http"; expected e.g. url = "https://tracker.example/api"`)
	}
}

// maxRequestsMax bounds requests.max: each request costs a drop folder, journal rows and
// memory, and a tracker reply is read whole (at most 64 MiB).
const maxRequestsMax = 200_000

// maxConcurrency bounds destination.concurrency: each file in flight holds
// an SFTP handle and buffers, and servers cap sessions well below this.
const maxConcurrency = 256

func decodeDestination(t *table, dst *Destination, dir string) {
	if s, ok := t.str("url", "a URL"); ok && s != "" {
		if p := destinationProblem(s); p != "" {
			t.errorf(t.valPos("url"), "destination.url: %q: %s; expected sftp://user@host[:port]/path or file:///path", shownURL(s), p)
		} else {
			dst.URL = s
		}
	} else if ok || !t.has("url") {
		p := t.pos
		if ok {
			p = t.valPos("url")
		}
		t.errorf(p, `destination.url is required: where files are delivered, e.g. url = "sftp://user@host/incoming" or "file:///mnt/outbox" under [destination]`)
	}
	t.setPath("identity_file", dir, &dst.IdentityFile)
	t.setPath("password_file", dir, &dst.PasswordFile)
	if s, ok := t.str("known_hosts", "a path"); ok {
		if s == "" && strings.HasPrefix(dst.URL, "sftp:") {
			t.errorf(t.valPos("known_hosts"), "destination.known_hosts: must name a file: host keys are always verified (hotdrop trust pins one)")
		} else if p, ok := t.checkPath(t.valPos("known_hosts"), "destination.known_hosts", s, dir); ok {
			dst.KnownHosts = p
		}
	}
	if s, ok := t.str("path", "a path template"); ok && t.template("path", s, true) {
		dst.Path = s
	}
	if s, ok := t.str("temp_name", "a name template"); ok {
		if p := tempNameProblem(s); p != "" {
			t.errorf(t.valPos("temp_name"), "destination.temp_name: %q %s; e.g. \".{name}.partial\", \"{name}.partial\" or \".hotdrop-tmp/{name}\"", s, p)
		} else {
			dst.TempName = s
		}
	}
	if n, ok := t.integer("concurrency", 1); ok {
		if n > maxConcurrency {
			t.errorf(t.valPos("concurrency"), "destination.concurrency: %d files in flight is more than the %d hotdrop allows", n, maxConcurrency)
		} else {
			dst.Concurrency = int(n)
		}
	}
	decodeStreams(t, dst)
	if n, ok := t.size("bandwidth"); ok {
		dst.Bandwidth = n
	}
	t.setEnum("checksum", &dst.Checksum, "sha256", "md5", "xxh64", "none")
	t.setEnum("names", &dst.Names, "portable", "any")
	t.setEnum("verify", &dst.Verify, "auto", "size", "hash")
	t.setEnum("after", &dst.After, "keep", "move", "delete")
	t.setBool("manifest", &dst.Manifest)
	t.setDuration("alert_after", &dst.AlertAfter)
	t.setBool("auto_deliver", &dst.AutoDeliver)
	dst.Schedule = decodeSchedule(t.list("schedule"))
}

// MaxStreams bounds destination.streams (the uploader's MaxStreams).
const MaxStreams = 32

// decodeStreams reads destination.streams: "auto" (0) or a number of SFTP
// streams one large file is written over at once.
func decodeStreams(t *table, dst *Destination) {
	v, ok := t.get("streams")
	if !ok {
		return
	}
	switch v := v.(type) {
	case string:
		if v != "auto" {
			t.errorf(t.valPos("streams"), `destination.streams: %q is not allowed; expected "auto" or a number of streams from 1 to %d`, v, MaxStreams)
		}
	case int64:
		if v < 1 || v > MaxStreams {
			t.errorf(t.valPos("streams"), `destination.streams: %d streams is outside 1 to %d; 1 sends each file over one stream, "auto" lets hotdrop choose`, v, MaxStreams)
		} else {
			dst.Streams = int(v)
		}
	default:
		t.typeError(t.valPos("streams"), t.label("streams"), `"auto" or a number of streams like 8`, v)
	}
}

func decodeSchedule(tables []*table) []Window {
	var out []Window
	for _, t := range tables {
		w := Window{Pos: t.pos}
		good := true
		for _, k := range []string{"from", "to"} {
			s, ok := t.str(k, `a time of day like "08:00"`)
			if !ok {
				if !t.has(k) {
					t.errorf(t.pos, `%s is required in every [[destination.schedule]]; expected e.g. %s = "08:00"`, t.label(k), k)
				}
				good = false
				continue
			}
			d, ok := parseClock(s, k == "to")
			if !ok {
				t.errorf(t.valPos(k), `%s: %q is not a time of day; expected "HH:MM" from "00:00" to "23:59" (or "24:00" for to)`, t.label(k), s)
				good = false
				continue
			}
			if k == "from" {
				w.From = d
			} else {
				w.To = d
			}
		}
		if n, ok := t.size("bandwidth"); ok {
			w.Bandwidth = n
		} else {
			if !t.has("bandwidth") {
				t.errorf(t.pos, `destination.schedule.bandwidth is required in every [[destination.schedule]]; expected e.g. bandwidth = "20MiB" ("0" = unlimited)`)
			}
			good = false
		}
		if good && w.From == w.To {
			t.errorf(t.valPos("to"), `destination.schedule: from and to are the same time, so the window is empty; for the whole day use from = "00:00", to = "24:00"`)
			good = false
		}
		if !good {
			continue
		}
		for _, prev := range out {
			if overlap(prev, w) {
				t.errorf(t.pos, "destination.schedule: %s overlaps the window %s at line %d", span(w), span(prev), prev.Pos.Line)
				good = false
				break
			}
		}
		if good {
			out = append(out, w)
		}
	}
	return out
}

// minutes returns the window as one or two [start, end) ranges within a day.
func minutes(w Window) [][2]int {
	from, to := int(w.From.Minutes()), int(w.To.Minutes())
	if from < to {
		return [][2]int{{from, to}}
	}
	return [][2]int{{from, 24 * 60}, {0, to}}
}

func overlap(a, b Window) bool {
	for _, x := range minutes(a) {
		for _, y := range minutes(b) {
			if x[0] < y[1] && y[0] < x[1] {
				return true
			}
		}
	}
	return false
}

func span(w Window) string {
	f := func(d int) string { return fmt.Sprintf("%02d:%02d", d/60, d%60) }
	return f(int(w.From.Minutes())) + "–" + f(int(w.To.Minutes()))
}

func decodeStatus(t *table, s *Status, dir string) {
	loopback := true
	if v, ok := t.str("listen", `an address like "127.0.0.1:8470"`); ok {
		lb, problem := true, ""
		if v != "" {
			lb, problem = listenProblem(v)
		}
		if problem != "" {
			t.errorf(t.valPos("listen"), "status.listen: %q: %s", v, problem)
		} else {
			s.Listen, loopback = v, lb
		}
	}
	n := len(t.d.errs)
	t.setPath("token_file", dir, &s.TokenFile)
	tokenBad := len(t.d.errs) > n
	n = len(t.d.errs)
	t.setPath("tls_cert", dir, &s.TLSCert)
	t.setPath("tls_key", dir, &s.TLSKey)
	tlsBad := len(t.d.errs) > n
	t.setBool("status_files", &s.StatusFiles)
	if v, ok := t.str("webhook", "an http(s) URL"); ok {
		if p := httpURLProblem(v); v != "" && p != "" {
			t.errorf(t.valPos("webhook"), "status.webhook: %q: %s", shownURL(v), p)
		} else {
			s.Webhook = v
		}
	}
	t.setPath("webhook_secret_file", dir, &s.WebhookSecretFile)
	if list, ok := t.strList("hosts"); ok {
		good := true
		for i, h := range list {
			if p := hostNameProblem(h); p != "" {
				t.errorf(t.itemPos("hosts", i), "status.hosts: %q: %s", h, p)
				good = false
			}
		}
		if good {
			s.Hosts = list
		}
	}

	if s.Listen != "" && !loopback && s.TokenFile == "" && !tokenBad {
		t.errorf(t.valPos("listen"), "status.listen: %q is not a loopback address, so status.token_file is required: off loopback every request needs the token", s.Listen)
	}
	if (s.TLSCert == "") != (s.TLSKey == "") && !tlsBad {
		set, unset := "tls_cert", "tls_key"
		if s.TLSCert == "" {
			set, unset = unset, set
		}
		t.errorf(t.valPos(set), "status.%s is set without status.%s; set both for HTTPS, or neither", set, unset)
	}
}

// hostNameProblem says what is wrong with a name for status.hosts ("" when nothing): a
// DNS name or an IP address as it appears in a Host header, without scheme or port.
func hostNameProblem(h string) string {
	if net.ParseIP(strings.Trim(h, "[]")) != nil {
		return ""
	}
	if h == "" || len(h) > 253 {
		return "want a host name like \"hotdrop.vendor.lan\""
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return "want a host name like \"hotdrop.vendor.lan\", without scheme, port or path"
		}
	}
	return ""
}

func decodeChecks(t *table, c *Checks, dir string) {
	t.setBool("probe", &c.Probe)
	t.setPath("ffprobe", dir, &c.FFprobe)
	t.setDuration("timeout", &c.Timeout)
}

// tempNameProblem says what is wrong with destination.temp_name: {name} (the final file's
// own name) once, in its last part; at most one folder before it, below the final file's
// folder, so the rename into place stays within one folder's filesystem; never the final
// name itself. "" when it is fine. The uploader checks the same rule.
func tempNameProblem(s string) string {
	switch {
	case strings.Count(s, "{name}") != 1 || strings.Count(s, "{") != 1 || strings.Count(s, "}") != 1:
		return "must hold {name} once and no other {field}"
	case s == "{name}":
		return "is the final name itself; a partial file must never appear there"
	case strings.HasPrefix(s, "/") || strings.ContainsAny(s, "\\\x00"):
		return "must be a name, or a folder and a name, relative to the final file's folder"
	}
	els := strings.Split(s, "/")
	if len(els) > 2 || !strings.Contains(els[len(els)-1], "{name}") {
		return "may have at most one folder, and {name} in its last part"
	}
	for _, el := range els {
		if el == "" || el == "." || el == ".." {
			return fmt.Sprintf("holds %q, which is not a folder or file name", el)
		}
	}
	return ""
}
