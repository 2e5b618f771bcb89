package matcher

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"testing"
)

// TestIndexAgreesWithScan checks the index against comparing every request with every split.
func TestIndexAgreesWithScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	titles := []string{"Wednesday", "The Crown", "Dark", "Lupin"}
	types := []string{"Subtitle", "SDH/CC", "Audio M&E", "IMF", "Mystery"}
	langs := []string{"fr-FR", "de-DE", "en", "es-419", ""}
	statuses := []string{"open", "open", "open", "closed", "redelivery_requested"}
	var reqs []Request
	for i := range 400 {
		kv := []string{"title", titles[rng.IntN(len(titles))], "episode", fmt.Sprintf("S01E%02d", rng.IntN(6)),
			"source_type", types[rng.IntN(len(types))]}
		if l := langs[rng.IntN(len(langs))]; l != "" {
			kv = append(kv, "language", l)
		}
		if rng.IntN(10) == 0 {
			kv = kv[2:] // some lack a title
		}
		reqs = append(reqs, req(fmt.Sprintf("SR-%d", i), statuses[rng.IntN(len(statuses))], kv...))
	}
	m, err := New(Options{Rules: []Rule{timedTextRule}, Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	fileTitles := []string{"Wednesday", "the_crown", "DARK", "Nope"}
	codes := []string{"SUB", "sdh", "CC", "ME", "IMF", "Mystery", "XX"}
	fileLangs := []string{"fr-fr", "DE_de", "en", "es-419", "it"}
	for n := range 2000 {
		caps := []Capture{{"title", fileTitles[rng.IntN(4)]}, {"episode", fmt.Sprintf("S01E%02d", rng.IntN(7))},
			{"source_type", codes[rng.IntN(len(codes))]}, {"language", fileLangs[rng.IntN(len(fileLangs))]}, {"ext", "ttml"}}
		keys := m.ix.keys(m.ps, caps)
		// The scan: every request, every field, the slow way.
		var want, wantDist []int
		for i := range m.ix.reqs {
			if d := m.ix.distance(int32(i), keys); d == 0 {
				want = append(want, i)
			}
		}
		var got []int
		same, lacking, all := m.ix.candidates(keys)
		if all {
			t.Fatalf("every request a candidate for %v", caps)
		}
		for _, i := range append(append([]int32(nil), same...), lacking...) {
			if m.ix.distance(i, keys) == 0 {
				got = append(got, int(i))
			}
		}
		sort.Ints(got)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("case %d %v: index finds %v, scan finds %v", n, caps, got, want)
		}
		// Nearest: the same distances as the three best by scan.
		type d struct{ i, dist int }
		var ds []d
		for i := range m.ix.reqs {
			if m.ix.reqs[i].req.Accepting() {
				ds = append(ds, d{i, m.ix.distance(int32(i), keys)})
			}
		}
		sort.SliceStable(ds, func(a, b int) bool { return ds[a].dist < ds[b].dist })
		for _, x := range ds[:min(3, len(ds))] {
			wantDist = append(wantDist, x.dist)
		}
		var gotDist []int
		for _, x := range m.ix.nearest(keys, 3) {
			gotDist = append(gotDist, x.dist)
		}
		// A request sharing no value is never named; the scan may list it.
		for len(wantDist) > len(gotDist) && wantDist[len(wantDist)-1] >= len(keys)-1 {
			wantDist = wantDist[:len(wantDist)-1]
		}
		if fmt.Sprint(gotDist[:min(len(gotDist), len(wantDist))]) != fmt.Sprint(wantDist) {
			t.Fatalf("case %d %v: nearest distances %v, scan %v", n, caps, gotDist, wantDist)
		}
	}
}

