package matcher

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/text/language"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// layer is one sidecar's values.
type layer struct {
	file   string
	source Source
	values map[string]string
	lines  map[string]int
}

// readLayers reads the folder sidecars from root down to the file's folder, then the file's
// own sidecar: lowest precedence first. The first broken sidecar stops the reading; the
// layers read so far are returned with it.
func readLayers(u *safefs.Under, lk *look, root, path string) ([]layer, *SidecarError) {
	var dirs []string
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == root || !within(root, d) || d == filepath.Dir(d) {
			break
		}
	}
	var out []layer
	read := func(names []string, src Source) *SidecarError {
		found := ""
		for _, p := range names {
			var vals map[string]string
			var lines map[string]int
			var ok bool
			var err error
			if src == FromFolderSidecar && lk != nil {
				vals, lines, ok, err = lk.folderSidecar(u, p)
			} else {
				vals, lines, ok, err = readSidecarUnder(u, p)
			}
			if err != nil {
				var se *SidecarError
				if errors.As(err, &se) {
					return se
				}
				return &SidecarError{File: p, Msg: err.Error(), Err: err}
			}
			if !ok {
				continue
			}
			if found != "" {
				return &SidecarError{File: p, Msg: fmt.Sprintf("both %s and %s exist; keep one of them", filepath.Base(found), filepath.Base(p))}
			}
			found = p
			out = append(out, layer{p, src, vals, lines})
		}
		return nil
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := read([]string{filepath.Join(dirs[i], folderSidecarNames[0]), filepath.Join(dirs[i], folderSidecarNames[1])}, FromFolderSidecar); err != nil {
			return out, err
		}
	}
	if err := read([]string{path + ".toml", path + ".json"}, FromSidecar); err != nil {
		return out, err
	}
	return out, nil
}

// merge builds the file's metadata: the request's fields, then the name's captures, then the
// folder sidecars from the farthest to the nearest, then the file's sidecar, each overriding
// the one before. source_type values are shown by profile name and language values as
// canonical BCP 47; Raw keeps what was written.
func (m *Matcher) merge(v *Verdict, req *entry, caps []Capture, rule string, layers []layer) {
	set := func(f, val string, src Source, from string, line int) {
		nv := Value{Value: val, Source: src, From: from, Line: line}
		switch f {
		case "source_type":
			if p := m.ps.lookup(val); p != nil && p.Name != val {
				nv.Value, nv.Raw = p.Name, val
			}
		case "language":
			if tag, err := language.Parse(val); err == nil && tag.String() != val {
				nv.Value, nv.Raw = tag.String(), val
			}
		}
		v.Metadata[f] = nv
	}
	if req != nil {
		for f, val := range req.req.Fields {
			if f != "status" {
				set(f, val, FromRequest, req.req.ID, 0)
			}
		}
	}
	for _, c := range caps {
		set(c.Field, c.Value, FromName, rule, 0)
	}
	for _, l := range layers {
		for f, val := range l.values {
			if f == "request" {
				continue
			}
			if req != nil {
				m.contradiction(v, req, f, val, l.file)
			}
			set(f, val, l.source, l.file, l.lines[f])
		}
	}
}

// contradiction holds a file whose sidecar gives a field of its request another value
// (language = "de-DE" in a fr-FR request's folder): a sidecar adds metadata, and a file that
// says it is something its request is not must not reach the studio silently. Values are
// compared as matching compares them (case, aliases, canonical language tags, Unicode form).
func (m *Matcher) contradiction(v *Verdict, req *entry, field, val, file string) {
	want, ok := req.req.Fields[field]
	if !ok || val == "" || field == "status" || field == "id" || normValue(m.ps, field, val) == normValue(m.ps, field, want) {
		return
	}
	d := Diff{Field: field, File: val, Request: want}
	msg := fmt.Sprintf("%s: the sidecar %s says %q, but request %s says %q%s; a sidecar may add to its request's metadata, not contradict it: correct the sidecar (or move the file to the request it belongs to)",
		field, filepath.Base(file), val, req.req.ID, want, howTheyDiffer(val, want))
	v.check("sidecar against request", false, d.String())
	v.hold(HoldInvalidMetadata, msg)
}

