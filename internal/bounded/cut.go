package bounded

import (
	"strconv"
	"unicode/utf8"
)

// Shown is the most of one value a log line or a message shows: a whole request id (the
// tracker takes ids of up to 128 bytes), the start of a title, and far too little for a
// hostile 20 MB value to fill a disk with copies of itself.
const Shown = 128

// Cut returns s if it is at most n bytes; otherwise its first n bytes or fewer (never half a
// character) and how long the whole was, e.g. "SR-xxxx… (20971520 bytes in all)". The
// marker says it was cut, so a reader never takes the shortened value for the real one.
func Cut(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "… (" + strconv.Itoa(len(s)) + " bytes in all)"
}
