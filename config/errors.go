package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hotdrop/hotdrop/internal/textdist"
)

// Position is where a value sits in a file, for error messages.
// Line and Col start at 1; Col counts characters, not bytes. A zero Line
// means the problem concerns the file as a whole.
type Position struct {
	File      string
	Line, Col int
}

// String renders the position as FILE:LINE:COL, or FILE when Line is 0.
func (p Position) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem in a config, requests or sidecar file.
type Error struct {
	Pos Position
	Msg string
	// Err is the underlying cause when there is one (for example the
	// *fs.PathError of a file that could not be read), so that callers can
	// test it with errors.Is; Msg already includes its text.
	Err error
}

// Error returns "FILE:LINE:COL: MSG" (or "FILE: MSG" when the problem
// concerns the whole file).
func (e *Error) Error() string {
	if e.Pos.File == "" {
		return e.Msg
	}
	return e.Pos.String() + ": " + e.Msg
}

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList collects every problem found (Load reports all, not only the first).
type ErrorList []*Error

// Error joins the problems, one a line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.Is and errors.As look at every problem in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// sortByPosition orders problems of one file as they appear in it, which is
// the order a person fixes them in.
func (l ErrorList) sortByPosition() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// err returns l as an error, or a true nil when it is empty (a nil ErrorList
// stored in an error interface would not compare equal to nil).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// suggest returns the candidate closest to key when it is close enough to be
// a likely misspelling, or "".
func suggest(key string, candidates []string) string {
	best, bestDist := "", -1
	lk := strings.ToLower(key)
	for _, c := range candidates {
		d := textdist.Levenshtein(lk, strings.ToLower(c))
		limit := 2
		if len(c) <= 4 {
			limit = 1
		}
		if d <= limit && (bestDist < 0 || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}