// TestLanguageEquivalence: BCP 47 compares canonical forms.
func TestLanguageEquivalence(t *testing.T) {
	ps, _ := buildProfiles(nil)
	tests := []struct {
		a, b string
		same bool
	}{
		{"fr-fr", "fr-FR", true}, {"FR_fr", "fr-FR", true}, {"fre", "fr", true}, {"zh-hant-tw", "zh-Hant-TW", true},
		{"en", "en-US", false}, {"pt-BR", "pt-PT", false}, {"L", "l", true}, {"L", "fr", false},
	}
	for _, tt := range tests {
		if got := normValue(ps, "language", tt.a) == normValue(ps, "language", tt.b); got != tt.same {
			t.Errorf("language %q = %q: %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{{"SUB", "Subtitle", true}, {"cc", "SDH/CC", true}, {"ME", "Audio M&E", true}, {"Custom X", "custom_x", true}, {"SUB", "SDH/CC", false}} {
		if got := normValue(ps, "source_type", tt.a) == normValue(ps, "source_type", tt.b); got != tt.same {
			t.Errorf("source_type %q = %q: %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

// benchMatcher builds 10,000 open requests (250 titles × 10 episodes × 4 source type and
// language pairs) and the given number of rules, and 100,000 names, half of which fit a
// request and half of which differ in one field (so the nearest-request search is paid).
func benchMatcher(b *testing.B, nrules int) (*Matcher, []string) {
	pairs := [][3]string{{"Subtitle", "SUB", "fr-FR"}, {"Subtitle", "SUB", "de-DE"}, {"SDH/CC", "SDH", "en-US"}, {"Audio Description", "AD", "en-US"}}
	var reqs []Request
	for t := range 250 {
		for e := range 10 {
			for _, p := range pairs {
				id := fmt.Sprintf("SR-%d", len(reqs))
				reqs = append(reqs, req(id, "open", "title", fmt.Sprintf("Show%03d", t), "episode", fmt.Sprintf("S01E%02d", e+1),
					"source_type", p[0], "language", p[2], "package_id", fmt.Sprintf("PKG-%d", t)))
			}
		}
	}
	ep := regexp.MustCompile(`S[0-9]{2}E[0-9]{2}`)
	rules := []Rule{
		{Name: "dotted", Pattern: "{title}.{episode}.{source_type}.{language}.{ext}", Where: map[string]*regexp.Regexp{"episode": ep}},
		{Name: "package", Pattern: "PKG-{package_id}_{source_type}_{language}.{ext}"},
		{Name: "by-id", Pattern: "{id}.{ext}", Where: map[string]*regexp.Regexp{"id": regexp.MustCompile(`SR-[0-9]+`)}},
		{Name: "no-language", Pattern: "{title}-{episode}-{source_type}.{ext}", Where: map[string]*regexp.Regexp{"episode": ep}},
	}
	for i := 0; len(rules) < nrules-1; i++ {
		rules = append(rules, Rule{Name: fmt.Sprintf("vendor%d", i), Pattern: fmt.Sprintf("V%d_{title}_{episode}.{ext}", i)})
	}
	rules = append(rules, timedTextRule)
	m, err := New(Options{Rules: rules, Requests: reqs})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	names := make([]string, 100_000)
	for i := range names {
		t, e, p := rng.IntN(250), rng.IntN(10)+1, pairs[rng.IntN(len(pairs))]
		lang := p[2]
		if i%2 == 1 {
			lang = "it-IT" // no request has it: held, nearest requests searched
		}
		names[i] = fmt.Sprintf("Show%03d_S01E%02d_%s_%s.ttml", t, e, p[1], lang)
	}
	return m, names
}

func benchmarkMatch(b *testing.B, nrules int) {
	m, names := benchMatcher(b, nrules)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	matched := 0
	for i := 0; b.Loop(); i++ {
		var t Trace
		if r := m.match(names[i%len(names)], "", false, &t); r.req >= 0 {
			matched++
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/name")
	b.ReportMetric(float64(matched)/float64(b.N), "matched/name")
}

// BenchmarkMatch5Rules is the benchmark: names against 10,000 open requests with 5
// rules, the last of which fits; ns/op is per name.
func BenchmarkMatch5Rules(b *testing.B) { benchmarkMatch(b, 5) }

// BenchmarkMatch20Rules is the same with 20 rules.
func BenchmarkMatch20Rules(b *testing.B) { benchmarkMatch(b, 20) }
