package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/language"
)

// Request is one Source Request as written in a requests file.
type Request struct {
	ID, Title, PackageID, SourceType, Language, Status string
	Files                                              int // default 1; 0 = any number (ready marker)
	// FilesSet says whether the request wrote files itself; when it did not, the source
	// type profile's single or multi-file default applies (SPEC.md: the request's own
	// files wins over its profile's default).
	FilesSet bool
	// Fields holds every string field that is set and not empty: id, title,
	// package_id, source_type, language, status and the extras (episode,
	// season, ...). A field that is absent is absent here too, so that it
	// does not constrain matching.
	Fields map[string]string
	Pos    Position // the [[request]] table
}

// ParseRequests decodes one requests file: [[request]] tables. Language is
// stored in its canonical BCP 47 form (fr-fr becomes fr-FR). The error, when
// not nil, is an ErrorList and the requests are nil.
func ParseRequests(file string, data []byte) ([]Request, error) {
	reqs, ids, errs := parseRequests(file, data)
	errs.sortByPosition()
	errs = append(errs, duplicateIDs(reqs, ids)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return reqs, nil
}

// LoadRequests reads every file matching c.Requests.Files, in glob order,
// and checks that ids are unique across all of them. A glob that matches
// nothing is not an error (a tracker may write files there later;
// UnmatchedRequestGlobs finds them for a warning) and folders matching a glob
// are skipped. A plain path (no glob characters) names one file: when it does
// not exist or is a folder, that is an error at its requests.files entry, as
// a typo there would leave the daemon idle. With requests.source = "http"
// there are no files to read and it returns nil, nil. The error, when not
// nil, is an ErrorList and the requests are nil.
func LoadRequests(c *Config) ([]Request, error) {
	if c.Requests.Source != "file" {
		return nil, nil
	}
	var errs ErrorList
	var files []string
	seen := map[string]bool{}
	at := filesPositions(c)
	for i, g := range c.Requests.Files {
		if !isGlob(g) {
			if e := plainRequestsFile(g, at(i)); e != nil {
				errs = append(errs, e)
				continue
			}
		}
		matches, err := filepath.Glob(g)
		if err != nil {
			errs = append(errs, &Error{Pos: at(i), Msg: fmt.Sprintf("requests.files: %q is not a valid glob: %v", g, err), Err: err})
			continue
		}
		for _, m := range matches {
			if seen[m] {
				continue
			}
			seen[m] = true
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				continue
			}
			files = append(files, m)
		}
	}
	var all []Request
	var ids []Position
	for _, f := range files {
		data, err := readFile(f)
		if err != nil {
			errs = append(errs, &Error{Pos: Position{File: f}, Msg: "cannot read the requests file: " + err.Error(), Err: err})
			continue
		}
		reqs, pos, e := parseRequests(f, data)
		e.sortByPosition()
		errs = append(errs, e...)
		all, ids = append(all, reqs...), append(ids, pos...)
	}
	errs = append(errs, duplicateIDs(all, ids)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return all, nil
}

// UnmatchedRequestGlobs returns a warning for each glob of requests.files that matches no
// file now, at its entry in the config file: not an error, since a tracker may write requests
// files there later, but a typo in it would leave the daemon idle just the same.
func UnmatchedRequestGlobs(c *Config) []*Error {
	if c.Requests.Source != "file" {
		return nil
	}
	var warns []*Error
	at := filesPositions(c)
	for i, g := range c.Requests.Files {
		if !isGlob(g) {
			continue // LoadRequests refuses a plain path that names no file
		}
		if matches, err := filepath.Glob(g); err == nil && !anyFile(matches) {
			warns = append(warns, &Error{Pos: at(i), Msg: fmt.Sprintf(
				"requests.files: no file matches %s yet, so no request comes from it; hotdrop reads the files that appear there (it looks every 2 s), but if none should, correct the glob",
				g)})
		}
	}
	return warns
}

// anyFile says whether one of paths is not a folder (LoadRequests skips folders).
func anyFile(paths []string) bool {
	for _, p := range paths {
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return true
		}
	}
	return false
}

