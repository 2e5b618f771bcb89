package matcher

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/safefs"
)

// Hold reasons the matcher gives (SPEC.md, Words). The delivery engine adds the others
// (too_many_files, already_delivered, remote_exists...).
const (
	HoldMissingMetadata      = "missing_metadata"
	HoldInvalidMetadata      = "invalid_metadata"
	HoldInvalidSidecar       = "invalid_sidecar"
	HoldNoMatchingRequest    = "no_matching_request"
	HoldAmbiguousMatch       = "ambiguous_match"
	HoldRequestNotOpen       = "request_not_open"
	HoldUnsupportedExtension = "unsupported_extension"
	HoldUnsafePath           = "unsafe_path"
	HoldInvalidName          = "invalid_name"
	HoldChecksumMismatch     = "checksum_mismatch"
)

// Rule is one [[rule]] from the config.
type Rule struct {
	Name    string
	Pattern string
	// Where constrains captures by regular expression; each must match a whole capture (New
	// anchors them, so an expression already anchored by the config works as well).
	Where map[string]*regexp.Regexp
	Pos   string // where the rule is written (FILE:LINE:COL), for errors
}

// RuleError is a rule New cannot use. Err is a *PatternError when the pattern is at fault.
type RuleError struct {
	Index int // position in Options.Rules
	Name  string
	Pos   string
	Err   error
}

// Error returns "POS: rule NAME: problem".
func (e *RuleError) Error() string {
	p := e.Pos
	if p != "" {
		p += ": "
	}
	return fmt.Sprintf("%srule %q: %v", p, e.Name, e.Err)
}

// Unwrap returns the cause.
func (e *RuleError) Unwrap() error { return e.Err }

// Options is what a Matcher is built from. cmd/hotdrop assembles it from the config.
type Options struct {
	Rules       []Rule
	SourceTypes []SourceType // overrides and additions to BuiltinProfiles
	Requests    []Request    // every known request, whatever its status
	ReadyMarker string       // watch.ready_marker; "" = config.DefaultReadyMarker
	// Names is destination.names: "portable" holds names outside [A-Za-z0-9._-] (invalid_name);
	// anything else allows any name.
	Names string
	// Root is watch.root: sidecars, checksum files and the ready marker are read beneath it
	// without following a link at any level (render-farm users can swap folders for links).
	// Empty: beneath each Input's Root.
	Root string
}

// Matcher judges files against rules, profiles and requests. It is immutable and safe for
// concurrent use; build a new one when any of its inputs change.
type Matcher struct {
	rules  []rule
	ps     *profiles
	ix     *index
	marker string
	names  string // destination.names
	root   string // Options.Root, cleaned
}

type rule struct {
	Rule
	pat   *Pattern
	where map[string]*regexp.Regexp // anchored
}

// New parses every rule's pattern, merges the profiles and indexes the requests. A rule whose
// pattern cannot be parsed, or whose where names a field the pattern does not capture, is a
// *RuleError; an alias naming two profiles is an error too.
func New(o Options) (*Matcher, error) {
	ps, err := buildProfiles(o.SourceTypes)
	if err != nil {
		return nil, err
	}
	m := &Matcher{ps: ps, marker: o.ReadyMarker, names: o.Names}
	if o.Root != "" {
		m.root = filepath.Clean(o.Root)
	}
	if m.marker == "" {
		m.marker = config.DefaultReadyMarker
	}
	var fields []string
	for i, r := range o.Rules {
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("rule %d", i+1)
		}
		pat, err := ParsePattern(r.Pattern)
		if err != nil {
			return nil, &RuleError{Index: i, Name: name, Pos: r.Pos, Err: err}
		}
		nr := rule{Rule: r, pat: pat, where: map[string]*regexp.Regexp{}}
		nr.Name = name
		for f, re := range r.Where {
			if re == nil {
				continue
			}
			if !contains(pat.fields, f) {
				return nil, &RuleError{Index: i, Name: name, Pos: r.Pos, Err: fmt.Errorf("where.%s: the pattern has no {%s} capture to constrain", f, f)}
			}
			a, err := regexp.Compile(`^(?:` + re.String() + `)$`)
			if err != nil {
				return nil, &RuleError{Index: i, Name: name, Pos: r.Pos, Err: fmt.Errorf("where.%s: %w", f, err)}
			}
			nr.where[f] = a
		}
		m.rules = append(m.rules, nr)
		fields = append(fields, pat.fields...)
	}
	m.ix = newIndex(ps, o.Requests, fields)
	return m, nil
}

