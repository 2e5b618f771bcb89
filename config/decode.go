package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/hotdrop/hotdrop/internal/bounded"
)

// decoder walks the generic tree BurntSushi/toml produces, checking every
// value's type itself so that all problems are collected with a position
// (decoding straight into structs would stop at the first type mismatch and
// report it without a column).
type decoder struct {
	lines  []string // the source, for pointing inside string values
	loc    *locator
	errs   ErrorList
	tables []*table                   // every table walked, for the unknown-key report
	known  map[string]map[string]bool // table name → keys the schema has for it
	order  []string                   // table names in the order first walked
}

// decode parses data and returns the root table, or nil after recording the
// syntax error.
func decode(file string, data []byte) (*decoder, *table) {
	d := &decoder{known: map[string]map[string]bool{}}
	if err := bounded.TOML(data, fileLimits); err != nil {
		pos, msg := Position{File: file, Line: 1, Col: 1}, err.Error()
		var be *bounded.Error
		if errors.As(err, &be) {
			pos.Line, pos.Col, msg = max(be.Line, 1), max(be.Col, 1), be.Msg
		}
		d.errs = append(d.errs, &Error{Pos: pos, Msg: msg, Err: err})
		return d, nil
	}
	src := string(data)
	// Positions are found while the library parses: locate only reads src, stops at what it
	// does not understand (FuzzLocate feeds it anything), and beside the decoder a
	// 10,000-request file is read in the time of the slower of the two, not of both.
	loc := make(chan *locator, 1)
	go func() { loc <- locate(file, src) }()
	var m map[string]any
	if _, err := toml.Decode(src, &m); err != nil {
		<-loc
		d.errs = append(d.errs, syntaxError(file, data, err))
		return d, nil
	}
	d.loc = <-loc
	d.lines = strings.Split(strings.TrimPrefix(src, "\ufeff"), "\n")
	return d, d.newTable("", "", Position{File: file, Line: 1, Col: 1}, m)
}

// fileLimits bound a config or requests file before the TOML decoder sees it: the admin
// writes them, but a script may generate requests files, and `explain` reads them too. The
// deepest real config value (a profile's metadata values) sits 5 levels down; a file shaped
// to explode the decoder (BurntSushi/toml spends gigabytes on deep nesting or long dotted
// keys) is refused with its position instead of crashing the daemon.
var fileLimits = bounded.Limits{MaxBytes: 16 << 20, MaxDepth: 16, MaxKeys: 1_000_000}

// syntaxError turns the library's ParseError into an Error with a column
// counted in characters on the reported line (the library's own Col counts
// bytes, and is wrong for an error at the very start of a line).
func syntaxError(file string, data []byte, err error) *Error {
	e := tomlError(file, data, err)
	if s := strings.TrimLeft(strings.TrimPrefix(string(data), "\ufeff"), " \t\r\n"); strings.HasPrefix(s, "{") {
		// Tracker replies and sidecars may be JSON; these files may not.
		e.Msg += " (this looks like JSON: config and requests files are TOML; a requests file holds [[request]] tables)"
	}
	return e
}

func tomlError(file string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{Pos: Position{File: file, Line: 1, Col: 1}, Msg: "not valid TOML: " + err.Error(), Err: err}
	}
	src := strings.TrimPrefix(string(data), "\ufeff")
	line := max(pe.Position.Line, 1)
	col := 1
	start := 0
	for l := 1; l < line && start < len(src); l++ {
		nl := strings.IndexByte(src[start:], '\n')
		if nl < 0 {
			start = len(src)
			break
		}
		start += nl + 1
	}
	end := len(src)
	if nl := strings.IndexByte(src[start:], '\n'); nl >= 0 {
		end = start + nl
	}
	if off := pe.Position.Start; off >= start && off <= end {
		col = utf8.RuneCountInString(src[start:off]) + 1
	}
	return &Error{
		Pos: Position{File: file, Line: line, Col: col},
		Msg: "not valid TOML: " + pe.Message,
		Err: err,
	}
}

func (d *decoder) errorf(p Position, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) newTable(path, name string, pos Position, m map[string]any) *table {
	t := &table{d: d, path: path, name: name, pos: pos, m: m}
	d.tables = append(d.tables, t)
	if d.known[name] == nil {
		d.known[name] = map[string]bool{}
		d.order = append(d.order, name)
	}
	return t
}

// checkUnknown reports every key no part of the schema asked for. It runs
// after the whole walk so that a key written in the wrong table can be
// pointed at the table where it belongs.
func (d *decoder) checkUnknown() {
	for _, t := range d.tables {
		if t.open {
			continue
		}
		for _, k := range t.keys() {
			if d.known[t.name][k] {
				continue
			}
			d.errorf(t.keyPos(k), "unknown key %q%s", t.label(k), d.hint(t, k))
		}
	}
}

