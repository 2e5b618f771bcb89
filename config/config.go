package config

import (
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Config is hotdrop's whole configuration, decoded, defaulted, resolved
// (every path absolute) and validated.
type Config struct {
	File        string // absolute path of the config file
	StateDir    string // absolute
	Watch       Watch
	Requests    Requests
	Destination Destination
	Status      Status
	Checks      Checks
	Rules       []Rule
	SourceTypes []SourceType
}

// Watch is the [watch] table: where drop folders live and how files are
// judged complete.
type Watch struct {
	Root, Bin, Folder    string // Root absolute
	Settle, Rescan, Poll time.Duration
	Mode                 string // "auto" | "events" | "poll"
	Ignore               []string
	ReadyMarker          string
	FolderMode           os.FileMode // parsed from octal string "2775" -> os.ModeSetgid|0775
	Group                string
}

// Requests is the [requests] table: where Source Requests come from.
type Requests struct {
	Source         string   // "file" | "http"
	Files          []string // globs, absolute (relative ones resolved against config dir)
	URL, TokenFile string
	Poll           time.Duration
	Max            int // the most requests one tracker reply may list; more refuses the reply
}

// Window is one [[destination.schedule]] entry: a bandwidth limit for a
// time of day. From > To means the window crosses midnight.
type Window struct {
	From, To  time.Duration // since local midnight; To may be 24h
	Bandwidth int64         // bytes/s, 0 = unlimited
	Pos       Position
}

// Destination is the [destination] table: where and how files are delivered.
type Destination struct {
	URL, IdentityFile, PasswordFile, KnownHosts, Path string
	TempName                                          string // where a file is written before its rename, beside or below the final one
	Concurrency                                       int
	Streams                                           int   // SFTP streams per large file; 0 = "auto"
	Bandwidth                                         int64 // bytes/s, 0 = unlimited
	Checksum, Names, Verify, After                    string
	Manifest                                          bool
	AlertAfter                                        time.Duration
	AutoDeliver                                       bool
	Schedule                                          []Window
}

// Status is the [status] table: how hotdrop reports (HTTP, status files,
// webhook).
type Status struct {
	Listen, TokenFile, TLSCert, TLSKey string
	StatusFiles                        bool
	Webhook, WebhookSecretFile         string
	// Hosts are further names the HTTP server accepts in Host (a reverse proxy's, a DNS name).
	Hosts []string
}

// Checks is the [checks] table: looking inside files before they are sent.
type Checks struct {
	// Probe turns the media probe and the timed-text checks on for the source types whose
	// profile asks for them (IMF packages are checked against their packing lists always).
	Probe   bool
	FFprobe string        // the ffprobe binary; "" = ffprobe from PATH
	Timeout time.Duration // per file
}

// ProfileChecks is a [source_type.checks] table: which content checks a source type gets and
// how strict they are. Nil fields keep the built-in profile's choice.
type ProfileChecks struct {
	Probe, TimedText, IMF, Video *bool
	// Apply lists the properties compared (frame_rate, resolution, duration, channels,
	// sample_rate, language, timing); nil = all.
	Apply             []string
	SampleRate        int    // expected when the metadata gives none; 0 = not set
	Channels          string // expected when the metadata gives none ("5.1"); "" = not set
	DurationTolerance time.Duration
	Pos               Position
}

// Rule is one [[rule]]: a file name pattern for the File Bin.
type Rule struct {
	Name, Pattern string
	// Where holds the compiled [rule.where] expressions by field, each
	// anchored as ^(?:...)$ because it must match a whole capture.
	Where map[string]*regexp.Regexp
	Pos   Position
}

// Field is one metadata field of a source type profile.
type Field struct {
	Required bool
	Values   []string // allowed values; empty = any
}

// SourceType is one [[source_type]]: a profile that overrides or adds to the
// built-in ones (which config does not know).
type SourceType struct {
	Name       string
	Aliases    []string
	Extensions []string // as written, without a leading dot
	Multi      *bool    // nil = not set
	Metadata   map[string]Field
	// RequireChecksum and RequireMarker keep a crashed render's truncated
	// but stable file from being delivered.
	RequireChecksum, RequireMarker bool
	SuspectFrames                  *bool // nil = not set
	// Checks, when set, overrides the source type's content checks.
	Checks *ProfileChecks
	Pos    Position
}

// The defaults SPEC.md documents that a component also falls back on when its caller (a
// test, mostly) leaves the option zero: defined here once, so the two cannot drift apart.
// Everything else config resolves at load and components read as given.
const (
	DefaultReadyMarker  = "_READY"
	DefaultSettle       = 30 * time.Second
	DefaultRescan       = 10 * time.Minute
	DefaultPoll         = 5 * time.Second
	DefaultRequestsPoll = time.Minute
	DefaultRequestsMax  = 20_000
	DefaultTempName     = ".{name}.partial"
	DefaultConcurrency  = 4
	DefaultVerify       = "auto"
	DefaultProbeTimeout = time.Minute
)

// Default returns a Config holding every default SPEC.md documents. Root and
// destination URL have none: Parse requires them.
func Default() *Config {
	return &Config{
		StateDir: "/var/lib/hotdrop",
		Watch: Watch{
			Bin:         "_bin",
			Folder:      "{title}/{source_type} {language} [{id}]",
			Settle:      DefaultSettle,
			Rescan:      DefaultRescan,
			Mode:        "auto",
			Poll:        DefaultPoll,
			Ignore:      []string{".*", "*.part", "*.partial", "*.tmp", "*~", "*.crdownload", "Thumbs.db", "desktop.ini"},
			ReadyMarker: DefaultReadyMarker,
			FolderMode:  os.ModeSetgid | 0o775,
		},
		Requests: Requests{
			Source: "file",
			Files:  []string{"/etc/hotdrop/requests.d/*.toml"},
			Poll:   DefaultRequestsPoll,
			Max:    DefaultRequestsMax,
		},
		Destination: Destination{
			KnownHosts:  "/etc/hotdrop/known_hosts",
			Path:        "{package_id}/{source_type}/{name}",
			TempName:    DefaultTempName,
			Concurrency: DefaultConcurrency,
			Checksum:    "sha256",
			Names:       "portable",
			Verify:      DefaultVerify,
			After:       "keep",
			Manifest:    true,
			AlertAfter:  10 * time.Minute,
			AutoDeliver: true,
		},
		Status: Status{
			Listen:      "127.0.0.1:8470",
			StatusFiles: true,
		},
		Checks: Checks{Probe: true, Timeout: DefaultProbeTimeout},
	}
}

// DefaultPath is where the config is read from when --config is not given:
// $HOTDROP_CONFIG, or /etc/hotdrop/hotdrop.toml.
func DefaultPath() string {
	if p := os.Getenv("HOTDROP_CONFIG"); p != "" {
		return p
	}
	return "/etc/hotdrop/hotdrop.toml"
}

// Load reads and parses the config file at path. Errors name path as given.
// The error, when not nil, is an ErrorList.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, ErrorList{{Pos: Position{File: path}, Msg: "cannot read the config file: " + err.Error(), Err: err}}
	}
	return Parse(path, data)
}