// isGlob says whether p holds a character filepath.Glob treats specially; a path without one
// names one file.
func isGlob(p string) bool {
	magic := `*?[`
	if runtime.GOOS != "windows" {
		magic = `*?[\`
	}
	return strings.ContainsAny(p, magic)
}

// plainRequestsFile checks a requests.files entry that names one file: it must be there.
func plainRequestsFile(p string, at Position) *Error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &Error{Pos: at, Err: err, Msg: fmt.Sprintf(
			"requests.files: %s does not exist; expected a requests file of [[request]] tables: correct the path, create the file, or, if it is written later, name it by a glob (like %s), which may match nothing yet",
			p, filepath.Join(filepath.Dir(p), "*.toml"))}
	case err != nil:
		return &Error{Pos: at, Err: err, Msg: fmt.Sprintf("requests.files: %s cannot be read: %v", p, err)}
	case fi.IsDir():
		return &Error{Pos: at, Msg: fmt.Sprintf(
			"requests.files: %s is a folder; expected a requests file or a glob: write %q to read the .toml files in it",
			p, filepath.Join(p, "*.toml"))}
	}
	return nil
}

// filesPositions returns where each requests.files entry is written in the config file,
// found only when asked (the config keeps no positions): an error needs it, a good load not.
func filesPositions(c *Config) func(i int) Position {
	var loc *locator
	located := false
	return func(i int) Position {
		if !located {
			loc, located = relocate(c.File), true
		}
		if loc != nil {
			if p, ok := loc.value(indexKey("requests.files", i)); ok {
				return p
			}
			if p, ok := loc.value("requests.files"); ok {
				return p
			}
		}
		return Position{File: c.File}
	}
}

// parseRequests returns the requests of one file, where each id is written,
// and the problems found.
func parseRequests(file string, data []byte) ([]Request, []Position, ErrorList) {
	d, root := decode(file, data)
	if root == nil {
		return nil, nil, d.errs
	}
	var reqs []Request
	var ids []Position
	for _, t := range root.list("request") {
		t.open = true
		r, idPos, ok := decodeRequest(t)
		if ok {
			reqs, ids = append(reqs, r), append(ids, idPos)
		}
	}
	d.checkUnknown()
	return reqs, ids, d.errs
}

// frameRange is a request's frames field: "1001-2400", or one frame.
var frameRange = regexp.MustCompile(`^\s*[0-9]{1,12}\s*(-\s*[0-9]{1,12}\s*)?$`)

func decodeRequest(t *table) (Request, Position, bool) {
	r := Request{Status: "open", Files: 1, Fields: map[string]string{}, Pos: t.pos}
	n := len(t.d.errs)
	for _, k := range t.keys() {
		if k == "files" {
			if v, ok := t.integer("files", 0); ok {
				r.Files = int(min(v, 1<<30))
				r.FilesSet = true
			}
			continue
		}
		if !fieldName.MatchString(k) {
			t.errorf(t.keyPos(k), "%s: %q is not a field name; expected lower-case letters, digits and _ (like package_id) so naming rules can use it", t.label(k), k)
			continue
		}
		if k == "allow_gaps" { // frame sequences with gaps are delivered (SPEC.md, Frame sequences)
			var b bool
			t.setBool(k, &b)
			r.Fields[k] = strconv.FormatBool(b)
			continue
		}
		s, ok := t.str(k, "a string")
		if !ok {
			continue
		}
		switch k {
		case "id":
			if !validID(s) {
				t.errorf(t.valPos(k), `request.id: %q is not a usable id; expected text without spaces, slashes or control characters, like "SR-1042"`, s)
				continue
			}
			r.ID = s
		case "title":
			r.Title = s
		case "package_id":
			r.PackageID = s
		case "source_type":
			r.SourceType = s
		case "language":
			if s == "" {
				break
			}
			tag, err := language.Parse(s)
			if err != nil {
				t.errorf(t.valPos(k), "request.language: %q is not a valid language tag (%v); expected a BCP 47 tag like fr-FR", s, err)
				continue
			}
			s = tag.String()
			r.Language = s
		case "frames":
			if !frameRange.MatchString(s) {
				t.errorf(t.valPos(k), `request.frames: %q is not a frame range; expected the first and last frame numbers, like "1001-2400"`, s)
				continue
			}
		case "status":
			if strings.TrimSpace(s) == "" {
				t.errorf(t.valPos(k), `request.status: must not be empty; expected e.g. "open"`)
				continue
			}
			r.Status = s
		}
		if s != "" {
			r.Fields[k] = s
		}
	}
	r.Fields["status"] = r.Status
	if !t.has("id") {
		t.errorf(t.pos, `request.id is required in every [[request]]; expected e.g. id = "SR-1042"`)
	}
	return r, t.valPos("id"), len(t.d.errs) == n
}

// validID keeps ids usable in folder and file names (drop folders, manifests).
func validID(s string) bool {
	if !oneName(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// duplicateIDs reports every id used twice, naming where it was first used.
// Ids that differ only in case count as the same: their drop folders would
// collide on a case-insensitive file system.
func duplicateIDs(reqs []Request, at []Position) ErrorList {
	var errs ErrorList
	first := map[string]int{}
	for i, r := range reqs {
		key := strings.ToLower(r.ID)
		j, dup := first[key]
		if !dup {
			first[key] = i
			continue
		}
		msg := fmt.Sprintf("request id %q is already used at %s; ids must be unique across all requests files", r.ID, at[j])
		if reqs[j].ID != r.ID {
			msg = fmt.Sprintf("request id %q differs only in case from %q at %s; ids must be unique across all requests files", r.ID, reqs[j].ID, at[j])
		}
		errs = append(errs, &Error{Pos: at[i], Msg: msg})
	}
	return errs
}
