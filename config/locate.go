package config

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// BurntSushi/toml v1.6.0 records where every key's value starts but keeps it
// private: MetaData has no position API, and only its own ParseError carries a
// Position. So after the library has parsed a file, locate walks the same
// source once more and records where each key and each value starts.
//
// Because the library already accepted the source, the walk only follows
// structure (table headers, arrays of tables, dotted and quoted keys, inline
// tables and arrays, all string forms, comments) and never reports syntax
// errors. If it meets something it does not understand it stops; later keys
// are then simply not found and callers fall back to the enclosing table's
// position, so a surprise costs precision, never a crash or a wrong answer.

// locator maps key paths to positions. A path joins keys with "." (quoting
// keys that are not bare, as TOML writes them) and names an element of an
// array, whether of tables or of values, with "[i]": "rule[1].where.episode",
// "watch.ignore[0]".
type locator struct {
	keys map[string]Position // where the key itself is written
	vals map[string]Position // where its value starts ("[" of a table header)
}

// key returns where the key at path is written.
func (l *locator) key(path string) (Position, bool) {
	p, ok := l.keys[path]
	return p, ok
}

// value returns where the value at path starts.
func (l *locator) value(path string) (Position, bool) {
	p, ok := l.vals[path]
	return p, ok
}

// joinKey appends one key to a path.
func joinKey(path, key string) string {
	if path == "" {
		return quoteKey(key)
	}
	return path + "." + quoteKey(key)
}

// indexKey names element i of the array at path.
func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// quoteKey writes a key the way TOML would need it written.
func quoteKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		if !isBare(k[i]) {
			return strconv.Quote(k)
		}
	}
	return k
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// locate walks src, which must be TOML the library has accepted.
func locate(file, src string) *locator {
	// About one key and one value per line: sized so, the maps of a 10,000-request file are
	// not grown (and rehashed) a dozen times.
	n := strings.Count(src, "\n") + 1
	s := &scanner{
		src:    strings.TrimPrefix(src, "\ufeff"), // the library skips a BOM too
		file:   file,
		line:   1,
		col:    1,
		loc:    &locator{keys: make(map[string]Position, n), vals: make(map[string]Position, n)},
		arrays: map[string]int{},
	}
	s.document()
	return s.loc
}

