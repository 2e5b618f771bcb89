package bounded

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCut: a short value is shown whole; a long one is cut to the bound, never mid-character,
// and says how long the whole was.
func TestCut(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"SR-1", 8, "SR-1"},
		{"12345678", 8, "12345678"},
		{"123456789", 8, "12345678… (9 bytes in all)"},
		{"ab€€", 4, "ab… (8 bytes in all)"}, // € is 3 bytes: the cut falls inside the first
		{strings.Repeat("x", 20<<20), 3, "xxx… (20971520 bytes in all)"},
		{"anything", 0, "anything"},
	} {
		got := Cut(tc.in, tc.n)
		if got != tc.want {
			t.Errorf("Cut(%.20q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("Cut(%.20q, %d) = %q is not valid UTF-8", tc.in, tc.n, got)
		}
	}
}
