package matcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/hotdrop/hotdrop/internal/bounded"
	"github.com/hotdrop/hotdrop/internal/safefs"
)

// SidecarError is a sidecar that cannot be used, with where the problem is. Line and Col
// start at 1 (Col counts characters); Line 0 means the file as a whole.
type SidecarError struct {
	File      string
	Line, Col int
	Msg       string
	Err       error
	// unread: the sidecar could not be read (an I/O error, too many open files), not what it
	// says; a look does not keep such an answer for its other files (folderSidecar).
	unread bool
}

// Error returns "FILE:LINE:COL: problem" (or "FILE: problem" without a position).
func (e *SidecarError) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Unwrap returns the underlying cause, if any.
func (e *SidecarError) Unwrap() error { return e.Err }

// maxSidecar bounds what is read: a sidecar is a few lines, and a huge file named like one is
// a mistake that must not exhaust memory.
const maxSidecar = 1 << 20

// ReadSidecar reads the sidecar at path (TOML or JSON by its extension). It returns
// found = false, and no error, when there is no such file. The error, when not nil, is a
// *SidecarError.
// The file is opened without following a link and without blocking on a FIFO.
func ReadSidecar(path string) (values map[string]string, found bool, err error) {
	u := safefs.NewUnder("")
	defer u.Close()
	values, _, found, err = readSidecarUnder(u, path)
	return values, found, err
}

// readSidecarUnder is ReadSidecar for a file beneath base (watch.root), with no link followed
// at any level: a folder swapped for a link must not pull foreign content into metadata.
// lines gives the line each field is written on, for people ("sidecar _metadata.toml:2").
func readSidecarUnder(u *safefs.Under, path string) (values map[string]string, lines map[string]int, found bool, err error) {
	f, err := u.Open(path)
	if absent(err) {
		return nil, nil, false, nil
	}
	if errors.Is(err, safefs.ErrUnsafe) {
		return nil, nil, true, &SidecarError{File: path, Msg: safefs.Refusal("is not a regular file, or a folder on its path is a symbolic link") + "; a sidecar is a small TOML or JSON file", Err: err}
	}
	if err != nil {
		return nil, nil, true, &SidecarError{File: path, Msg: "cannot read the sidecar: " + err.Error(), Err: err, unread: true}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSidecar+1))
	if err != nil {
		return nil, nil, true, &SidecarError{File: path, Msg: "cannot read the sidecar: " + err.Error(), Err: err, unread: true}
	}
	if len(data) > maxSidecar {
		return nil, nil, true, &SidecarError{File: path, Msg: fmt.Sprintf("is larger than %d bytes; a sidecar is a small TOML or JSON file", maxSidecar)}
	}
	values, err = ParseSidecar(path, data)
	if err == nil {
		lines = keyLines(data, values)
	}
	return values, lines, true, err
}

// ParseSidecar decodes a sidecar's contents: a flat table of field = value, where values are
// strings, numbers or booleans (numbers are kept as written in JSON and as Go formats them in
// TOML: frame_rate = 23.976 gives "23.976"). file names the sidecar in errors, and its
// extension (.json or anything else for TOML) says the format. The key "request" pins a file
// to a request. The error, when not nil, is a *SidecarError.
func ParseSidecar(file string, data []byte) (map[string]string, error) {
	if !utf8.Valid(data) {
		return nil, notUTF8(file, data)
	}
	isJSON := strings.HasSuffix(strings.ToLower(file), ".json")
	if isJSON {
		// Windows editors start UTF-8 with a byte order mark; the TOML parser takes it, and
		// so does a JSON sidecar.
		data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	}
	// Anyone who can write into a drop folder writes sidecars: their shape is bounded before
	// a parser sees them (a few KB of nesting costs BurntSushi/toml gigabytes).
	check := bounded.TOML
	if isJSON {
		check = bounded.JSON
	}
	if err := check(data, sidecarLimits); err != nil {
		var be *bounded.Error
		if !errors.As(err, &be) {
			return nil, &SidecarError{File: file, Msg: err.Error(), Err: err}
		}
		return nil, &SidecarError{File: file, Line: be.Line, Col: be.Col, Err: err,
			Msg: be.Msg + `; a sidecar is a flat table of field = value, like language = "fr-FR"`}
	}
	if isJSON {
		return parseJSON(file, data)
	}
	return parseTOML(file, data)
}

