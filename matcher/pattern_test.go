package matcher

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestParsePattern(t *testing.T) {
	tests := []struct {
		in     string
		fields []string
		errAt  int // -1: no error
	}{
		{"{title}_{episode}_{source_type}_{language}.{ext}", []string{"title", "episode", "source_type", "language", "ext"}, -1},
		{"{a}{b}", []string{"a", "b"}, -1},
		{"x_{a}_{a}", []string{"a"}, -1},
		{"plain.txt", nil, 0},
		{"{title", nil, 0},
		{"ab}", nil, 2},
		{"a_{Title}", nil, 2},
		{"a_{{b}}", nil, 2},
		{"", nil, 0},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.in)
		if tt.errAt >= 0 {
			var pe *PatternError
			if !errors.As(err, &pe) || pe.Offset != tt.errAt {
				t.Errorf("ParsePattern(%q) = %v, want a PatternError at %d", tt.in, err, tt.errAt)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePattern(%q) = %v", tt.in, err)
			continue
		}
		if got := strings.Join(p.Fields(), ","); got != strings.Join(tt.fields, ",") {
			t.Errorf("ParsePattern(%q).Fields() = %s, want %s", tt.in, got, strings.Join(tt.fields, ","))
		}
	}
}

func fmtSplits(splits [][]Capture) string {
	var out []string
	for _, s := range splits {
		var parts []string
		for _, c := range s {
			parts = append(parts, c.Field+"="+c.Value)
		}
		out = append(out, strings.Join(parts, " "))
	}
	return strings.Join(out, " | ")
}

func TestSplit(t *testing.T) {
	ep := regexp.MustCompile(`^(?:S[0-9]{2}E[0-9]{2})$`)
	tests := []struct {
		pattern, name string
		where         map[string]*regexp.Regexp
		want          string
	}{
		{"{title}_{episode}_{source_type}_{language}.{ext}", "Wednesday_S01E03_SUB_fr-FR.ttml", nil,
			"title=Wednesday episode=S01E03 source_type=SUB language=fr-FR ext=ttml"},
		// Every split counts: the title may hold an underscore.
		{"{title}_{episode}.{ext}", "The_Crown_S01E03.mov", nil,
			"title=The episode=Crown_S01E03 ext=mov | title=The_Crown episode=S01E03 ext=mov"},
		// where prunes the splits.
		{"{title}_{episode}.{ext}", "The_Crown_S01E03.mov", map[string]*regexp.Regexp{"episode": ep},
			"title=The_Crown episode=S01E03 ext=mov"},
		// The extension can be two splits too.
		{"{title}.{ext}", "a.b.c", nil, "title=a ext=b.c | title=a.b ext=c"},
		// Literal text ignores case.
		{"{title}_SUB.{ext}", "Wed_sub.TTML", nil, "title=Wed ext=TTML"},
		// Captures are never empty.
		{"{a}_{b}", "_x", nil, ""},
		{"{a}_{b}", "x_", nil, ""},
		// A field captured twice must agree.
		{"{a}-{a}", "x-X", nil, "a=x"},
		{"{a}-{a}", "x-y", nil, ""},
		// Adjacent captures split at every character boundary, never inside a rune.
		{"{a}{b}", "aé", nil, "a=a b=é"},
		{"{a}.{ext}", "noext", nil, ""},
		{"pre_{a}", "pre_x", nil, "a=x"},
		{"pre_{a}", "PRE_x", nil, "a=x"},
		{"pre_{a}", "pr_x", nil, ""},
	}
	for _, tt := range tests {
		p, err := ParsePattern(tt.pattern)
		if err != nil {
			t.Fatal(err)
		}
		keep := func(f, v string) bool {
			re := tt.where[f]
			return re == nil || re.MatchString(v)
		}
		got, trunc := p.Split(tt.name, keep)
		if trunc {
			t.Errorf("Split(%q, %q) truncated", tt.pattern, tt.name)
		}
		if s := fmtSplits(got); s != tt.want {
			t.Errorf("Split(%q, %q) = %s, want %s", tt.pattern, tt.name, s, tt.want)
		}
	}
}

func TestSplitBounded(t *testing.T) {
	p, _ := ParsePattern("{a}{b}{c}{d}{e}{f}")
	_, trunc := p.Split(strings.Repeat("x", 200), nil)
	if !trunc {
		t.Errorf("Split of a 200-byte name by six adjacent captures was not truncated")
	}
}

func TestDescribeStop(t *testing.T) {
	ep := regexp.MustCompile(`^(?:S[0-9]{2}E[0-9]{2})$`)
	tests := []struct {
		pattern, name, want string
	}{
		{"{title}_{episode}.{ext}", "Wednesday.ttml", `the name has no "_" after {title}`},
		{"{title}_{episode}.{ext}", "Wed_E3.ttml", `where.episode ^(?:S[0-9]{2}E[0-9]{2})$ refuses "E3"`},
		{"x_{a}", "y_b", `the name has no "x_" at the start`},
	}
	for _, tt := range tests {
		p, _ := ParsePattern(tt.pattern)
		where := map[string]*regexp.Regexp{"episode": ep}
		r := p.split(tt.name, where, true)
		if got := p.describeStop(r, where); got != tt.want {
			t.Errorf("describeStop(%q, %q) = %s, want %s", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// FuzzSplit checks that splitting never panics and that every split reassembles the name.
func FuzzSplit(f *testing.F) {
	for _, s := range [][2]string{
		{"{title}_{episode}_{source_type}_{language}.{ext}", "Wednesday_S01E03_SUB_fr-FR.ttml"},
		{"{a}{b}", "xyz"},
		{"{a}-{a}", "x-X"},
		{"{t", "x"},
		{"x_{a}é{b}", "x_1é2"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		splits, _ := p.Split(name, nil)
		for _, s := range splits {
			if got := reassemble(p, s); !strings.EqualFold(got, name) {
				t.Fatalf("Split(%q, %q) gave %v, which reassembles to %q", pattern, name, s, got)
			}
			for _, c := range s {
				if c.Value == "" {
					t.Fatalf("Split(%q, %q) gave an empty capture: %v", pattern, name, s)
				}
			}
		}
	})
}

func reassemble(p *Pattern, caps []Capture) string {
	var b strings.Builder
	for _, s := range p.segs {
		if s.field == "" {
			b.WriteString(s.lit)
			continue
		}
		for _, c := range caps {
			if c.Field == s.field {
				b.WriteString(c.Value)
			}
		}
	}
	return b.String()
}

func ExamplePattern_Split() {
	p, _ := ParsePattern("{title}_{episode}.{ext}")
	splits, _ := p.Split("The_Crown_S01E03.mov", nil)
	for _, s := range splits {
		fmt.Println(s)
	}
	// Output:
	// [{title The} {episode Crown_S01E03} {ext mov}]
	// [{title The_Crown} {episode S01E03} {ext mov}]
}

// FuzzMatchName checks that no name makes matching panic, explained or not.
func FuzzMatchName(f *testing.F) {
	f.Add("Wednesday_S01E03_SUB_fr-FR.ttml")
	f.Add("The_Crown_S02E01_SUB_es-419.ttml")
	f.Add("a/b/c_S01E01_x_y.z")
	m, err := New(Options{Rules: []Rule{timedTextRule, {Name: "adjacent", Pattern: "{title}{episode}.{ext}"}}, Requests: testRequests()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		for _, explain := range []bool{false, true} {
			var tr Trace
			res := m.match(name, "", explain, &tr)
			if res.req < 0 && res.hold == nil {
				t.Fatalf("match(%q) decided nothing and holds nothing", name)
			}
		}
	})
}
