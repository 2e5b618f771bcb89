package matcher

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Pattern is a parsed naming-rule pattern: literal text and {field} captures, such as
// "{title}_{episode}_{source_type}_{language}.{ext}". Literal text matches ignoring ASCII case.
// A Pattern is immutable.
type Pattern struct {
	text   string
	segs   []segment
	fields []string // captured fields, in order, each once
}

type segment struct {
	lit   string // literal text, when field is ""
	field string
}

// PatternError is a pattern that cannot be parsed; Offset is the byte offset of the problem in
// the pattern, so that the config can point at the column.
type PatternError struct {
	Pattern string
	Offset  int
	Msg     string
}

// Error names the pattern, the byte offset and the problem.
func (e *PatternError) Error() string {
	return fmt.Sprintf("pattern %q, at byte %d: %s", e.Pattern, e.Offset, e.Msg)
}

var fieldName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ParsePattern parses a pattern. The error, when not nil, is a *PatternError.
func ParsePattern(s string) (*Pattern, error) {
	p := &Pattern{text: s}
	seen := map[string]bool{}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '}':
			return nil, &PatternError{s, i, `"}" has no matching "{"`}
		case '{':
			j := strings.IndexAny(s[i+1:], "{}")
			if j < 0 || s[i+1+j] == '{' {
				return nil, &PatternError{s, i, `"{" is never closed; expected {field} like {title}`}
			}
			name := s[i+1 : i+1+j]
			if !fieldName.MatchString(name) {
				return nil, &PatternError{s, i, fmt.Sprintf("{%s} is not a field name; expected lower-case letters, digits and _ like {package_id}", name)}
			}
			if lit.Len() > 0 {
				p.segs = append(p.segs, segment{lit: lit.String()})
				lit.Reset()
			}
			p.segs = append(p.segs, segment{field: name})
			if !seen[name] {
				seen[name] = true
				p.fields = append(p.fields, name)
			}
			i += j + 1
		default:
			lit.WriteByte(s[i])
		}
	}
	if lit.Len() > 0 {
		p.segs = append(p.segs, segment{lit: lit.String()})
	}
	if len(p.fields) == 0 {
		return nil, &PatternError{s, 0, "the pattern captures no {field}, so it cannot tell requests apart"}
	}
	return p, nil
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.text }

// Fields returns the captured field names in order of first appearance.
func (p *Pattern) Fields() []string { return append([]string(nil), p.fields...) }

// Capture is one field's value in a split of a name.
type Capture struct {
	Field string `json:"field"`
	Value string `json:"value"`
}

// splitLimit bounds the work spent on one name: a pattern of adjacent captures over a long
// name could otherwise split it in a combinatorial number of ways.
const splitLimit = 4096

// splitResult is what Split found, and for the trace where it stopped.
type splitResult struct {
	splits [][]Capture
	// rejected holds, per field, values that `where` refused (a few, for explain).
	rejected map[string][]string
	// reached is the index of the furthest segment any split reached; len(segs) when one fit.
	reached   int
	truncated bool
}

// Split returns every way name splits into the pattern's captures such that keep accepts each
// capture (keep may be nil), in a fixed order (shorter first captures first). A capture is
// never empty; a field captured twice must hold the same value (ignoring ASCII case, as literal
// text does). truncated is
// set when the name has more splits than the package examines (splitLimit steps).
func (p *Pattern) Split(name string, keep func(field, value string) bool) (splits [][]Capture, truncated bool) {
	w := walker{p: p, name: name, keep: keep, budget: splitLimit}
	w.walk(0, 0)
	return w.res.splits, w.res.truncated
}

// split is Split with the rule's anchored where expressions; with why it also records what
// where refused, for describeStop.
func (p *Pattern) split(name string, where map[string]*regexp.Regexp, why bool) splitResult {
	w := walkers.Get().(*walker)
	*w = walker{p: p, name: name, where: where, why: why, budget: splitLimit, vals: w.vals[:0]}
	w.walk(0, 0)
	res := w.res
	*w = walker{vals: w.vals[:0]}
	walkers.Put(w)
	return res
}