func (d *decoder) hint(t *table, k string) string {
	var here []string
	for c := range d.known[t.name] {
		here = append(here, c)
	}
	sort.Strings(here)
	if s := suggest(k, here); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	for _, name := range d.order {
		// Only tables people write themselves; inline ones would confuse.
		section := !strings.Contains(name, ".") || name == "destination.schedule"
		if section && name != t.name && d.known[name][k] {
			return fmt.Sprintf(" (%q belongs in %s)", k, header(name))
		}
	}
	if len(here) > 0 {
		return "; expected one of " + strings.Join(here, ", ")
	}
	return ""
}

// header writes how a table name appears in a file.
func header(name string) string {
	switch name {
	case "":
		return "the top level, before any [table]"
	case "rule", "source_type", "destination.schedule", "request":
		return "[[" + name + "]]"
	}
	return "[" + name + "]"
}

// table is one TOML table being walked. path locates it (with array
// indices); name is what messages call it (without indices: the position
// already says which element).
type table struct {
	d    *decoder
	path string
	name string
	pos  Position
	m    map[string]any
	open bool // keys are data (rule.where, a request's fields), not schema
}

func (t *table) child(k string) string { return joinKey(t.path, k) }

func (t *table) label(k string) string {
	if t.name == "" {
		return k
	}
	return t.name + "." + quoteKey(k)
}

// keyPos is where key k is written, falling back to the table.
func (t *table) keyPos(k string) Position {
	if t.d.loc != nil {
		if p, ok := t.d.loc.key(t.child(k)); ok {
			return p
		}
		if p, ok := t.d.loc.value(t.child(k)); ok {
			return p
		}
	}
	return t.pos
}

// valPos is where the value of key k starts, falling back to the key.
func (t *table) valPos(k string) Position {
	if t.d.loc != nil {
		if p, ok := t.d.loc.value(t.child(k)); ok {
			return p
		}
	}
	return t.keyPos(k)
}

// itemPos is where element i of the array at k starts.
func (t *table) itemPos(k string, i int) Position {
	if t.d.loc != nil {
		if p, ok := t.d.loc.value(indexKey(t.child(k), i)); ok {
			return p
		}
	}
	return t.valPos(k)
}

// keys lists the table's keys in a stable order.
func (t *table) keys() []string {
	ks := make([]string, 0, len(t.m))
	for k := range t.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// get returns the raw value of k and records k as part of the schema.
func (t *table) get(k string) (any, bool) {
	t.d.known[t.name][k] = true
	v, ok := t.m[k]
	return v, ok
}

// has reports whether k is set, without claiming it for the schema.
func (t *table) has(k string) bool {
	_, ok := t.m[k]
	return ok
}

func (t *table) errorf(p Position, format string, args ...any) { t.d.errorf(p, format, args...) }

// typeError reports a value of the wrong TOML type.
func (t *table) typeError(p Position, label, want string, v any) {
	t.errorf(p, "%s: expected %s, got %s", label, want, describe(v))
}

// describe names a TOML value's type, with the value when it is short.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		if r := []rune(v); len(r) > 60 {
			v = string(r[:57]) + "..."
		}
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %v", v)
	case bool:
		return fmt.Sprintf("boolean %v", v)
	case time.Time:
		return "a date/time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// str reads a string; want says what was expected when it is not one.
func (t *table) str(k, want string) (string, bool) {
	v, ok := t.get(k)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.typeError(t.valPos(k), t.label(k), want, v)
	}
	return s, ok
}

// setStr stores a string at k into dst when it is set.
func (t *table) setStr(k string, dst *string) {
	if s, ok := t.str(k, "a string"); ok {
		*dst = s
	}
}

