package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDefault spells out SPEC.md's Config section value by value, so a
// changed default is a deliberate edit here too.
func TestDefault(t *testing.T) {
	want := &Config{
		StateDir: "/var/lib/hotdrop",
		Watch: Watch{
			Bin:         "_bin",
			Folder:      "{title}/{source_type} {language} [{id}]",
			Settle:      30 * time.Second,
			Rescan:      10 * time.Minute,
			Mode:        "auto",
			Poll:        5 * time.Second,
			Ignore:      []string{".*", "*.part", "*.partial", "*.tmp", "*~", "*.crdownload", "Thumbs.db", "desktop.ini"},
			ReadyMarker: "_READY",
			FolderMode:  os.ModeSetgid | 0o775,
		},
		Requests: Requests{
			Source: "file",
			Files:  []string{"/etc/hotdrop/requests.d/*.toml"},
			Poll:   time.Minute,
			Max:    20_000,
		},
		Destination: Destination{
			KnownHosts:  "/etc/hotdrop/known_hosts",
			Path:        "{package_id}/{source_type}/{name}",
			TempName:    ".{name}.partial",
			Concurrency: 4,
			Bandwidth:   0,
			Checksum:    "sha256",
			Names:       "portable",
			Verify:      "auto",
			After:       "keep",
			Manifest:    true,
			AlertAfter:  10 * time.Minute,
			AutoDeliver: true,
		},
		Status: Status{
			Listen:      "127.0.0.1:8470",
			StatusFiles: true,
		},
		Checks: Checks{Probe: true, Timeout: time.Minute},
	}
	if got := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("HOTDROP_CONFIG", "")
	if got := DefaultPath(); got != "/etc/hotdrop/hotdrop.toml" {
		t.Errorf("DefaultPath() = %q, want /etc/hotdrop/hotdrop.toml", got)
	}
	t.Setenv("HOTDROP_CONFIG", "/tmp/x.toml")
	if got := DefaultPath(); got != "/tmp/x.toml" {
		t.Errorf("DefaultPath() with HOTDROP_CONFIG = %q, want /tmp/x.toml", got)
	}
}

