package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

// cmdExplain is `hotdrop explain PATH... [--config FILE] [--json]`: for each file, every
// naming rule tried, the requests considered and why each was kept or dropped, the merged
// metadata with the source of every value, and the verdict. It needs neither the daemon nor the
// network: requests come from the requests files, or with requests.source = "http" from the
// state database. A folder stands for the files in it.
func cmdExplain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", "explain PATH... [--config FILE] [--json]", stderr)
	cfgPath := fs.String("config", "", "config file (default $HOTDROP_CONFIG or /etc/hotdrop/hotdrop.toml)")
	asJSON := fs.Bool("json", false, "print one JSON object per path, in an array, for scripts")
	paths, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return usageError{"explain: expected at least one PATH (a file in the File Bin or in a request's drop folder)"}
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reqs, err := knownRequests(ctx, cfg)
	if err != nil {
		return err
	}
	m, err := newMatcher(cfg, reqs)
	if err != nil {
		return err
	}
	var out []explained
	failed := 0
	content := newExplainContent(cfg)
	journal := readExplainJournal(ctx, cfg, func(msg string) { fmt.Fprintf(stderr, "hotdrop: warning: %s\n", msg) })
	for _, p := range paths {
		targets, err := explainTargets(cfg, reqs, p)
		if err != nil {
			fmt.Fprintf(stderr, "hotdrop: %v\n", err)
			failed++
			continue
		}
		for _, t := range targets {
			e := explainOne(m, t)
			explainDelivered(journal, &e)
			explainRequestHold(cfg, reqs, m, journal, &e)
			explainMarker(cfg, reqs, &e)
			content.explain(ctx, &e)
			out = append(out, e)
		}
	}
	out = groupSequences(reqs, out)
	if *asJSON {
		if out == nil {
			out = []explained{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		for i, e := range out {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			writeExplained(stdout, e)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d paths could not be explained", failed, len(paths))
	}
	return nil
}

// explainTarget is one file to explain and where it sits.
type explainTarget struct {
	path, root, request string
	exists              bool
	unsafe              string // why the file is never opened (safefs.TypeRefusal), or ""
	note                string
}

// explainTargets places a path: in the File Bin, or in the drop folder of a request (the
// deepest one holding it). A folder stands for every file below it, except the writers' temp
// files of watch.ignore. A bare name that does not exist is judged as a File Bin file of that
// name, so a coordinator can ask what a name would do before anyone renders it.
func explainTargets(cfg *config.Config, reqs []config.Request, arg string) ([]explainTarget, error) {
	abs, err := filepath.Abs(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	bin := filepath.Join(cfg.Watch.Root, filepath.FromSlash(cfg.Watch.Bin))
	fi, err := os.Lstat(abs)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	note := ""
	if !exists && !strings.ContainsAny(arg, `/\`) && !under(cfg.Watch.Root, abs) {
		abs, note = filepath.Join(bin, arg), "the file does not exist: judged as a File Bin file of that name"
	} else if !exists {
		note = "the file does not exist: judged by its name"
	}
	isDir := exists && fi.IsDir()
	root, request := "", ""
	if rel, err := filepath.Rel(cfg.Watch.Root, abs); err == nil && under(cfg.Watch.Root, abs) {
		// Placed as the engine places it (delivery.Locate); a folder stands for the files below.
		id, name, inBin := delivery.Locate(dropFolders(cfg, reqs), cfg.Watch.Bin, filepath.ToSlash(rel))
		switch {
		case inBin && (abs != bin || isDir):
			root = bin
		case id != "" && (name != "." || isDir):
			root, request = filepath.Join(cfg.Watch.Root, filepath.FromSlash(strings.TrimSuffix(filepath.ToSlash(rel), "/"+name))), id
			if name == "." {
				root = abs
			}
		}
	}
	if root == "" {
		return nil, fmt.Errorf("%s is neither in the File Bin (%s) nor in any request's drop folder below %s", abs, bin, cfg.Watch.Root)
	}
	if isDir {
		var out []explainTarget
		err := filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != abs && watcher.Ignored(cfg.Watch.Ignore, d.Name()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() {
				out = append(out, explainTarget{path: p, root: root, request: request, exists: true, unsafe: unsafeRefusal(d.Type())})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		return out, nil
	}
	t := explainTarget{path: abs, root: root, request: request, exists: exists, note: note}
	if exists {
		t.unsafe = unsafeRefusal(fi.Mode().Type())
	}
	return []explainTarget{t}, nil
}

func under(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// dropFolders maps each request's drop folder (relative to watch.root) to its id, as the
// engine makes them.
func dropFolders(cfg *config.Config, reqs []config.Request) map[string]string {
	out := make(map[string]string, len(reqs))
	for _, r := range reqs {
		if rel, err := delivery.DropFolder(cfg.Watch.Folder, r.Fields, cfg.Watch.Bin); err == nil {
			out[rel] = r.ID
		}
	}
	return out
}

// unsafeRefusal is why hotdrop never follows or opens an entry of type t, or "" for a regular
// file or a folder.
func unsafeRefusal(t fs.FileMode) string {
	if t&(fs.ModeSymlink|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeIrregular) == 0 {
		return ""
	}
	return safefs.TypeRefusal(t)
}

// explained is one path's explanation, as --json prints it.
type explained struct {
	Path             string                   `json:"path"`
	Folder           string                   `json:"folder"` // "bin" or "request"
	Root             string                   `json:"root"`
	Exists           bool                     `json:"exists"`
	Note             string                   `json:"note,omitempty"`
	Auxiliary        string                   `json:"auxiliary,omitempty"`
	Request          string                   `json:"request,omitempty"`
	Hold             *matcher.Hold            `json:"hold,omitempty"`
	Wait             string                   `json:"wait,omitempty"`
	Profile          *explainedProfile        `json:"profile,omitempty"`
	Files            *int                     `json:"files,omitempty"`
	FilesFromProfile bool                     `json:"files_from_profile,omitempty"`
	Metadata         map[string]matcher.Value `json:"metadata"`
	Trace            *matcher.Trace           `json:"trace,omitempty"`
	Marker           *explainedMarker         `json:"ready_marker,omitempty"` // for a request taking any number of files
	Content          *explainedContent        `json:"content,omitempty"`
	Delivered        *explainedDelivery       `json:"delivered,omitempty"` // the journal holds it as delivered
	Verdict          string                   `json:"verdict"`
	Sequence         *explainedSequence       `json:"sequence,omitempty"` // this row stands for a frame sequence
	verdict          matcher.Verdict
}

type explainedDelivery struct {
	Request    string `json:"request"`
	RemotePath string `json:"remote_path"`
	How        string `json:"how"` // why the file now is the one delivered
}

// explainDelivered says a file the journal holds as delivered, as it is now, is delivered:
// the daemon never judges it again, so no hold the judging gave applies to it.
func explainDelivered(j explainJournal, e *explained) {
	f, ok := j.deliveredAsIs(e.Path)
	if !ok {
		return
	}
	e.Delivered = &explainedDelivery{Request: f.RequestID, RemotePath: f.RemotePath, How: "the journal holds this very file as delivered"}
	e.Hold, e.Wait, e.Verdict = nil, "", "delivered"
}

type explainedMarker struct {
	Path    string `json:"path"`
	Present bool   `json:"present"`
}

type explainedProfile struct {
	Name            string                   `json:"name"`
	Multi           bool                     `json:"multi"`
	Extensions      []string                 `json:"extensions"`
	Metadata        map[string]matcher.Field `json:"metadata"`
	RequireChecksum bool                     `json:"require_checksum,omitempty"`
	RequireMarker   bool                     `json:"require_marker,omitempty"`
	SuspectFrames   bool                     `json:"suspect_frames,omitempty"`
}

// explainOne judges one file, reading its checksum files and hashing it against them too.
func explainOne(m *matcher.Matcher, t explainTarget) explained {
	e := explained{Path: t.path, Folder: "bin", Root: t.root, Exists: t.exists, Note: t.note, Metadata: map[string]matcher.Value{}}
	if t.request != "" {
		e.Folder = "request"
	}
	if t.unsafe != "" {
		e.Hold = &matcher.Hold{Code: matcher.HoldUnsafePath, Message: filepath.Base(t.path) + " " + t.unsafe}
		e.Verdict = "held " + e.Hold.Code
		return e
	}
	v := m.Evaluate(matcher.Input{Path: t.path, Root: t.root, Request: t.request, VerifyChecksums: t.exists, Explain: true})
	e.verdict = v
	e.Auxiliary, e.Request, e.Hold, e.Wait = v.Auxiliary, v.Request, v.Hold, v.Wait
	e.Metadata = v.Metadata
	e.Trace = &v.Trace
	if p := v.Profile; p != nil {
		e.Profile = &explainedProfile{Name: p.Name, Multi: p.Multi, Extensions: p.Extensions, Metadata: p.Metadata,
			RequireChecksum: p.RequireChecksum, RequireMarker: p.RequireMarker, SuspectFrames: p.SuspectFrames}
	}
	if v.Request != "" {
		files := v.Files
		e.Files, e.FilesFromProfile = &files, v.FilesFromProfile
	}
	switch {
	case v.Auxiliary != "":
		e.Verdict = "never delivered"
	case v.Hold != nil:
		e.Verdict = "held " + v.Hold.Code
	case v.Wait != "":
		e.Verdict = "waiting"
	default:
		e.Verdict = "goes to " + v.Request
	}
	return e
}

// explainRequestHold holds a file the naming rules send to a request when the request as a
// whole would hold it: the engine's rule (delivery.RequestHold), judged on the files in the
// drop folder now and, as the daemon does, on what the journal says was delivered before. A
// file the journal holds as delivered, as it is now, is delivered, not held.
func explainRequestHold(cfg *config.Config, reqs []config.Request, m *matcher.Matcher, j explainJournal, e *explained) {
	if e.Delivered != nil || e.Hold != nil || e.Auxiliary != "" || e.Request == "" || e.Files == nil {
		return
	}
	if f, sum, ok := j.deliveredAgain(e.Path); ok && f.RequestID == e.Request {
		e.Delivered = &explainedDelivery{Request: f.RequestID, RemotePath: f.RemotePath,
			How: "written again since it was delivered, with the same bytes (sha256 " + sum[:16] + "…)"}
		e.Verdict = "delivered"
		return
	}
	for _, r := range reqs {
		if r.ID != e.Request {
			continue
		}
		n := 0
		if rel, err := delivery.DropFolder(cfg.Watch.Folder, r.Fields, cfg.Watch.Bin); err == nil {
			n = countDeliverable(filepath.Join(cfg.Watch.Root, filepath.FromSlash(rel)), cfg.Watch.Ignore, m)
		}
		if e.Folder == "bin" || !e.Exists {
			n++ // the file explained joins them
		}
		dr := delivery.Request{ID: r.ID, Status: r.Status, Files: *e.Files, Fields: r.Fields}
		if code, msg := delivery.RequestHold(dr, n, j.everDelivered[r.ID], j.whole[r.ID]); code != "" {
			e.Hold = &matcher.Hold{Code: code, Message: msg}
			e.Verdict = "held " + code
		}
		return
	}
}

// countDeliverable counts the files below dir the engine would count as its request's: not
// ignored, not auxiliary (sidecars, checksum files, the ready marker).
func countDeliverable(dir string, ignore []string, m *matcher.Matcher) int {
	n := 0
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // what cannot be read is not counted; explain says what it can
		}
		if p != dir && watcher.Ignored(ignore, d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			if aux, _ := m.Auxiliary(p); !aux {
				n++
			}
		}
		return nil
	})
	return n
}

// explainMarker says, for a file of a request that takes any number of files, whether the
// request's ready marker is in its drop folder yet: the engine completes such a request only
// then.
func explainMarker(cfg *config.Config, reqs []config.Request, e *explained) {
	if e.Files == nil || *e.Files != 0 {
		return
	}
	for _, r := range reqs {
		if r.ID != e.Request {
			continue
		}
		rel, err := delivery.DropFolder(cfg.Watch.Folder, r.Fields, cfg.Watch.Bin)
		if err != nil {
			return
		}
		p := filepath.Join(cfg.Watch.Root, filepath.FromSlash(rel), cfg.Watch.ReadyMarker)
		_, err = os.Lstat(p)
		e.Marker = &explainedMarker{Path: p, Present: err == nil}
		return
	}
}

// writeExplained prints one explanation for people.
func writeExplained(w io.Writer, e explained) {
	fmt.Fprintln(w, e.Path)
	if e.Sequence != nil {
		fmt.Fprintln(w, sequenceLine(e.Sequence))
	}
	if e.Note != "" {
		fmt.Fprintf(w, "  note: %s\n", e.Note)
	}
	if e.Folder == "bin" {
		fmt.Fprintf(w, "  folder: the File Bin %s: matched to a request by the naming rules\n", e.Root)
	} else {
		fmt.Fprintf(w, "  folder: the drop folder of %s (%s): naming rules are not used\n", e.verdict.Trace.Folder, e.Root)
	}
	if e.Auxiliary != "" {
		fmt.Fprintf(w, "  verdict: never delivered: it is %s\n", e.Auxiliary)
		return
	}
	if e.Trace == nil { // never opened
		fmt.Fprintf(w, "  verdict: held %s: %s\n", e.Hold.Code, e.Hold.Message)
		return
	}
	writeMatching(w, e.Folder == "bin", e.verdict.Trace)
	writeOutcome(w, e)
}

// writeMatching prints the sidecars read and, for a File Bin file, the rules tried and the
// nearest requests.
func writeMatching(w io.Writer, bin bool, t matcher.Trace) {
	if len(t.Sidecars) == 0 {
		fmt.Fprintln(w, "  sidecars: none")
	} else {
		fmt.Fprintln(w, "  sidecars (lowest precedence first):")
		for _, s := range t.Sidecars {
			fmt.Fprintf(w, "    %s\n", s)
		}
	}
	if t.Pin != "" {
		fmt.Fprintf(w, "  pinned by a sidecar to: %s\n", t.Pin)
	}
	if bin {
		writeRules(w, t)
	}
	if len(t.Nearest) > 0 {
		fmt.Fprintln(w, "  nearest requests:")
		for _, n := range t.Nearest {
			var d []string
			for _, x := range n.Diffs {
				d = append(d, x.String())
			}
			fmt.Fprintf(w, "    %s: %s\n", n.Request, strings.Join(d, ", "))
		}
	}
}

// writeOutcome prints the merged metadata, the profile, the checks and the verdict.
func writeOutcome(w io.Writer, e explained) {
	v, t := e.verdict, e.verdict.Trace
	writeMetadata(w, v.Metadata)
	if p := v.Profile; p != nil {
		kind := "one file"
		if p.Multi {
			kind = "several files"
		}
		fmt.Fprintf(w, "  profile: %s (%s; extensions %s)\n", p.Name, kind, orAnyExt(p.Extensions))
	}
	for _, c := range t.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  check %s %s: %s\n", mark, c.Check, c.Detail)
	}
	for _, n := range t.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if e.Files != nil {
		how := "set by the request"
		if e.FilesFromProfile {
			how = "the default of its source type's profile"
		}
		n := fmt.Sprint(*e.Files)
		if *e.Files == 0 {
			n = "any number, complete when the ready marker appears"
		}
		fmt.Fprintf(w, "  request files: %s (%s)\n", n, how)
	}
	if m := e.Marker; m != nil {
		state := "not there yet: the request is not complete, nothing of it is uploaded"
		if m.Present {
			state = "present: the request is complete once no file of it is settling or held"
		}
		fmt.Fprintf(w, "  ready marker %s: %s\n", m.Path, state)
	}
	writeContent(w, e.Content)
	switch {
	case e.Hold != nil:
		fmt.Fprintf(w, "  verdict: held %s: %s\n", e.Hold.Code, e.Hold.Message)
	case e.Delivered != nil:
		fmt.Fprintf(w, "  verdict: delivered to %s (request %s): %s\n", e.Delivered.RemotePath, e.Delivered.Request, e.Delivered.How)
	case e.Wait != "":
		fmt.Fprintf(w, "  verdict: goes to %s once ready; waiting: %s\n", e.Request, e.Wait)
	case e.Sequence != nil && e.Sequence.Hold != "":
		fmt.Fprintf(w, "  verdict: goes to %s, but the sequence is held %s once the request is complete (above)\n", e.Request, e.Sequence.Hold)
	default:
		fmt.Fprintf(w, "  verdict: goes to %s\n", e.Request)
	}
}

func writeRules(w io.Writer, t matcher.Trace) {
	if len(t.Rules) == 0 {
		fmt.Fprintln(w, "  rules: none in the config")
		return
	}
	for _, r := range t.Rules {
		if !r.Fits {
			fmt.Fprintf(w, "  rule %s %s on %q: does not fit: %s\n", r.Rule, r.Pattern, r.Name, r.Why)
			continue
		}
		decides := ""
		if r.Rule == t.Decided {
			decides = ", decides"
		}
		fmt.Fprintf(w, "  rule %s %s on %q: fits, %d split(s)%s\n", r.Rule, r.Pattern, r.Name, len(r.Splits), decides)
		for i, s := range r.Splits {
			var caps []string
			for _, c := range s.Captures {
				caps = append(caps, fmt.Sprintf("%s=%q", c.Field, c.Value))
			}
			fmt.Fprintf(w, "    split %d: %s\n", i+1, strings.Join(caps, " "))
			if s.Looked != "" {
				fmt.Fprintf(w, "      looked at %s\n", s.Looked)
			}
			if len(s.Candidates) == 0 {
				fmt.Fprintln(w, "      no request has these values")
			}
			for _, c := range s.Candidates {
				mark := "dropped"
				if c.Kept {
					mark = "kept   "
				}
				fmt.Fprintf(w, "      %s %s (%s): %s\n", mark, c.Request, c.Status, c.Why)
			}
			if s.More > 0 {
				fmt.Fprintf(w, "      ... and %d more candidate(s)\n", s.More)
			}
		}
		if r.Truncated {
			fmt.Fprintln(w, "    (the name splits more ways than hotdrop examines)")
		}
	}
}

func writeMetadata(w io.Writer, md matcher.Metadata) {
	if len(md) == 0 {
		fmt.Fprintln(w, "  metadata: none")
		return
	}
	fmt.Fprintln(w, "  metadata:")
	keys := md.SortedFields()
	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	vwidth := 0
	for _, k := range keys {
		vwidth = max(vwidth, len(fmt.Sprintf("%q", md[k].Value)))
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := md[k]
		from := v.Origin()
		if v.Raw != "" {
			from += fmt.Sprintf(", written %q", v.Raw)
		}
		fmt.Fprintf(w, "    %-*s %-*s from %s\n", width, k, vwidth, fmt.Sprintf("%q", v.Value), from)
	}
}

func orAnyExt(exts []string) string {
	if len(exts) == 0 {
		return "any"
	}
	return "." + strings.Join(exts, ", .")
}