// walkers are reused: matching a name must not allocate one per rule.
var walkers = sync.Pool{New: func() any { return &walker{vals: make([]Capture, 0, 16)} }}

// walker enumerates splits depth first; a struct rather than closures keeps it off the heap.
type walker struct {
	p      *Pattern
	name   string
	keep   func(field, value string) bool
	where  map[string]*regexp.Regexp
	why    bool
	budget int
	vals   []Capture
	res    splitResult
}

func (w *walker) walk(i, pos int) {
	if w.budget <= 0 {
		w.res.truncated = true
		return
	}
	w.budget--
	if i > w.res.reached {
		w.res.reached = i
	}
	segs, name := w.p.segs, w.name
	if i == len(segs) {
		if pos == len(name) {
			w.res.splits = append(w.res.splits, dedupe(w.vals))
		}
		return
	}
	s := segs[i]
	if s.field == "" {
		if hasPrefixFold(name[pos:], s.lit) {
			w.walk(i+1, pos+len(s.lit))
		}
		return
	}
	switch {
	case i+1 == len(segs):
		if pos < len(name) {
			w.try(i, pos, len(name))
		}
	case segs[i+1].field == "":
		lit := segs[i+1].lit
		for k := pos + 1; k+len(lit) <= len(name) && w.budget > 0; k++ {
			if hasPrefixFold(name[k:], lit) {
				w.try(i, pos, k)
			}
		}
	default:
		for k := pos + 1; k < len(name) && w.budget > 0; k++ {
			if utf8.RuneStart(name[k]) {
				w.try(i, pos, k)
			}
		}
	}
}

// try captures name[pos:end] for segment i and goes on.
func (w *walker) try(i, pos, end int) {
	f, v := w.p.segs[i].field, w.name[pos:end]
	for _, c := range w.vals {
		if c.Field == f && (len(c.Value) != len(v) || !hasPrefixFold(v, c.Value)) {
			return
		}
	}
	refused := w.keep != nil && !w.keep(f, v)
	if re := w.where[f]; re != nil && !re.MatchString(v) {
		refused = true
	}
	if refused {
		if !w.why {
			return
		}
		if w.res.rejected == nil {
			w.res.rejected = map[string][]string{}
		}
		if r := w.res.rejected[f]; len(r) < 3 && !contains(r, v) {
			w.res.rejected[f] = append(r, v)
		}
		return
	}
	w.vals = append(w.vals, Capture{f, v})
	w.walk(i+1, end)
	w.vals = w.vals[:len(w.vals)-1]
}

// dedupe copies a split, keeping the first capture of a field captured twice.
func dedupe(vals []Capture) []Capture {
	out := make([]Capture, 0, len(vals))
	for _, c := range vals {
		dup := false
		for _, o := range out {
			if o.Field == c.Field {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		a, b := s[i], prefix[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// describeStop says, for explain, where a pattern stopped fitting a name.
func (p *Pattern) describeStop(r splitResult, where map[string]*regexp.Regexp) string {
	var parts []string
	for _, f := range p.fields {
		if vals := r.rejected[f]; len(vals) > 0 {
			q := make([]string, len(vals))
			for i, v := range vals {
				q[i] = fmt.Sprintf("%q", v)
			}
			expr := ""
			if re := where[f]; re != nil {
				expr = " " + re.String()
			}
			parts = append(parts, fmt.Sprintf("where.%s%s refuses %s", f, expr, strings.Join(q, ", ")))
		}
	}
	if len(parts) > 0 {
		return strings.Join(parts, "; ")
	}
	if r.reached >= len(p.segs) {
		return "the name has text left over after the pattern ends"
	}
	s := p.segs[r.reached]
	if s.field == "" {
		after := "at the start"
		if r.reached > 0 {
			after = "after {" + p.segs[r.reached-1].field + "}"
		}
		return fmt.Sprintf("the name has no %q %s", s.lit, after)
	}
	if r.reached+1 < len(p.segs) && p.segs[r.reached+1].field == "" {
		return fmt.Sprintf("the name has no %q after {%s}", p.segs[r.reached+1].lit, s.field)
	}
	return fmt.Sprintf("nothing is left for {%s}", s.field)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
