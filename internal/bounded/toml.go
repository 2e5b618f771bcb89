package bounded

// TOML checks a TOML document against lim. It follows the grammar only as far as the
// measures need: in valid TOML every table header, dotted key and bracket is seen where the
// decoder sees it. On invalid TOML it may count more than the decoder would, never less, so a
// document it passes cannot make the decoder's cost explode before the decoder stops at its
// own syntax error.
func TOML(data []byte, lim Limits) error {
	if err := checkSize(data, lim); err != nil {
		return err
	}
	s := tomlScan{data: data, lim: lim}
	if err := s.run(); err != nil {
		return err
	}
	return nil
}

type tomlMode int

const (
	lineStart  tomlMode = iota // top level, at the start of a line: a key or a [header]
	inKey                      // a (dotted) key, up to its '='
	inValue                    // a value
	afterValue                 // after a value: ',', a closer, a comment or the line's end
)

type frame struct {
	open  byte // '{' or '['
	depth int  // depth of what sits directly inside
}

type tomlScan struct {
	data  []byte
	lim   Limits
	i     int
	mode  tomlMode
	base  int     // depth of top-level keys: the parts of the current table header
	vdep  int     // depth of the value being read
	stack []frame // open inline tables and arrays; at most lim.MaxDepth long
	keys  int
}

func (s *tomlScan) depthOK(d int) bool { return s.lim.MaxDepth <= 0 || d <= s.lim.MaxDepth }

func (s *tomlScan) addKey(at int) *Error {
	s.keys++
	if s.lim.MaxKeys > 0 && s.keys > s.lim.MaxKeys {
		return tooManyKeys(s.data, at, s.lim, tomlKeys)
	}
	return nil
}

func (s *tomlScan) run() *Error {
	d := s.data
	for s.i < len(d) {
		c := d[s.i]
		switch c {
		case '#':
			for s.i < len(d) && d[s.i] != '\n' {
				s.i++
			}
			continue
		case '\n':
			if len(s.stack) == 0 {
				s.mode = lineStart
			}
			s.i++
			continue
		case ' ', '\t', '\r':
			s.i++
			continue
		case ']', '}':
			if s.mode == lineStart {
				break
			}
			if n := len(s.stack); n > 0 && s.stack[n-1].open == opener(c) {
				s.stack = s.stack[:n-1]
				s.mode = afterValue
			}
			s.i++
			continue
		}
		var err *Error
		switch s.mode {
		case lineStart:
			if c == '[' {
				err = s.header()
			} else {
				s.mode = inKey
			}
		case inKey:
			err = s.key()
		case inValue, afterValue:
			err = s.value(c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// header reads [a.b] or [[a.b]] and sets the depth of the keys below it.
func (s *tomlScan) header() *Error {
	d := s.data
	start := s.i
	s.i++
	arrayOf := s.i < len(d) && d[s.i] == '['
	if arrayOf {
		s.i++
	}
	parts := 1
	if err := s.part(parts, start); err != nil {
		return err
	}
	for s.i < len(d) {
		c := d[s.i]
		switch c {
		case '"', '\'':
			s.skipString()
			continue
		case '.':
			parts++
			if err := s.part(parts, s.i); err != nil {
				return err
			}
		case '\n', '#':
			s.mode = afterValue // malformed: the decoder says so
			s.base = parts
			return nil
		case ']':
			s.i++
			if arrayOf && s.i < len(d) && d[s.i] == ']' {
				s.i++
			}
			s.base = parts
			if arrayOf {
				s.base++ // the array's element is one more level
				if !s.depthOK(s.base) {
					return tooDeep(d, start, s.lim, tomlNesting)
				}
			}
			s.mode = afterValue
			return nil
		}
		s.i++
	}
	return nil
}

// part counts one more part of a key, at depth, found at offset at: refused past the
// depth or the key limit.
func (s *tomlScan) part(depth, at int) *Error {
	if !s.depthOK(depth) {
		return tooDeep(s.data, at, s.lim, tomlNesting)
	}
	return s.addKey(at)
}

// cur is the depth at which a key read now sits (before its own parts).
func (s *tomlScan) cur() int {
	if n := len(s.stack); n > 0 {
		return s.stack[n-1].depth
	}
	return s.base
}

// key reads a possibly dotted, possibly quoted key up to its '='.
func (s *tomlScan) key() *Error {
	d := s.data
	depth := s.cur() + 1
	if err := s.part(depth, s.i); err != nil {
		return err
	}
	for s.i < len(d) {
		c := d[s.i]
		switch c {
		case '"', '\'':
			s.skipString()
			continue
		case '.':
			depth++
			if err := s.part(depth, s.i); err != nil {
				return err
			}
		case '=':
			s.i++
			s.mode, s.vdep = inValue, depth
			return nil
		case '\n', '#', ',', '{', '}', '[', ']':
			// Malformed: treat what follows as a value, so brackets are still counted.
			s.mode, s.vdep = afterValue, depth
			return nil
		}
		s.i++
	}
	return nil
}

// value reads one value, or opens an inline table or array. It also serves afterValue, where
// in valid TOML only ',' may come: a bracket there is malformed but counted all the same.
func (s *tomlScan) value(c byte) *Error {
	d := s.data
	switch c {
	case ',':
		s.i++
		if n := len(s.stack); n > 0 {
			if s.stack[n-1].open == '{' {
				s.mode = inKey
			} else {
				s.mode, s.vdep = inValue, s.stack[n-1].depth
			}
		}
		return nil
	case '"', '\'':
		s.skipString()
		s.mode = afterValue
		return nil
	case '{':
		// Its keys sit at the depth of the key that holds it, plus their own parts.
		s.stack = append(s.stack, frame{open: '{', depth: s.vdep})
		s.i++
		s.mode = inKey
		return nil
	case '[':
		depth := s.vdep + 1
		if !s.depthOK(depth) {
			return tooDeep(d, s.i, s.lim, tomlNesting)
		}
		s.stack = append(s.stack, frame{open: '[', depth: depth})
		s.i++
		s.mode, s.vdep = inValue, depth
		return nil
	}
	// A number, boolean or date: up to the next separator.
	for s.i < len(d) {
		switch d[s.i] {
		case ' ', '\t', '\r', '\n', ',', ']', '}', '#', '[', '{', '"', '\'':
			s.mode = afterValue
			return nil
		}
		s.i++
	}
	return nil
}

// skipString moves past a basic or literal string, single- or multi-line. An unterminated
// single-line string ends at the line's end (the decoder reports it).
func (s *tomlScan) skipString() {
	d := s.data
	q := d[s.i]
	if s.i+2 < len(d) && d[s.i+1] == q && d[s.i+2] == q {
		s.i += 3
		for s.i < len(d) {
			if q == '"' && d[s.i] == '\\' {
				s.i += 2
				continue
			}
			if d[s.i] == q && s.i+2 < len(d) && d[s.i+1] == q && d[s.i+2] == q {
				s.i += 3
				for n := 0; n < 2 && s.i < len(d) && d[s.i] == q; n++ { // """a"""" ends in a quote
					s.i++
				}
				return
			}
			s.i++
		}
		return
	}
	s.i++
	for s.i < len(d) {
		switch d[s.i] {
		case '\\':
			if q == '"' {
				s.i += 2
				continue
			}
		case '\n':
			return
		case q:
			s.i++
			return
		}
		s.i++
	}
}

func opener(closer byte) byte {
	if closer == ']' {
		return '['
	}
	return '{'
}
