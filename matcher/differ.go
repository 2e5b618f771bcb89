package matcher

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// howTheyDiffer says where two values differ when the eye may not see it: two strings that
// print alike (a combining accent against a composed letter, an en dash against a hyphen, a
// no-break space) must never be shown as "x" ≠ "x" without the code points that differ. It
// returns "" when the first difference is between plain ASCII letters or digits.
func howTheyDiffer(a, b string) string {
	if norm.NFC.String(a) == norm.NFC.String(b) {
		return " (the same letters in different Unicode forms: composed and decomposed)"
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	// Back to the start of the rune the difference is in. a[:i] == b[:i], and one of them
	// goes on past i (equal strings returned above): read the byte there from that one.
	longer := a
	if i >= len(a) {
		longer = b
	}
	for i > 0 && !utf8.RuneStart(longer[i]) {
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	endA, endB := i >= len(a), i >= len(b)
	if (plain(ra) || endA) && (plain(rb) || endB) {
		return ""
	}
	return fmt.Sprintf(" (they differ at character %d: %s vs %s)", utf8.RuneCountInString(a[:i])+1, codePoint(ra, !endA), codePoint(rb, !endB))
}

func plain(r rune) bool {
	return r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

func codePoint(r rune, present bool) string {
	if !present {
		return "the end"
	}
	return fmt.Sprintf("U+%04X", r)
}