// TestLoadGood reads a config that sets every key and checks each value
// arrived, relative paths resolved against the config's folder.
func TestLoadGood(t *testing.T) {
	c, err := Load("testdata/good.toml")
	if err != nil {
		t.Fatalf("Load(good.toml): %v", err)
	}
	dir, _ := filepath.Abs("testdata")
	in := func(p string) string { return filepath.Join(dir, p) }
	yes, no := true, false
	want := &Config{
		File:     in("good.toml"),
		StateDir: in("state"),
		Watch: Watch{
			Root:        "/srv/deliveries",
			Bin:         "_inbox",
			Folder:      "{package_id}/{source_type} {language} [{id}]",
			Settle:      45 * time.Second,
			Rescan:      15 * time.Minute,
			Mode:        "poll",
			Poll:        2 * time.Second,
			Ignore:      []string{".*", "*.part"},
			ReadyMarker: "_DONE",
			FolderMode:  os.ModeSetgid | 0o770,
			Group:       "render",
		},
		Requests: Requests{
			Source:    "file",
			Files:     []string{in("requests.d/*.toml"), "/etc/hotdrop/extra/*.toml"},
			URL:       "https://tracker.example/api",
			TokenFile: in("tracker.token"),
			Poll:      90 * time.Second,
			Max:       5000,
		},
		Destination: Destination{
			URL:          "sftp://partner@ingest.example.com:2222/incoming",
			IdentityFile: in("id_ed25519"),
			PasswordFile: "/etc/hotdrop/password",
			KnownHosts:   in("known_hosts"),
			Path:         "{package_id}/{source_type}/{name}",
			TempName:     ".{name}.partial",
			Concurrency:  8,
			Streams:      8,
			Bandwidth:    40 << 20,
			Checksum:     "xxh64",
			Names:        "any",
			Verify:       "hash",
			After:        "move",
			Manifest:     false,
			AlertAfter:   5 * time.Minute,
			AutoDeliver:  false,
			Schedule: []Window{
				{From: 8 * time.Hour, To: 20 * time.Hour, Bandwidth: 20 << 20, Pos: Position{"testdata/good.toml", 42, 1}},
				{From: 22 * time.Hour, To: 6 * time.Hour, Bandwidth: 0, Pos: Position{"testdata/good.toml", 47, 1}},
			},
		},
		Status: Status{
			Listen:            "0.0.0.0:8470",
			TokenFile:         in("status.token"),
			TLSCert:           in("tls/cert.pem"),
			TLSKey:            in("tls/key.pem"),
			StatusFiles:       false,
			Webhook:           "https://hooks.example/hotdrop",
			WebhookSecretFile: in("webhook.secret"),
			Hosts:             []string{"hotdrop.vendor.lan", "10.0.0.5"},
		},
		Rules: []Rule{
			{
				Name:    "timed-text",
				Pattern: "{title}_{episode}_{source_type}_{language}.{ext}",
				Where: map[string]*regexp.Regexp{
					"episode":  regexp.MustCompile(`^(?:S[0-9]{2}E[0-9]{2})$`),
					"language": regexp.MustCompile(`^(?:fr|en-US)$`),
				},
				Pos: Position{"testdata/good.toml", 62, 1},
			},
			{Name: "rule 2", Pattern: "{id}_{name}.{ext}", Where: map[string]*regexp.Regexp{}, Pos: Position{"testdata/good.toml", 69, 1}},
		},
		SourceTypes: []SourceType{
			{
				Name:       "Subtitle",
				Aliases:    []string{"SUB", "ST"},
				Extensions: []string{"ttml", "srt"},
				Multi:      &yes,
				Metadata: map[string]Field{
					"language":   {Required: true, Values: nil},
					"frame_rate": {Required: true, Values: []string{"23.976", "24", "25"}},
				},
				RequireChecksum: true,
				RequireMarker:   true,
				Pos:             Position{"testdata/good.toml", 72, 1},
			},
			{
				Name:       "Final Script",
				Extensions: []string{"pdf"},
				Metadata:   map[string]Field{"format": {Values: []string{"pdf"}}},
				Pos:        Position{"testdata/good.toml", 83, 1},
			},
			{
				Name:     "Audio Print Master",
				Metadata: map[string]Field{},
				Checks: &ProfileChecks{Video: &no, Apply: []string{"channels", "sample_rate"}, SampleRate: 96000, Channels: "7.1",
					DurationTolerance: 2 * time.Second, Pos: Position{"testdata/good.toml", 95, 1}},
				Pos: Position{"testdata/good.toml", 93, 1},
			},
		},
		Checks: Checks{Probe: false, FFprobe: "/opt/ffmpeg/bin/ffprobe", Timeout: 30 * time.Second},
	}
	// Compiled expressions are compared by their source.
	for i := range c.Rules {
		if len(c.Rules[i].Where) != len(want.Rules[i].Where) {
			continue // DeepEqual below reports it
		}
		for k, re := range c.Rules[i].Where {
			if w := want.Rules[i].Where[k]; w != nil && w.String() == re.String() {
				want.Rules[i].Where[k] = re
			}
		}
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(good.toml) =\n%+v\nwant\n%+v", c, want)
	}
}

// TestParseMinimal checks that a config with only the required keys gets
// every other value from Default().
func TestParseMinimal(t *testing.T) {
	src := "[watch]\nroot = \"drops\"\n[destination]\nurl = \"file:///mnt/outbox\"\n"
	c, err := Parse("/etc/hotdrop/hotdrop.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Default()
	want.File = "/etc/hotdrop/hotdrop.toml"
	want.Watch.Root = "/etc/hotdrop/drops"
	want.Destination.URL = "file:///mnt/outbox"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(minimal) =\n%+v\nwant\n%+v", c, want)
	}
}

type wantErr struct {
	line, col int
	msg       string // the message must contain this
}

