package matcher

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"golang.org/x/text/language"

	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/internal/textdist"
)

// NamesPortable is the destination.names policy that allows only portable names.
const NamesPortable = "portable"

// NameProblem is the destination.names policy: why the remote path rel is refused under
// policy ("portable" or "any"), or "" when it may be sent. Every place that holds a name
// invalid_name (judging a file, the engine's remote path, hotdrop send) asks this.
func NameProblem(policy, rel string) string {
	if p := UnsafeNameProblem(rel); p != "" {
		return p
	}
	if policy == NamesPortable {
		return PortableNameProblem(rel)
	}
	return ""
}

// UnsafeNameProblem says why a remote path is refused under every destination.names policy,
// or "": a control character (a newline would inject lines into NAME.sha256 and the logs), a
// backslash (a separator on a Windows server, where ..\ escapes the folder) or an empty, "."
// or ".." component.
func UnsafeNameProblem(rel string) string {
	for _, r := range rel {
		switch {
		case unicode.IsControl(r):
			return fmt.Sprintf("the name %q holds a control character (%q); hotdrop never sends such names, whatever destination.names says: rename the file", rel, r)
		case r == '\\':
			return fmt.Sprintf("the name %q holds a backslash, a folder separator on Windows servers; hotdrop never sends such names, whatever destination.names says: rename the file", rel)
		}
	}
	for _, el := range strings.Split(rel, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Sprintf("the name %q has an empty, \".\" or \"..\" part; hotdrop never sends such names, whatever destination.names says: rename the file", rel)
		}
	}
	return ""
}