type scanner struct {
	src       string
	file      string
	i         int
	line, col int
	loc       *locator
	arrays    map[string]int // elements seen so far of each [[array]] of tables
	// keys and at are dottedKey's results, reused: each caller is done with them before
	// the next key is read.
	keys []string
	at   []Position
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

func (s *scanner) pos() Position { return Position{File: s.file, Line: s.line, Col: s.col} }

// next moves past one character, counting lines and characters (not bytes).
func (s *scanner) next() {
	if s.eof() {
		return
	}
	switch c := s.src[s.i]; {
	case c == '\n':
		s.line++
		s.col = 1
		s.i++
		return
	case c < utf8.RuneSelf:
		s.i++
		s.col++
		return
	}
	_, n := utf8.DecodeRuneInString(s.src[s.i:])
	s.i += n
	s.col++
}

func (s *scanner) skip(n int) {
	for ; n > 0; n-- {
		s.next()
	}
}

// space skips blanks, and also newlines and comments when lines is true.
func (s *scanner) space(lines bool) {
	for !s.eof() {
		switch c := s.peek(); {
		case c == ' ' || c == '\t':
			s.next()
		case lines && (c == '\n' || c == '\r'):
			s.next()
		case lines && c == '#':
			for !s.eof() && s.peek() != '\n' {
				s.next()
			}
		default:
			return
		}
	}
}

func (s *scanner) setKey(path string, p Position) {
	if _, ok := s.loc.keys[path]; !ok {
		s.loc.keys[path] = p
	}
}

func (s *scanner) setVal(path string, p Position) {
	if _, ok := s.loc.vals[path]; !ok {
		s.loc.vals[path] = p
	}
}

func (s *scanner) document() {
	prefix := ""
	for {
		s.space(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek() == '[' {
			p := s.pos()
			s.next()
			array := s.peek() == '['
			if array {
				s.next()
			}
			keys, at, ok := s.dottedKey()
			if !ok || s.peek() != ']' {
				return
			}
			prefix = s.header(keys, at, array, p)
			for !s.eof() && s.peek() != '\n' { // "]]" and a comment
				s.next()
			}
		} else if !s.keyValue(prefix) {
			return
		}
		if s.i == start {
			return
		}
	}
}

// header records a [table] or [[array]] header and returns the path it opens.
// A key naming an array of tables refers to its latest element, as in TOML.
func (s *scanner) header(keys []string, at []Position, array bool, open Position) string {
	path := ""
	for j, k := range keys {
		path = joinKey(path, k)
		s.setKey(path, at[j])
		last := j == len(keys)-1
		if last && array {
			n := s.arrays[path]
			s.arrays[path] = n + 1
			path = indexKey(path, n)
			s.setKey(path, at[j])
		} else if n := s.arrays[path]; n > 0 {
			path = indexKey(path, n-1)
		}
		if last {
			s.setVal(path, open)
		}
	}
	return path
}

// dottedKey reads a.b."c d" and where each part starts.
func (s *scanner) dottedKey() ([]string, []Position, bool) {
	keys, at := s.keys[:0], s.at[:0]
	defer func() { s.keys, s.at = keys, at }()
	for {
		s.space(false)
		p := s.pos()
		k, ok := s.key()
		if !ok {
			return nil, nil, false
		}
		keys, at = append(keys, k), append(at, p)
		s.space(false)
		if s.peek() != '.' {
			return keys, at, true
		}
		s.next()
	}
}

func (s *scanner) key() (string, bool) {
	switch s.peek() {
	case '"':
		start := s.i
		s.next()
		for !s.eof() && s.peek() != '"' && s.peek() != '\n' {
			if s.peek() == '\\' {
				s.next()
			}
			s.next()
		}
		if s.peek() != '"' {
			return "", false
		}
		s.next()
		raw := s.src[start:s.i]
		if k, err := strconv.Unquote(raw); err == nil {
			return k, true
		}
		return raw[1 : len(raw)-1], true // an escape Go lacks (\e); close enough to locate
	case '\'':
		s.next()
		start := s.i
		for !s.eof() && s.peek() != '\'' && s.peek() != '\n' {
			s.next()
		}
		if s.peek() != '\'' {
			return "", false
		}
		k := s.src[start:s.i]
		s.next()
		return k, true
	}
	start := s.i
	for !s.eof() && isBare(s.peek()) {
		s.next()
	}
	return s.src[start:s.i], s.i > start
}

// keyValue reads key = value below prefix.
func (s *scanner) keyValue(prefix string) bool {
	keys, at, ok := s.dottedKey()
	if !ok || s.peek() != '=' {
		return false
	}
	s.next()
	path := prefix
	for j, k := range keys {
		path = joinKey(path, k)
		s.setKey(path, at[j])
	}
	s.space(false)
	s.setVal(path, s.pos())
	return s.value(path)
}

func (s *scanner) value(path string) bool {
	switch s.peek() {
	case '"', '\'':
		return s.str()
	case '[':
		s.next()
		for n := 0; ; n++ {
			s.space(true)
			if s.eof() {
				return false
			}
			if s.peek() == ']' {
				s.next()
				return true
			}
			start := s.i
			elem := indexKey(path, n)
			s.setVal(elem, s.pos())
			if !s.value(elem) {
				return false
			}
			s.space(true)
			if s.peek() == ',' {
				s.next()
			}
			if s.i == start {
				return false
			}
		}
	case '{':
		s.next()
		for {
			s.space(true) // TOML 1.1 allows newlines in inline tables
			if s.eof() {
				return false
			}
			if s.peek() == '}' {
				s.next()
				return true
			}
			start := s.i
			if !s.keyValue(path) {
				return false
			}
			s.space(true)
			if s.peek() == ',' {
				s.next()
			}
			if s.i == start {
				return false
			}
		}
	}
	// A number, boolean or date: it ends where the next structure starts.
	start := s.i
	for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.peek())) {
		s.next()
	}
	return s.i > start
}

// str moves past any of TOML's four string forms.
func (s *scanner) str() bool {
	q := s.peek()
	triple := `"""`
	if q == '\'' {
		triple = "'''"
	}
	if strings.HasPrefix(s.src[s.i:], triple) {
		s.skip(3)
		for !s.eof() {
			if q == '"' && s.peek() == '\\' {
				s.skip(2)
				continue
			}
			if strings.HasPrefix(s.src[s.i:], triple) {
				s.skip(3)
				// Up to two more quotes belong to the content: """a"""" is `a"`.
				for n := 0; n < 2 && s.peek() == q; n++ {
					s.next()
				}
				return true
			}
			s.next()
		}
		return false
	}
	s.next()
	for !s.eof() && s.peek() != '\n' {
		c := s.peek()
		if q == '"' && c == '\\' {
			s.skip(2)
			continue
		}
		s.next()
		if c == q {
			return true
		}
	}
	return false
}