// sidecarLimits bound a sidecar before it is parsed. A sidecar is flat, so these are far
// above anything real, and far below what hurts the parsers.
var sidecarLimits = bounded.Limits{MaxBytes: maxSidecar, MaxDepth: 32, MaxKeys: 10_000}

func parseTOML(file string, data []byte) (map[string]string, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &SidecarError{File: file, Line: pe.Position.Line, Col: max(pe.Position.Col, 1), Msg: pe.Message, Err: err}
		}
		return nil, &SidecarError{File: file, Msg: err.Error(), Err: err}
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var pos map[string][2]int // found only when a message needs it
	at := func(k string) (int, int) {
		if pos == nil {
			pos = tomlKeyPositions(data)
		}
		p := pos[k]
		return p[0], p[1]
	}
	out := make(map[string]string, len(raw))
	for _, k := range keys {
		if !fieldName.MatchString(k) {
			line, col := at(k)
			return nil, &SidecarError{File: file, Line: line, Col: col, Msg: fmt.Sprintf("%q is not a field name; expected lower-case letters, digits and _ like frame_rate", k)}
		}
		var s string
		switch v := raw[k].(type) {
		case string:
			s = v
		case int64:
			s = strconv.FormatInt(v, 10)
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			s = strconv.FormatBool(v)
		case time.Time:
			s = v.Format(time.RFC3339)
		default:
			line, col := at(k)
			return nil, &SidecarError{File: file, Line: line, Col: col, Msg: fmt.Sprintf("%s: expected a string, number or boolean, not %s", k, describe(v))}
		}
		out[k] = s
	}
	return out, checkPin(file, out, func() (int, int) { return at("request") })
}

// tomlKeyPositions finds where each top-level key (key = ..., [key], [[key]]) is first
// written, for messages about its value: the TOML decoder keeps no positions for valid
// documents. One pass, so a sidecar of many keys costs no more than its length.
func tomlKeyPositions(data []byte) map[string][2]int {
	pos := map[string][2]int{}
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimLeft(line, " \t")
		col := utf8.RuneCountInString(line[:len(line)-len(t)]) + 1
		var k string
		if h, ok := strings.CutPrefix(t, "["); ok {
			h = strings.TrimLeft(strings.TrimPrefix(h, "["), " \t")
			if end := strings.IndexAny(h, "].\t "); end > 0 {
				k = h[:end]
			}
		} else if end := strings.IndexAny(t, "=.\t "); end > 0 {
			k = t[:end]
		}
		k = strings.Trim(k, `"'`)
		if _, seen := pos[k]; k != "" && !seen {
			pos[k] = [2]int{i + 1, col}
		}
	}
	return pos
}

