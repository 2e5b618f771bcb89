package uploader

import (
	"fmt"
	"path"
	"strings"
	"unicode"

	"github.com/hotdrop/hotdrop/config"
)

// RemotePath renders destination.path, e.g. "{package_id}/{source_type}/{name}",
// into a slash path relative to the destination URL's folder.
//
// Field values come from requests and sidecars, so each becomes one safe path
// element: anything outside [A-Za-z0-9._-] turns into "_" (so "SDH/CC" gives
// "SDH_CC" and "Audio M&E" gives "Audio_M_E"), runs of "_" collapse to one, and
// ".." or a leading "." never survive. An empty value drops its element.
//
// {name} is the file's slash path inside its drop folder; it is never
// rewritten (sub-folders are kept), but it must be clean and relative.
// The template must use {name}, may not be absolute, and the result may not
// leave the base folder. An unknown {field} is an error naming it.
func RemotePath(tmpl string, fields map[string]string, name string) (string, error) {
	if strings.HasPrefix(tmpl, "/") {
		return "", fmt.Errorf("destination path %q: must be relative to the destination URL's folder", tmpl)
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	var b strings.Builder
	sawName := false
	rest := tmpl
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			b.WriteString(rest)
			break
		}
		if rest[open] == '}' {
			return "", fmt.Errorf("destination path %q: '}' without '{'", tmpl)
		}
		b.WriteString(rest[:open])
		rest = rest[open+1:]
		end := strings.IndexAny(rest, "{}")
		if end < 0 || rest[end] == '{' {
			return "", fmt.Errorf("destination path %q: '{' without '}'", tmpl)
		}
		field := rest[:end]
		rest = rest[end+1:]
		if field == "name" {
			sawName = true
			b.WriteString(name)
			continue
		}
		v, ok := fields[field]
		if !ok {
			return "", fmt.Errorf("destination path %q: unknown field {%s}", tmpl, field)
		}
		b.WriteString(safeElement(v))
	}
	if !sawName {
		return "", fmt.Errorf("destination path %q: must contain {name}, or every file would land on the same path", tmpl)
	}
	out := strings.TrimLeft(path.Clean("/"+b.String()), "/")
	// The leading "/" above makes Clean drop any ".." at the top; check the
	// unrooted form too, so a template like "../{name}" is refused, not hidden.
	if c := path.Clean(b.String()); c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("destination path %q: leaves the destination folder", tmpl)
	}
	if out == "" {
		return "", fmt.Errorf("destination path %q: renders to an empty path", tmpl)
	}
	return out, nil
}

// safeElement makes a field value into one portable path element: characters
// outside [A-Za-z0-9._-] become "_", runs of "_" collapse, ".." and a leading
// "." do not survive. Request fields are typed by people; this is what keeps
// them from adding folders, climbing out of the base or hiding a folder.
func safeElement(v string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(v) {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", "_")
	}
	if strings.HasPrefix(s, ".") {
		s = "_" + s[1:]
	}
	for strings.Contains(s, "__") {
		s = strings.ReplaceAll(s, "__", "_")
	}
	return s
}

// checkName accepts a file's own slash path only when it is clean and relative:
// it is never rewritten, so it must not be able to leave its folder.
func checkName(name string) error {
	if name == "" {
		return fmt.Errorf("file name is empty")
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("file name %q is absolute; want a path inside the drop folder", name)
	}
	if strings.ContainsRune(name, 0) {
		return fmt.Errorf("file name %q contains a NUL byte", name)
	}
	for _, r := range name {
		// A newline would inject lines into NAME.sha256; a backslash is a separator on a
		// Windows server, where ..\ leaves the folder.
		if unicode.IsControl(r) || r == '\\' {
			return fmt.Errorf("file name %q holds %q, which hotdrop never sends whatever destination.names says", name, r)
		}
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("file name %q is not a clean relative path", name)
		}
	}
	return nil
}

// checkTempName accepts destination.temp_name: {name} (the final file's own
// name) once, in the last element; at most one folder before it, below the
// final file's folder, so the rename stays in one folder's filesystem; never
// the final name itself.
func checkTempName(tmpl string) error {
	switch {
	case strings.Count(tmpl, "{name}") != 1 || strings.Count(tmpl, "{") != 1 || strings.Count(tmpl, "}") != 1:
		return fmt.Errorf("destination temp_name %q: must hold {name} once and no other {field}", tmpl)
	case tmpl == "{name}":
		return fmt.Errorf("destination temp_name %q: would write to the final name itself; partial files must never appear there", tmpl)
	case strings.HasPrefix(tmpl, "/") || strings.ContainsAny(tmpl, "\\\x00"):
		return fmt.Errorf("destination temp_name %q: must be a name, or a folder and a name, relative to the final file's folder", tmpl)
	}
	els := strings.Split(tmpl, "/")
	if len(els) > 2 || !strings.Contains(els[len(els)-1], "{name}") {
		return fmt.Errorf("destination temp_name %q: at most one folder, and {name} in the last part", tmpl)
	}
	for _, el := range els {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("destination temp_name %q: %q is not a folder or file name", tmpl, el)
		}
	}
	return nil
}

// PartialOf is where a file bound for rel (relative to the destination's folder) is written
// before its rename, relative too: destination.temp_name rendered beside it.
func (u *Uploader) PartialOf(rel string) string {
	return path.Join(path.Dir(rel), tempRel(u.tempName, path.Base(rel)))
}

// tempRel renders the temporary name of the file called base, relative to
// its folder, as a slash path.
func tempRel(tmpl, base string) string {
	if tmpl == "" {
		tmpl = config.DefaultTempName
	}
	return strings.Replace(tmpl, "{name}", base, 1)
}
