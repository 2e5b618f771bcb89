package matcher

import "testing"

// howTheyDiffer never panics when one value is the start of the other (found by FuzzMatchName:
// a name whose field was one letter of a request's longer value), and names the code point
// only where the eye could be fooled.
func TestHowTheyDiffer(t *testing.T) {
	for _, tt := range []struct{ a, b, want string }{
		{"A", "Subtitle", ""},
		{"Subtitle", "A", ""},
		{"caf\u00e9", "cafe\u0301", " (the same letters in different Unicode forms: composed and decomposed)"},
		{"caf", "caf\u00e9", " (they differ at character 4: the end vs U+00E9)"},
		{"a-b", "a\u2013b", " (they differ at character 2: U+002D vs U+2013)"},
		{"\xc3", "\xc3\xa9", " (they differ at character 1: U+FFFD vs U+00E9)"},
	} {
		if got := howTheyDiffer(tt.a, tt.b); got != tt.want {
			t.Errorf("howTheyDiffer(%q, %q) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}