func describe(v any) string {
	switch v.(type) {
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func parseJSON(file string, data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	at := func(off int64, msg string, err error) error {
		line, col := lineCol(data, off)
		return &SidecarError{File: file, Line: line, Col: col, Msg: msg, Err: err}
	}
	bad := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return at(se.Offset, se.Error(), err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return at(int64(len(data)), "unexpected end of the file; expected a JSON object like {\"language\": \"fr-FR\"}", err)
		}
		return at(dec.InputOffset(), err.Error(), err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, at(0, `expected a JSON object like {"language": "fr-FR"}`, nil)
	}
	out := map[string]string{}
	var pinOff int64
	for dec.More() {
		keyOff := skipSpace(data, dec.InputOffset(), ",")
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		k, _ := tok.(string)
		if !fieldName.MatchString(k) {
			return nil, at(keyOff, fmt.Sprintf("%q is not a field name; expected lower-case letters, digits and _ like frame_rate", k), nil)
		}
		if _, dup := out[k]; dup {
			return nil, at(keyOff, fmt.Sprintf("%q is given twice", k), nil)
		}
		valOff := skipSpace(data, dec.InputOffset(), ":")
		tok, err = dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		switch v := tok.(type) {
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			what := "null"
			if d, ok := v.(json.Delim); ok && d == '[' {
				what = "an array"
			} else if ok {
				what = "an object"
			}
			return nil, at(valOff, fmt.Sprintf("%s: expected a string, number or boolean, not %s", k, what), nil)
		}
		if k == "request" {
			pinOff = keyOff
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, at(skipSpace(data, dec.InputOffset(), ""), "unexpected text after the JSON object", err)
	}
	return out, checkPin(file, out, func() (int, int) { return lineCol(data, pinOff) })
}

// checkPin checks the request key: an id, not empty.
func checkPin(file string, values map[string]string, pos func() (int, int)) error {
	v, ok := values["request"]
	if !ok {
		return nil
	}
	if strings.TrimSpace(v) == "" || strings.ContainsAny(v, " /\\") {
		line, col := pos()
		return &SidecarError{File: file, Line: line, Col: col, Msg: fmt.Sprintf(`request: %q is not a request id; expected e.g. request = "SR-1042"`, v)}
	}
	return nil
}

// skipSpace returns the offset of the first byte at or after off that is neither white space
// nor one of the separators in seps.
func skipSpace(data []byte, off int64, seps string) int64 {
	for off < int64(len(data)) {
		c := data[off]
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' && !strings.ContainsRune(seps, rune(c)) {
			break
		}
		off++
	}
	return off
}

// lineCol converts a byte offset to a 1-based line and character column.
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// folderSidecarNames are the "apply to all rows" sidecars of a folder.
var folderSidecarNames = []string{"_metadata.toml", "_metadata.json"}

// keyLines finds the line each field of a flat sidecar is written on: the first line that
// starts with the key (quoted or not) followed by = or :. It is for messages only; a field it
// cannot place gets no line.
func keyLines(data []byte, values map[string]string) map[string]int {
	out := make(map[string]int, len(values))
	for i, line := range strings.Split(string(data), "\n") {
		t := strings.TrimLeft(line, " \t{,")
		for _, q := range []string{"", "\"", "'"} {
			if q != "" && !strings.HasPrefix(t, q) {
				continue
			}
			k := strings.TrimPrefix(t, q)
			end := strings.IndexAny(k, "=:"+q+" \t")
			if end <= 0 {
				continue
			}
			key := k[:end]
			if _, ok := values[key]; ok && out[key] == 0 {
				out[key] = i + 1
			}
		}
	}
	return out
}

// absent says whether an error opening a sidecar or checksum file means there is none: it
// does not exist, or its name (the file's name and ".toml") is longer than the file system
// allows, so it cannot exist. A file of a 251-255 byte name has no sidecar; it is not broken.
func absent(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENAMETOOLONG)
}

// notUTF8 says where a sidecar stops being UTF-8 text, and what it likely is instead: a
// Windows editor's "Unicode" is UTF-16, whose every other byte is zero.
func notUTF8(file string, data []byte) *SidecarError {
	line, col, i := 1, 1, 0
	for i < len(data) {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	msg := fmt.Sprintf("is not UTF-8 text (byte 0x%02x at offset %d); save it as UTF-8", data[i], i)
	head := data[:min(len(data), 64)]
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) || len(head) >= 8 && bytes.Count(head, []byte{0}) >= len(head)/4 {
		msg = "is UTF-16 text (a Windows editor's \"Unicode\"), not UTF-8; save it as UTF-8"
	}
	return &SidecarError{File: file, Line: line, Col: col, Msg: msg}
}
