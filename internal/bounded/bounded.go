// Package bounded refuses TOML and JSON documents whose shape would make a parser spend
// memory or time out of all proportion to their size, before any parser sees them.
//
// BurntSushi/toml builds the full dotted name of every implicit table (addImplicit →
// Key.String), so a 40 KB sidecar of 10,000 nested inline tables, or a 20,000-part dotted
// key, costs gigabytes and kills the daemon; a size cap alone does not help. encoding/json
// bounds depth (at 10,000) but not size. The checks here are one linear pass over the bytes
// with no allocation per token: they lex just enough (strings, comments, brackets, key
// separators) to measure
//
//   - depth: how deep a value sits, counting every part of the dotted keys and table headers
//     on its path, every open array, and the element of an [[array]] table ([a.b] then
//     c.d = {e = [1]} puts e at depth 5 and its array's elements at 6). This is what the
//     decoder's cost grows with: it spells out the whole key path of every table it makes;
//     an intermediate [[array]] in a header like [[a.b]] is not seen, which costs the
//     decoder nothing extra;
//   - keys: how many keys the document holds, each part of a dotted key counted;
//   - bytes.
//
// Every refusal is an *Error with the line and column where the limit was crossed. A document
// that passes may still be invalid: the parser reports that, with its own position.
//
// It is not a validator and does not replace the decoder's limits; it only keeps the
// decoder's cost linear in the input.
package bounded

import (
	"fmt"
	"unicode/utf8"
)

// Limits bound a document. A zero field means no limit on that measure.
type Limits struct {
	MaxBytes int
	MaxDepth int
	MaxKeys  int
}

// Untrusted are the limits for files people other than the admin write (sidecars, checksum
// files): generous for a flat table of metadata, far below what hurts a parser.
var Untrusted = Limits{MaxBytes: 1 << 20, MaxDepth: 32, MaxKeys: 10_000}

// Error is a document refused for its shape. Line and Col start at 1 (Col counts
// characters); Line 0 means the document as a whole (its size).
type Error struct {
	Line, Col int
	Msg       string
}

// Error returns "LINE:COL: MSG", or MSG for the document as a whole: callers put the file
// name in front.
func (e *Error) Error() string {
	if e.Line <= 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

func errAt(data []byte, off int, format string, args ...any) *Error {
	line, col := LineCol(data, off)
	return &Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func checkSize(data []byte, lim Limits) *Error {
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return &Error{Msg: fmt.Sprintf("is %d bytes, more than the %d allowed; hotdrop refuses it unread", len(data), lim.MaxBytes)}
	}
	return nil
}

func tooDeep(data []byte, off int, lim Limits, what string) *Error {
	return errAt(data, off, "nests %s more than %d levels deep; hotdrop refuses it unread", what, lim.MaxDepth)
}

func tooManyKeys(data []byte, off int, lim Limits, what string) *Error {
	return errAt(data, off, "holds more than %d %s; hotdrop refuses it unread", lim.MaxKeys, what)
}

// What the messages call the measures, per format.
const (
	tomlNesting = "tables, arrays or dotted-key parts"
	tomlKeys    = "keys (each part of a dotted key counts)"
	jsonNesting = "objects or arrays"
	jsonKeys    = "object members"
)

// LineCol converts a byte offset to a 1-based line and character column.
func LineCol(data []byte, off int) (line, col int) {
	off = min(max(off, 0), len(data))
	line, start := 1, 0
	for i := 0; i < off; i++ {
		if data[i] == '\n' {
			line, start = line+1, i+1
		}
	}
	return line, utf8.RuneCount(data[start:off]) + 1
}