// Profile returns the profile a source type name or alias stands for, or nil.
func (m *Matcher) Profile(sourceType string) *Profile { return m.ps.lookup(sourceType) }

// Files says how many files complete request id: its own files when it set them, else 0 (any
// number, complete with the ready marker) when its source type's profile is multi-file, else
// 1. fromProfile says the profile decided; ok is false for an unknown request.
func (m *Matcher) Files(id string) (files int, fromProfile, ok bool) {
	i, ok := m.ix.byID[strings.ToLower(id)]
	if !ok {
		return 0, false, false
	}
	r := &m.ix.reqs[i].req
	if r.FilesSet {
		return r.Files, false, true
	}
	if p := m.ps.lookup(r.Fields["source_type"]); p != nil {
		if p.Multi {
			return 0, true, true
		}
		return 1, true, true
	}
	return 1, false, true
}

// Profiles returns every profile, built-in ones first, as merged with the config.
func (m *Matcher) Profiles() []*Profile { return append([]*Profile(nil), m.ps.list...) }

// Input is one file to judge.
type Input struct {
	Path string // the file, absolute
	// Root is the folder the file was dropped in, absolute: its request's drop folder, or the
	// File Bin. Folder sidecars are looked for from Root down to the file's folder, never above.
	Root string
	// Request is the id of the request whose drop folder Root is; "" for the File Bin, whose
	// files are matched by the naming rules.
	Request string
	// VerifyChecksums hashes the file against the writers' checksum files now (explain does);
	// otherwise the caller verifies Verdict.Checksums before uploading.
	VerifyChecksums bool
	// Explain records every candidate request in the Trace, not only the outcome.
	Explain bool
}

// Hold is why a file may not be delivered as it stands: a SPEC.md code and a sentence.
type Hold struct {
	Code, Message string
}

// Source says where a metadata value came from, lowest precedence first.
type Source string

// The sources of metadata values. A file sidecar beats the nearest folder sidecar, which beats
// a value captured from the name, which beats the request's own field.
const (
	FromRequest       Source = "request"
	FromName          Source = "name"
	FromFolderSidecar Source = "folder_sidecar"
	FromSidecar       Source = "sidecar"
)

// Value is one metadata value and where it came from.
type Value struct {
	Value  string `json:"value"`
	Source Source `json:"source"`
	From   string `json:"from"` // the request id, the rule's name, or the sidecar's path
	Raw    string `json:"raw,omitempty"`
	Line   int    `json:"line,omitempty"` // the sidecar line it is written on; 0 = unknown
}

// Origin describes the value's source for people: "request SR-1042", "name (rule
// timed-text)", "sidecar /srv/x.ttml.toml".
func (v Value) Origin() string {
	switch v.Source {
	case FromName:
		return "name (rule " + v.From + ")"
	case "":
		return "unknown"
	}
	return strings.ReplaceAll(string(v.Source), "_", " ") + " " + v.From
}

// Metadata is a file's merged metadata by field.
type Metadata map[string]Value

// Values returns the plain values.
func (md Metadata) Values() map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = v.Value
	}
	return out
}

