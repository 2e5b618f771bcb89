package config

import (
	"testing"

	"github.com/BurntSushi/toml"
)

// tricky holds the TOML forms the locator must walk past without losing
// its place: every string form with structure characters inside, quoted and
// dotted keys, inline tables and arrays across lines, nested arrays of
// tables, comments everywhere, and a multi-byte character before a value.
const tricky = `# comment [not.a.table]
top = "a # not a comment"
"quoted.key" = 'lit "x"'
a.b . c = 1
ml = """
[fake]
key = "x" """
lit = '''
''' # after
arr = [ # comment
  "x, ]", 'y',
  [1, 2],
  { k = "v" },
]
inl = { x = 1, y.z = "}" }
"né" = "é"
[tbl]
k1 = 1979-05-27 07:32:00Z
[[arr2]]
n = 1
[[arr2]]
n = 2
[[arr2.sub]]
m = "deep"
[arr2.where]
w = "x"
[ "spaced" . 'key' ]
v = true
`

func TestLocate(t *testing.T) {
	src := tricky
	var m map[string]any
	if _, err := toml.Decode(src, &m); err != nil {
		t.Fatalf("fixture is not valid TOML: %v", err)
	}
	l := locate("f.toml", src)
	tests := []struct {
		path      string
		value     bool // value position rather than key position
		line, col int
	}{
		{"top", false, 2, 1},
		{"top", true, 2, 7},
		{`"quoted.key"`, false, 3, 1},
		{`"quoted.key"`, true, 3, 16},
		{"a.b.c", false, 4, 7},
		{"a.b.c", true, 4, 11},
		{"ml", true, 5, 6},
		{"lit", false, 8, 1},
		{"arr", true, 10, 7},
		{"arr[0]", true, 11, 3},
		{"arr[1]", true, 11, 11},
		{"arr[2]", true, 12, 3},
		{"arr[2][1]", true, 12, 7},
		{"arr[3].k", false, 13, 5},
		{"arr[3].k", true, 13, 9},
		{"inl.x", false, 15, 9},
		{"inl.y.z", false, 15, 18},
		{"inl.y.z", true, 15, 22},
		{`"né"`, true, 16, 8},
		{"tbl", true, 17, 1},
		{"tbl.k1", true, 18, 6},
		{"arr2[0]", true, 19, 1},
		{"arr2[0].n", true, 20, 5},
		{"arr2[1].n", false, 22, 1},
		{"arr2[1].sub[0].m", true, 24, 5},
		{"arr2[1].where.w", false, 26, 1},
		{`spaced.key.v`, false, 28, 1},
		{`spaced.key`, false, 27, 14},
	}
	for _, tt := range tests {
		get := l.key
		if tt.value {
			get = l.value
		}
		p, ok := get(tt.path)
		if !ok || p.Line != tt.line || p.Col != tt.col {
			t.Errorf("locate %q (value %v) = %d:%d (found %v), want %d:%d", tt.path, tt.value, p.Line, p.Col, ok, tt.line, tt.col)
		}
	}
}

func TestLocateCRLFAndBOM(t *testing.T) {
	src := "\ufeff[watch]\r\nroot = \"/x\"\r\n\r\nsettle = \"1s\"\r\n"
	l := locate("f.toml", src)
	for path, want := range map[string][2]int{"watch": {1, 2}, "watch.root": {2, 1}, "watch.settle": {4, 1}} {
		p, ok := l.key(path)
		if !ok || p.Line != want[0] || p.Col != want[1] {
			t.Errorf("locate %q = %d:%d (found %v), want %d:%d", path, p.Line, p.Col, ok, want[0], want[1])
		}
	}
}

// TestLocateNeverPanics feeds the locator truncated input, which it never
// sees in practice (the library rejects it first) but must survive.
func TestLocateNeverPanics(t *testing.T) {
	for i := range len(tricky) {
		locate("f.toml", tricky[:i])
	}
}