// TestBadConfigs loads each fixture in testdata/bad and checks every
// problem it reports: how many, where (line and column) and what.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want []wantErr
	}{
		{"unknown_top.toml", []wantErr{
			{2, 1, `unknown key "stat_dir" (did you mean "state_dir"?)`},
		}},
		{"unknown_nested.toml", []wantErr{
			{3, 1, `unknown key "watch.setle" (did you mean "settle"?)`},
			{7, 3, `unknown key "destination.verfiy" (did you mean "verify"?)`},
		}},
		{"wrong_section.toml", []wantErr{
			{1, 1, `unknown key "settle" ("settle" belongs in [watch])`},
			{5, 1, `unknown key "watch.concurrency" ("concurrency" belongs in [destination])`},
			{10, 8, `unknown key "watch.extra"; expected one of bin, folder,`},
		}},
		{"rule_misspelt.toml", []wantErr{
			{11, 1, `rule.pattern is required in every [[rule]]`},
			{13, 1, `unknown key "rule.patern" (did you mean "pattern"?)`},
		}},
		{"wrong_type.toml", []wantErr{
			{3, 17, `watch.ignore: expected an array of strings, but item 2 is integer 3`},
			{4, 10, `watch.settle: expected a duration like "30s" or "2m", got integer 30`},
			{8, 15, `destination.concurrency: expected an integer, got string "4"`},
			{9, 12, `destination.manifest: expected true or false, got string "yes"`},
		}},
		{"bad_duration.toml", []wantErr{
			{3, 10, `watch.settle: "30" is not a duration; expected e.g. "30s" or "2m"`},
			{4, 10, `watch.rescan: must be longer than 0, got "0s"`},
		}},
		{"bad_streams.toml", []wantErr{
			{6, 11, `destination.streams: "many" is not allowed; expected "auto" or a number of streams from 1 to 32`},
		}},
		{"bad_streams_range.toml", []wantErr{
			{6, 11, `destination.streams: 0 streams is outside 1 to 32`},
		}},
		{"bad_streams_type.toml", []wantErr{
			{6, 11, `destination.streams: expected "auto" or a number of streams like 8, got float 2.5`},
		}},
		{"bad_requests_max.toml", []wantErr{
			{5, 7, `requests.max: must be 1 or more, got 0`},
		}},
		{"bad_requests_max_range.toml", []wantErr{
			{5, 7, `requests.max: 1000000 requests in one tracker reply is more than the 200000 hotdrop allows`},
		}},
		{"bad_temp_name.toml", []wantErr{
			{6, 13, `destination.temp_name: "../{name}.partial" holds "..", which is not a folder or file name`},
		}},
		{"bad_size.toml", []wantErr{
			{6, 13, `destination.bandwidth: "40MB/s" is not a size; expected e.g. "40MiB" or "0"`},
			{11, 13, `destination.schedule.bandwidth: "20M" is not a size`},
		}},
		{"bad_mode.toml", []wantErr{
			{3, 8, `watch.mode: "inotify" is not allowed; expected one of "auto", "events" or "poll"`},
			{7, 12, `destination.checksum: "sha1" is not allowed; expected one of "sha256", "md5", "xxh64" or "none"`},
		}},
		{"bad_regexp.toml", []wantErr{
			{11, 11, "rule.where.episode: \"S[0-9\" is not a valid regular expression: error parsing regexp: missing closing ]: `[0-9`"},
			{12, 1, `rule.where.langauge: the pattern has no {langauge} capture to constrain (did you mean "language"?)`},
		}},
		{"bad_schedule.toml", []wantErr{
			{8, 8, `destination.schedule.from: "8:00" is not a time of day; expected "HH:MM"`},
			{17, 1, `destination.schedule: 23:00–07:00 overlaps the window 20:00–24:00 at line 12`},
			{24, 6, `destination.schedule: from and to are the same time`},
		}},
		{"bad_checks.toml", []wantErr{
			{6, 11, `checks.timeout: "soon" is not a duration`},
			{11, 22, `source_type.checks.apply: "framerate" is not a property hotdrop checks (did you mean "frame_rate"?)`},
			{12, 15, `source_type.checks.sample_rate: 48 is not a sample rate in Hz`},
			{13, 12, `source_type.checks.channels: "5.2" is not a channel configuration`},
			{14, 1, `unknown key "source_type.checks.prob" (did you mean "probe"?)`},
		}},
		{"syntax.toml", []wantErr{
			{3, 10, `not valid TOML: expected value but found '=' instead`},
		}},
		{"missing_root.toml", []wantErr{
			{1, 1, `destination.url is required`},
			{3, 1, `watch.root is required`},
		}},
		{"bad_url.toml", []wantErr{
			{5, 7, `destination.url: "sftp://ingest.example.com/incoming": the user name is missing (sftp://user@host/path); expected sftp://user@host[:port]/path or file:///path`},
		}},
		{"bad_folder_mode.toml", []wantErr{
			{3, 15, `watch.folder_mode: "2779" is not an octal mode; expected e.g. "2775" or "0755"`},
		}},
		{"bad_template.toml", []wantErr{
			{3, 19, `watch.folder: "{" is never closed`},
			{7, 22, `destination.path: {Source} is not a field name`},
		}},
		{"bad_profile.toml", []wantErr{
			{10, 14, `unknown key "source_type.metadata.language.requird" (did you mean "required"?)`},
			{11, 26, `source_type.metadata.frame_rate.values: expected an array of strings, but item 1 is float 23.976`},
			{11, 34, `item 2 is integer 25`},
		}},
		{"bad_status.toml", []wantErr{
			{5, 10, `requests.url is required when requests.source = "http"`},
			{11, 10, `status.listen: "0.0.0.0:8470" is not a loopback address, so status.token_file is required`},
			{12, 12, `status.tls_cert is set without status.tls_key`},
			{13, 32, `status.hosts: "https://proxy.example:443": want a host name like "hotdrop.vendor.lan", without scheme, port or path`},
		}},
		{"bad_paths.toml", []wantErr{
			{2, 8, `watch.root: "~/deliveries" starts with ~, which hotdrop does not expand`},
			{3, 21, `watch.ignore: "[a-" is not a valid pattern: syntax error in pattern`},
			{6, 10, `requests.files: "requests.d/[*.toml" is not a valid glob`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := "testdata/bad/" + tt.file
			c, err := Load(path)
			if c != nil {
				t.Errorf("Load(%s) returned a config along with errors", tt.file)
			}
			checkErrors(t, path, err, tt.want)
		})
	}
}