// Verdict is what Evaluate found.
type Verdict struct {
	// Auxiliary, when not "", says what the file is (a sidecar, the ready marker...): it is
	// never delivered and nothing else in the Verdict applies.
	Auxiliary string
	// Request is the id of the request the file belongs to, or "" when none could be decided.
	Request string
	// Hold is nil when nothing holds the file.
	Hold *Hold
	// Wait, when not "", says what the file waits for although nothing is wrong with it (the
	// ready marker its profile requires).
	Wait     string
	Metadata Metadata
	// Profile is the profile of the file's source_type (metadata after merging), or nil.
	Profile *Profile
	// Files is how many files complete the request: its own files when it set them, else 0
	// (any number, ready marker) when its source type's profile is multi-file, else 1.
	// FilesFromProfile says the profile decided.
	Files            int
	FilesFromProfile bool
	// Checksums are the writers' checksum files beside the file. Unless Input.VerifyChecksums
	// was set, the caller must Verify each before uploading (a mismatch is checksum_mismatch).
	Checksums []Checksum
	Trace     Trace
}

// Trace is how the Verdict was reached, for `hotdrop explain`.
type Trace struct {
	Path     string        `json:"path"`
	Root     string        `json:"root"`
	Rel      string        `json:"rel"`
	Folder   string        `json:"folder_request,omitempty"` // the drop folder's request; "" = File Bin
	Sidecars []string      `json:"sidecars,omitempty"`       // applied, lowest precedence first
	Pin      string        `json:"pin,omitempty"`
	Rules    []RuleTrace   `json:"rules,omitempty"`
	Decided  string        `json:"decided_by,omitempty"` // the rule that decided
	Nearest  []Nearest     `json:"nearest,omitempty"`
	Checks   []CheckResult `json:"checks,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
}

// RuleTrace is one rule tried against one name.
type RuleTrace struct {
	Rule      string       `json:"rule"`
	Pattern   string       `json:"pattern"`
	Name      string       `json:"name"`
	Fits      bool         `json:"fits"`
	Why       string       `json:"why,omitempty"` // why it does not fit
	Splits    []SplitTrace `json:"splits,omitempty"`
	Truncated bool         `json:"truncated,omitempty"`
	ri        int          // position in Matcher.rules
}

// SplitTrace is one way the name splits, and the requests it points at.
type SplitTrace struct {
	Captures   []Capture   `json:"captures"`
	Matches    []string    `json:"matches"`             // accepting requests agreeing with every capture
	Looked     string      `json:"looked_at,omitempty"` // which requests the index offered
	Candidates []Candidate `json:"candidates,omitempty"`
	More       int         `json:"more_candidates,omitempty"` // candidates not listed
}

// Candidate is a request looked at for a split, and why it was kept or dropped.
type Candidate struct {
	Request string `json:"request"`
	Status  string `json:"status"`
	Kept    bool   `json:"kept"`
	Diffs   []Diff `json:"diffs,omitempty"`
	Why     string `json:"why"`
}

// Nearest is a request close to an unmatched name.
type Nearest struct {
	Request string `json:"request"`
	Diffs   []Diff `json:"diffs"`
}

// Diff is a field on which a name and a request differ.
type Diff struct {
	Field   string `json:"field"`
	File    string `json:"file"`
	Request string `json:"request"`
}

// String renders the difference as `field "file value" ≠ "request value"`.
func (d Diff) String() string {
	return d.Field + " " + strconv.Quote(d.File) + " ≠ " + strconv.Quote(d.Request) + howTheyDiffer(d.File, d.Request)
}

// CheckResult is one profile or file check.
type CheckResult struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

func (v *Verdict) hold(code, msg string) {
	if v.Hold == nil {
		v.Hold = &Hold{Code: code, Message: msg}
	}
}

func (v *Verdict) check(name string, ok bool, detail string) {
	v.Trace.Checks = append(v.Trace.Checks, CheckResult{name, ok, detail})
}

// Evaluate judges one file: which request it belongs to, its merged metadata and profile, and
// whether anything holds it. It reads the file's sidecars, checksum files and the ready
// marker, and hashes the file only with in.VerifyChecksums. It never panics on bad input and
// reports every problem as a Hold; it is safe for concurrent use. It does not judge the file's
// type: symbolic links, FIFOs and devices are the watcher's to refuse (unsafe_path), and the
// file itself is opened only by VerifyChecksums, which refuses anything but a regular file.
func (m *Matcher) Evaluate(in Input) Verdict {
	u := safefs.NewUnder(m.base(filepath.Clean(in.Root))) // one root for every sidecar, checksum file and marker probed
	defer u.Close()
	return m.evaluate(in, u, nil)
}

// evaluate is Evaluate probing beneath u, and with lk (nil: none) the folder sidecars of a
// look at many files.
func (m *Matcher) evaluate(in Input, u *safefs.Under, lk *look) Verdict {
	v := Verdict{Metadata: Metadata{}}
	path, root := filepath.Clean(in.Path), filepath.Clean(in.Root)
	v.Trace.Path, v.Trace.Root, v.Trace.Folder = path, root, in.Request
	if !filepath.IsAbs(path) || !filepath.IsAbs(root) || !within(root, path) || path == root {
		v.hold(HoldUnsafePath, path+" "+safefs.OutsideRefusal(root))
		return v
	}
	rel, _ := safefs.Rel(root, path) // inside root, as within said
	v.Trace.Rel = rel
	if aux, what := m.Auxiliary(path); aux {
		v.Auxiliary = what
		return v
	}

	layers, serr := readLayers(u, lk, root, path)
	if serr != nil {
		v.hold(HoldInvalidSidecar, serr.Error()+"; fix the sidecar and the file is looked at again")
	}
	pin := ""
	for _, l := range layers {
		v.Trace.Sidecars = append(v.Trace.Sidecars, l.file)
		if p, ok := l.values["request"]; ok {
			pin = p
		}
	}
	v.Trace.Pin = pin

	if p := NameProblem(m.names, rel); p != "" {
		v.hold(HoldInvalidName, p)
		v.check("names", false, p)
	} else if m.names == NamesPortable {
		v.check("names", true, NamesPortable)
	}

	req, caps, capRule := m.owner(&v, in.Request, pin, rel, in.Explain)
	if req != nil {
		v.Request = req.req.ID
	}

	m.merge(&v, req, caps, capRule, layers)
	m.checkFile(&v, in, u, root, path, req)
	return v
}

// base is the folder the matcher reads beneath: watch.root when it is known and holds root.
func (m *Matcher) base(root string) string {
	if m.root != "" && within(m.root, root) {
		return m.root
	}
	return root
}

// owner finds the file's request: its drop folder's, or for a File Bin file the one its
// sidecar pins or the naming rules give. It returns the captures to use as metadata.
func (m *Matcher) owner(v *Verdict, folder, pin, rel string, explain bool) (*entry, []Capture, string) {
	if folder == "" {
		res := m.match(rel, pin, explain, &v.Trace)
		if res.hold != nil {
			v.hold(res.hold.Code, res.hold.Message)
		}
		if res.req < 0 {
			return nil, res.caps, res.rule
		}
		return &m.ix.reqs[res.req], res.caps, res.rule
	}
	i, ok := m.ix.byID[strings.ToLower(folder)]
	if !ok {
		v.hold(HoldNoMatchingRequest, fmt.Sprintf("the drop folder belongs to %s, which is not a known request", folder))
		return nil, nil, ""
	}
	req := &m.ix.reqs[i]
	v.Trace.Notes = append(v.Trace.Notes, fmt.Sprintf("in the drop folder of %s: naming rules are not used", req.req.ID))
	switch {
	case pin != "" && !strings.EqualFold(pin, req.req.ID):
		v.hold(HoldInvalidMetadata, fmt.Sprintf("a sidecar pins %s to %s, but it is in the drop folder of %s; move it, or fix the sidecar's request key", rel, pin, req.req.ID))
	case !req.req.Accepting():
		v.hold(HoldRequestNotOpen, fmt.Sprintf("%s has status %q, which takes no delivery", req.req.ID, req.req.Status))
	}
	return req, nil, ""
}