// checkFile works out how many files complete the request, then applies the profile, the
// writers' checksum files and the ready marker.
func (m *Matcher) checkFile(v *Verdict, in Input, u *safefs.Under, root, path string, req *entry) {
	if req != nil {
		v.Files, v.FilesFromProfile, _ = m.Files(req.req.ID)
	}
	if st, ok := v.Metadata["source_type"]; ok {
		v.Profile = m.ps.lookup(st.Value)
		if v.Profile == nil {
			v.Trace.Notes = append(v.Trace.Notes, fmt.Sprintf("no profile for source type %q: extensions and metadata are not checked", st.Value))
		}
	} else {
		v.Trace.Notes = append(v.Trace.Notes, "no source_type: extensions and metadata are not checked")
	}
	if v.Profile != nil {
		checkProfile(v, v.Profile, filepath.Base(path))
	}
	checkChecksums(v, in.VerifyChecksums, u, m.base(root), path)
	if v.Profile != nil && v.Profile.RequireMarker {
		if p, ok := markerPresent(u, root, path, m.marker); ok {
			v.check("ready marker", true, p)
		} else {
			v.Wait = fmt.Sprintf("%s files wait for the ready marker %s beside them or in a folder above them", v.Profile.Name, m.marker)
			v.check("ready marker", false, "not there yet")
		}
	}
}

// checkProfile holds a file whose extension or metadata its profile refuses.
func checkProfile(v *Verdict, p *Profile, name string) {
	if msg := extensionProblem(p, name); msg != "" {
		v.check("extension", false, msg)
		v.hold(HoldUnsupportedExtension, msg)
	} else {
		v.check("extension", true, orAny(listExt(p.Extensions)))
	}
	missing, invalid := metadataProblems(p, v.Metadata)
	if len(missing) > 0 {
		var hints []string
		for _, f := range missing {
			if c := closeField(v.Metadata, f); c != "" {
				hints = append(hints, fmt.Sprintf("%s is given, did you mean %s?", c, f))
			}
		}
		hint := ""
		if len(hints) > 0 {
			hint = " (" + strings.Join(hints, "; ") + ")"
		}
		msg := fmt.Sprintf("%s files need %s; give %s in a sidecar %s.toml (or _metadata.toml in its folder)%s", p.Name, strings.Join(missing, ", "), plural(len(missing), "it", "them"), name, hint)
		v.check("metadata", false, "missing "+strings.Join(missing, ", "))
		v.hold(HoldMissingMetadata, msg)
	}
	if len(invalid) > 0 {
		msg := strings.Join(invalid, "; ")
		v.check("metadata values", false, msg)
		v.hold(HoldInvalidMetadata, msg)
	}
	if len(missing) == 0 && len(invalid) == 0 {
		v.check("metadata", true, "required fields present, values allowed")
	}
}

// checkChecksums reads the writers' checksum files beside the file and, with verify, hashes
// the file against them; a profile's require_checksum holds a file that has none.
func checkChecksums(v *Verdict, verify bool, u *safefs.Under, base, path string) {
	name := filepath.Base(path)
	sums, serr := readChecksums(u, base, path)
	switch {
	case serr != nil:
		v.check("checksum file", false, serr.Error())
		v.hold(HoldInvalidSidecar, serr.Error())
	case len(sums) == 0 && v.Profile != nil && v.Profile.RequireChecksum:
		msg := fmt.Sprintf("%s files need a writer's checksum file beside them (%s.md5, .sha256 or .xxh64) so that a truncated render is never delivered; none is there yet", v.Profile.Name, name)
		v.check("checksum file", false, msg)
		v.hold(HoldChecksumMismatch, msg)
	}
	v.Checksums = sums
	for _, c := range sums {
		if !verify {
			v.check("checksum "+c.Algo, true, "not verified yet: "+filepath.Base(c.File)+" is checked before upload")
			continue
		}
		if err := c.Verify(context.Background(), path); err != nil {
			// A file that cannot be read cannot be shown to agree with its checksum either.
			v.check("checksum "+c.Algo, false, err.Error())
			v.hold(HoldChecksumMismatch, err.Error())
		} else {
			v.check("checksum "+c.Algo, true, filepath.Base(c.File)+" agrees")
		}
	}
}

func orAny(s string) string {
	if s == "" {
		return "any extension"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// SortedFields returns md's field names in order, for stable output.
func (md Metadata) SortedFields() []string {
	out := make([]string, 0, len(md))
	for k := range md {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