// checkErrors compares an ErrorList with the wanted problems, in order.
func checkErrors(t *testing.T, file string, err error, want []wantErr) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error = %v (%T), want an ErrorList", err, err)
	}
	if len(list) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(list), len(want), err)
	}
	for i := range min(len(list), len(want)) {
		g, w := list[i], want[i]
		if g.Pos.File != file || g.Pos.Line != w.line || g.Pos.Col != w.col || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("error %d = %q\nwant at %s:%d:%d containing %q", i+1, g.Error(), file, w.line, w.col, w.msg)
		}
		if want := g.Pos.String() + ": " + g.Msg; g.Error() != want {
			t.Errorf("Error() = %q, want %q", g.Error(), want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error matching fs.ErrNotExist", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "testdata/does-not-exist.toml: cannot read the config file") {
		t.Errorf("Load(missing) = %q, want it to name the file", err)
	}
}

func TestErrorListString(t *testing.T) {
	l := ErrorList{
		{Pos: Position{"a.toml", 2, 3}, Msg: "first"},
		{Pos: Position{File: "b.toml"}, Msg: "whole file"},
	}
	if got, want := l.Error(), "a.toml:2:3: first\nb.toml: whole file"; got != want {
		t.Errorf("ErrorList.Error() = %q, want %q", got, want)
	}
}

// TestParseBytesOnly checks that Parse never touches the file system: the
// named file does not exist.
func TestParseBytesOnly(t *testing.T) {
	src := []byte("[watch]\nroot = \"/r\"\n[destination]\nurl = \"file:///o\"\n")
	if _, err := Parse("/nowhere/hotdrop.toml", src); err != nil {
		t.Errorf("Parse: %v", err)
	}
}

// TestTempName: destination.temp_name takes a name beside the final file or in one folder
// below it, always with {name}, never the final name itself.
func TestTempName(t *testing.T) {
	for _, tc := range []struct{ value, problem string }{
		{"{name}.partial", ""},
		{".hotdrop-tmp/{name}", ""},
		{"tmp/.{name}.part", ""},
		{"{name}", "final name itself"},
		{".partial", "must hold {name} once"},
		{"{name}.{ext}", "must hold {name} once and no other {field}"},
		{"/tmp/{name}", "relative to the final file's folder"},
		{"a/b/{name}", "at most one folder"},
		{"{name}/x", "{name} in its last part"},
	} {
		src := "[watch]\nroot = \"drops\"\n[destination]\nurl = \"file:///mnt/outbox\"\ntemp_name = \"" + tc.value + "\"\n"
		c, err := Parse("/etc/hotdrop/hotdrop.toml", []byte(src))
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("temp_name = %q: %v, want accepted", tc.value, err)
		case tc.problem == "" && c.Destination.TempName != tc.value:
			t.Errorf("temp_name = %q gave %q", tc.value, c.Destination.TempName)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem) || !strings.Contains(err.Error(), "hotdrop.toml:5:13")):
			t.Errorf("temp_name = %q: %v, want an error at hotdrop.toml:5:13 saying %q", tc.value, err, tc.problem)
		}
	}
}