// PortableNameProblem says why a relative slash path would be refused under
// destination.names = "portable", or "" when it is fine: every element only [A-Za-z0-9._-],
// the whole path at most 255 bytes.
func PortableNameProblem(rel string) string {
	if len(rel) > 255 {
		return fmt.Sprintf("the path %q is %d bytes long; the studio's server accepts at most 255", rel, len(rel))
	}
	var bad []string
	seen := map[rune]bool{}
	for _, r := range rel {
		if r == '/' || r == '.' || r == '_' || r == '-' || (r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			continue
		}
		if !seen[r] {
			seen[r] = true
			if r == ' ' {
				bad = append(bad, "space")
			} else {
				bad = append(bad, fmt.Sprintf("%q", r))
			}
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("the name %q has characters the studio's server may reject (%s); only A-Z a-z 0-9 . _ - are allowed: rename the file, or set destination.names = \"any\"",
		rel, strings.Join(bad, ", "))
}

// Ext returns a file name's extension in lower case without the dot, or "".
func Ext(name string) string {
	e := filepath.Ext(name)
	if len(e) <= 1 || e == name {
		return ""
	}
	return strings.ToLower(e[1:])
}

// extensionProblem says why the profile refuses the file's extension, or "".
func extensionProblem(p *Profile, name string) string {
	if len(p.Extensions) == 0 {
		return ""
	}
	e := Ext(name)
	for _, x := range p.Extensions {
		if x == e {
			return ""
		}
	}
	shown := "no extension"
	if e != "" {
		shown = "." + e
	}
	return fmt.Sprintf("%s has %s; %s files take %s", name, shown, p.Name, listExt(p.Extensions))
}

func listExt(exts []string) string {
	s := make([]string, len(exts))
	for i, e := range exts {
		s[i] = "." + e
	}
	return strings.Join(s, ", ")
}

// metadataProblems returns the required fields that are missing and, for fields with allowed
// values, those whose value is not allowed (as "field: \"v\" is not one of a, b").
func metadataProblems(p *Profile, md Metadata) (missing, invalid []string) {
	for _, f := range sortedFields(p.Metadata) {
		spec := p.Metadata[f]
		v, ok := md[f]
		if !ok || strings.TrimSpace(v.Value) == "" {
			if spec.Required {
				missing = append(missing, f)
			}
			continue
		}
		if f == "language" {
			if _, err := language.Parse(v.Value); err != nil {
				invalid = append(invalid, fmt.Sprintf("language: %q (from %s) is not a BCP 47 language tag like fr-FR", v.Value, v.Origin()))
				continue
			}
		}
		if len(spec.Values) > 0 && !allowed(f, v.Value, spec.Values) {
			invalid = append(invalid, fmt.Sprintf("%s: %q (from %s) is not one of %s", f, v.Value, v.Origin(), strings.Join(spec.Values, ", ")))
		}
	}
	return missing, invalid
}

// allowed compares ignoring case, numbers by value ("24.0" is "24"), languages as BCP 47.
func allowed(field, v string, values []string) bool {
	n, nerr := strconv.ParseFloat(v, 64)
	for _, a := range values {
		if strings.EqualFold(a, v) {
			return true
		}
		if m, err := strconv.ParseFloat(a, 64); err == nil && nerr == nil && m == n {
			return true
		}
		if field == "language" {
			t1, e1 := language.Parse(a)
			t2, e2 := language.Parse(v)
			if e1 == nil && e2 == nil && t1 == t2 {
				return true
			}
		}
	}
	return false
}

// checksumExts are the writers' checksum files hotdrop reads, by algorithm.
var checksumExts = []string{"md5", "sha256", "xxh64"}

// Checksum is a writer's checksum file beside a file: what it says the file's digest is.
type Checksum struct {
	File string // the checksum file, absolute
	Algo string // "md5", "sha256" or "xxh64"
	Hex  string // lower-case hex digest
	base string // the folder Verify opens the file beneath (watch.root)
}

// ErrChecksumMismatch is returned (wrapped) by Checksum.Verify when the file's digest differs.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// Verify hashes the file at path and compares it with the checksum file. It reads the whole
// file: call it off any loop that must stay responsive, once the file is ready. A mismatch
// wraps ErrChecksumMismatch; other errors are the file's read errors, wrapped with the path.
// The file is opened without following a link and without blocking on a FIFO.
func (c Checksum) Verify(ctx context.Context, path string) error {
	f, err := safefs.OpenUnder(c.base, path)
	if err != nil {
		return fmt.Errorf("verify %s against %s: %w", path, c.File, err)
	}
	defer f.Close()
	return c.VerifyReader(ctx, path, f)
}

// VerifyReader is Verify for a file the caller has opened: r is the content of path.
func (c Checksum) VerifyReader(ctx context.Context, path string, r io.Reader) error {
	var h hash.Hash
	switch c.Algo {
	case "md5":
		h = md5.New()
	case "sha256":
		h = sha256.New()
	default:
		h = xxhash.New()
	}
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := r.Read(buf)
		h.Write(buf[:n])
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("verify %s: %w", path, rerr)
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != c.Hex {
		return fmt.Errorf("%s: %s is %s but %s says %s: %w", filepath.Base(path), c.Algo, got, filepath.Base(c.File), c.Hex, ErrChecksumMismatch)
	}
	return nil
}

// readChecksums finds and parses the writers' checksum files beside path.
// They are opened beneath base without following a link at any level and without blocking
// on a FIFO swapped in.
func readChecksums(u *safefs.Under, base, path string) ([]Checksum, *SidecarError) {
	var out []Checksum
	for _, algo := range checksumExts {
		file := path + "." + algo
		f, err := u.Open(file)
		if absent(err) {
			continue
		}
		if errors.Is(err, safefs.ErrUnsafe) {
			return nil, &SidecarError{File: file, Msg: safefs.Refusal("is not a regular file, or a folder on its path is a symbolic link"), Err: err}
		}
		if err != nil {
			return nil, &SidecarError{File: file, Msg: "cannot read the checksum file: " + err.Error(), Err: err}
		}
		c, serr := parseChecksumFile(file, algo, filepath.Base(path), f)
		c.base = base
		f.Close()
		if serr != nil {
			return nil, serr
		}
		out = append(out, c)
	}
	return out, nil
}

// parseChecksumFile reads md5sum format ("HEX  NAME" or "HEX *NAME", one a line; a bare HEX
// also counts) and returns the line for name, or the only line when there is one.
func parseChecksumFile(file, algo, name string, r io.Reader) (Checksum, *SidecarError) {
	want := map[string]int{"md5": 32, "sha256": 64, "xxh64": 16}[algo]
	// Read whole and bounded: a file cut at the cap would be checked on a part of itself.
	data, err := io.ReadAll(io.LimitReader(r, maxSidecar+1))
	if err != nil {
		return Checksum{}, &SidecarError{File: file, Msg: "cannot read the checksum file: " + err.Error(), Err: err}
	}
	if len(data) > maxSidecar {
		return Checksum{}, &SidecarError{File: file, Msg: fmt.Sprintf("is larger than %d bytes; a checksum file holds one line per file (md5sum format)", maxSidecar)}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []Checksum
	var names []string
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "\\")
		digest, rest, _ := strings.Cut(line, " ")
		if len(digest) != want || !isHex(digest) {
			return Checksum{}, &SidecarError{File: file, Line: n, Col: 1, Msg: fmt.Sprintf("expected %d hex digits of %s and the file name (md5sum format)", want, algo)}
		}
		rest = strings.TrimPrefix(strings.TrimPrefix(rest, " "), "*")
		lines = append(lines, Checksum{File: file, Algo: algo, Hex: strings.ToLower(digest)})
		names = append(names, filepath.Base(filepath.FromSlash(rest)))
	}
	if err := sc.Err(); err != nil {
		// bufio.ErrTooLong: a line past 64 KiB is no checksum line.
		return Checksum{}, &SidecarError{File: file, Line: n, Col: 1, Msg: fmt.Sprintf("a line longer than %d bytes; expected %d hex digits of %s and the file name (md5sum format)", bufio.MaxScanTokenSize, want, algo), Err: err}
	}
	for i, n := range names {
		if n == name {
			return lines[i], nil
		}
	}
	if len(lines) == 1 {
		return lines[0], nil
	}
	return Checksum{}, &SidecarError{File: file, Msg: fmt.Sprintf("has no line for %s", name)}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// markerPresent looks for the ready marker in the file's folder and each folder above it up
// to root.
func markerPresent(u *safefs.Under, root, path, marker string) (string, bool) {
	dir := filepath.Dir(path)
	for {
		p := filepath.Join(dir, marker)
		if _, err := u.Lstat(p); err == nil {
			return p, true
		}
		if dir == root || !within(root, dir) {
			return "", false
		}
		dir = filepath.Dir(dir)
	}
}

// within reports whether p is root or below it.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// ownFiles are the names hotdrop writes into watched folders; they are never delivered.
var ownFiles = []string{".hotdrop-status.json"}

// Auxiliary tells whether the file at path is never delivered itself, and what it is: the
// ready marker, a folder sidecar (_metadata.toml/.json), hotdrop's own status file, a sidecar
// NAME.toml/NAME.json or a writer's checksum file NAME.md5/.sha256/.xxh64. A NAME.toml is
// taken as a sidecar when NAME exists or has an extension of its own (ep1.ttml.toml), so a
// sidecar written before its file is not mistaken for a delivery. It is safe for concurrent
// use and only calls Lstat.
func (m *Matcher) Auxiliary(path string) (bool, string) {
	base := filepath.Base(path)
	switch {
	case base == m.marker:
		return true, "the ready marker"
	case base == folderSidecarNames[0] || base == folderSidecarNames[1]:
		return true, "a folder sidecar: its values apply to every file in this folder and below"
	case contains(ownFiles, base):
		return true, "hotdrop's own status file"
	}
	for _, x := range append([]string{"toml", "json"}, checksumExts...) {
		stem, ok := strings.CutSuffix(base, "."+x)
		if !ok || stem == "" {
			continue
		}
		what := "the sidecar of " + stem
		if x != "toml" && x != "json" {
			what = "the writer's " + x + " checksum file of " + stem
		}
		if Ext(stem) != "" && !strings.HasPrefix(stem, ".") {
			return true, what
		}
		if fi, err := safefs.LstatUnder(m.base(filepath.Dir(path)), strings.TrimSuffix(path, "."+x)); err == nil && !fi.IsDir() {
			return true, what
		}
	}
	return false, ""
}

// Affected tells which files must be evaluated again when the auxiliary file at path appears,
// changes or goes: the one file it describes (NAME.toml, NAME.json, NAME.md5... → NAME), or
// every file in its folder and below (_metadata.toml/.json and the ready marker → the folder,
// with below set). ok is false when path is not an auxiliary file.
func (m *Matcher) Affected(path string) (target string, below, ok bool) {
	aux, _ := m.Auxiliary(path)
	if !aux {
		return "", false, false
	}
	base := filepath.Base(path)
	if base == m.marker || base == folderSidecarNames[0] || base == folderSidecarNames[1] {
		return filepath.Dir(path), true, true
	}
	if contains(ownFiles, base) {
		return "", false, true
	}
	return strings.TrimSuffix(path, filepath.Ext(path)), false, true
}

// closeField returns a field written in a sidecar that is probably a misspelling of want
// (frame_rte for frame_rate), or "".
func closeField(md Metadata, want string) string {
	best, bestDist := "", 3
	for k, v := range md {
		if v.Source != FromSidecar && v.Source != FromFolderSidecar {
			continue
		}
		if d := textdist.Levenshtein(k, want); d > 0 && d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}