// Parse decodes and validates a config file's contents. file names the file
// in errors and its folder anchors relative paths. Every problem found is
// returned, as an ErrorList in the order they appear in the file; the Config
// is nil then.
func Parse(file string, data []byte) (*Config, error) {
	c, err := parse(file, data)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// LoadPartial is Load for a reader of the state (hotdrop status) that must go on with a
// config a person is in the middle of fixing: with the file's errors it also returns what
// could be decoded, each value in error left at its default, where the file decodes at all.
// Nothing that acts (run, a reload) may use it.
func LoadPartial(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, ErrorList{{Pos: Position{File: path}, Msg: "cannot read the config file: " + err.Error(), Err: err}}
	}
	return parse(path, data)
}

func parse(file string, data []byte) (*Config, error) {
	c := Default()
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, ErrorList{{Pos: Position{File: file}, Msg: "cannot make the config path absolute: " + err.Error(), Err: err}}
	}
	c.File = abs
	dir := filepath.Dir(abs)

	d, root := decode(file, data)
	if root == nil {
		return nil, d.errs.err()
	}
	if s, ok := root.str("state_dir", "a path"); ok {
		if s == "" {
			root.errorf(root.valPos("state_dir"), `state_dir: must not be empty; expected a folder like "/var/lib/hotdrop"`)
		} else if p, ok := root.checkPath(root.valPos("state_dir"), "state_dir", s, dir); ok {
			c.StateDir = p
		}
	}
	decodeWatch(root.sub("watch"), &c.Watch, dir)
	decodeRequests(root.sub("requests"), &c.Requests, dir)
	decodeDestination(root.sub("destination"), &c.Destination, dir)
	decodeStatus(root.sub("status"), &c.Status, dir)
	decodeChecks(root.sub("checks"), &c.Checks, dir)
	c.Rules = decodeRules(root.list("rule"))
	c.SourceTypes = decodeSourceTypes(root.list("source_type"))
	d.checkUnknown()

	if len(d.errs) > 0 {
		d.errs.sortByPosition()
		return c, d.errs
	}
	return c, nil
}