// strList reads an array of strings.
func (t *table) strList(k string) ([]string, bool) {
	v, ok := t.get(k)
	if !ok {
		return nil, false
	}
	items, ok := v.([]any)
	if !ok {
		t.typeError(t.valPos(k), t.label(k), `an array of strings like ["a", "b"]`, v)
		return nil, false
	}
	out := make([]string, 0, len(items))
	good := true
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			t.errorf(t.itemPos(k, i), "%s: expected an array of strings, but item %d is %s", t.label(k), i+1, describe(it))
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

func (t *table) setBool(k string, dst *bool) {
	v, ok := t.get(k)
	if !ok {
		return
	}
	b, ok := v.(bool)
	if !ok {
		t.typeError(t.valPos(k), t.label(k), "true or false", v)
		return
	}
	*dst = b
}

// integer reads an integer no smaller than least.
func (t *table) integer(k string, least int64) (int64, bool) {
	v, ok := t.get(k)
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	if !ok {
		t.typeError(t.valPos(k), t.label(k), "an integer", v)
		return 0, false
	}
	if n < least {
		t.errorf(t.valPos(k), "%s: must be %d or more, got %d", t.label(k), least, n)
		return 0, false
	}
	return n, true
}

// setDuration reads a duration that must be longer than zero.
func (t *table) setDuration(k string, dst *time.Duration) {
	s, ok := t.str(k, `a duration like "30s" or "2m"`)
	if !ok {
		return
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		t.errorf(t.valPos(k), `%s: %q is not a duration; expected e.g. "30s" or "2m"`, t.label(k), s)
		return
	}
	if dur <= 0 {
		t.errorf(t.valPos(k), `%s: must be longer than 0, got %q`, t.label(k), s)
		return
	}
	*dst = dur
}

// size reads a byte count: a string like "40MiB" or a plain integer.
func (t *table) size(k string) (int64, bool) {
	v, ok := t.get(k)
	if !ok {
		return 0, false
	}
	switch v := v.(type) {
	case int64:
		if v < 0 {
			t.errorf(t.valPos(k), "%s: must be 0 or more, got %d", t.label(k), v)
			return 0, false
		}
		return v, true
	case string:
		n, err := parseSize(v)
		if err != nil {
			t.errorf(t.valPos(k), `%s: %q is not a size; expected e.g. "40MiB" or "0"`, t.label(k), v)
			return 0, false
		}
		return n, true
	}
	t.typeError(t.valPos(k), t.label(k), `a size like "40MiB" or "0"`, v)
	return 0, false
}

// setEnum reads a string that must be one of allowed.
func (t *table) setEnum(k string, dst *string, allowed ...string) {
	want := "one of " + quoteAll(allowed)
	s, ok := t.str(k, want)
	if !ok {
		return
	}
	for _, a := range allowed {
		if s == a {
			*dst = s
			return
		}
	}
	t.errorf(t.valPos(k), "%s: %q is not allowed; expected %s", t.label(k), s, want)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	if len(q) > 1 {
		return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
	}
	return strings.Join(q, "")
}

// setPath reads a file or folder path, resolving a relative one against dir
// (the config file's folder). An empty string means "not set".
func (t *table) setPath(k, dir string, dst *string) {
	s, ok := t.str(k, "a path")
	if !ok {
		return
	}
	if p, ok := t.checkPath(t.valPos(k), t.label(k), s, dir); ok {
		*dst = p
	}
}

func (t *table) checkPath(p Position, label, s, dir string) (string, bool) {
	if s == "" {
		return "", true
	}
	if strings.HasPrefix(s, "~") {
		t.errorf(p, "%s: %q starts with ~, which hotdrop does not expand; write the full path", label, s)
		return "", false
	}
	if strings.ContainsRune(s, 0) {
		t.errorf(p, "%s: %q contains a NUL byte", label, s)
		return "", false
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(dir, s)
	}
	return filepath.Clean(s), true
}

// sub returns the table at k. A missing table is walked as an empty one
// placed where its parent is, so its required keys are still reported.
func (t *table) sub(k string) *table {
	v, ok := t.get(k)
	m, isMap := v.(map[string]any)
	if ok && !isMap {
		t.typeError(t.valPos(k), t.label(k), "a table", v)
	}
	pos := t.pos
	if ok {
		pos = t.valPos(k)
	}
	return t.d.newTable(t.child(k), t.label(k), pos, m)
}

// list returns the array of tables at k ([[k]] or k = [{...}, ...]).
func (t *table) list(k string) []*table {
	v, ok := t.get(k)
	if !ok {
		// Register the name so hints know its keys even when absent.
		if t.d.known[t.label(k)] == nil {
			t.d.known[t.label(k)] = map[string]bool{}
			t.d.order = append(t.d.order, t.label(k))
		}
		return nil
	}
	var maps []map[string]any
	switch v := v.(type) {
	case []map[string]any:
		maps = v
	case []any:
		for i, it := range v {
			m, ok := it.(map[string]any)
			if !ok {
				t.errorf(t.itemPos(k, i), "%s: expected tables ([[%s]]), but item %d is %s", t.label(k), t.label(k), i+1, describe(it))
				continue
			}
			maps = append(maps, m)
		}
	default:
		t.typeError(t.valPos(k), t.label(k), "tables written as [["+t.label(k)+"]]", v)
		return nil
	}
	out := make([]*table, 0, len(maps))
	for i, m := range maps {
		path := indexKey(t.child(k), i)
		pos := t.itemPos(k, i)
		out = append(out, t.d.newTable(path, t.label(k), pos, m))
	}
	return out
}

// within returns the position of byte offset off inside the string value at
// k, when the source writes that value plainly (no escapes), else the
// value's start. It lets template errors point at the offending brace.
func (t *table) within(k, s string, off int) Position {
	p := t.valPos(k)
	if p.Line < 1 || p.Line > len(t.d.lines) {
		return p
	}
	line := []rune(t.d.lines[p.Line-1])
	if p.Col < 1 || p.Col > len(line) {
		return p
	}
	rest := string(line[p.Col-1:])
	if strings.HasPrefix(rest, `"`+s+`"`) || strings.HasPrefix(rest, "'"+s+"'") {
		p.Col += 1 + utf8.RuneCountInString(s[:off])
	}
	return p
}

// readFile reads a config or requests file, at most one byte past fileLimits.MaxBytes (enough
// for decode to refuse it by size): a config path pointing at something endless must not
// exhaust memory.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(fileLimits.MaxBytes)+1))
}
