package matcher

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var timedTextRule = Rule{
	Name:    "timed-text",
	Pattern: "{title}_{episode}_{source_type}_{language}.{ext}",
	Where:   map[string]*regexp.Regexp{"episode": regexp.MustCompile(`S[0-9]{2}E[0-9]{2}`)},
}

func req(id, status string, kv ...string) Request {
	r := Request{ID: id, Status: status, Files: 1, Fields: map[string]string{"id": id, "status": status}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "files" {
			r.Files, r.FilesSet = int(kv[i+1][0]-'0'), true
			continue
		}
		r.Fields[kv[i]] = kv[i+1]
	}
	return r
}

func testRequests() []Request {
	return []Request{
		req("SR-1042", "open", "title", "Wednesday", "episode", "S01E03", "source_type", "Subtitle", "language", "fr-FR", "package_id", "PKG-1"),
		req("SR-1043", "open", "title", "Wednesday", "episode", "S01E03", "source_type", "Audio M&E", "package_id", "PKG-1", "files", "2"),
		req("SR-1044", "open", "title", "Wednesday", "episode", "S01E03", "source_type", "Subtitle", "language", "de-DE", "package_id", "PKG-1"),
		req("SR-1045", "open", "title", "Wednesday", "episode", "S01E04", "source_type", "SDH/CC", "language", "en-US"),
		req("SR-1046", "closed", "title", "Wednesday", "episode", "S01E05", "source_type", "Subtitle", "language", "fr-FR"),
		req("SR-1047", "open", "title", "The Crown", "episode", "S02E01", "source_type", "Subtitle", "language", "es-419"),
		req("SR-1048", "redelivery_requested", "title", "The Crown", "episode", "S02E02", "source_type", "IMF"),
	}
}

func newTest(t *testing.T, extra ...Request) *Matcher {
	t.Helper()
	m, err := New(Options{Rules: []Rule{timedTextRule}, Requests: append(testRequests(), extra...), Names: "portable"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// drop writes files (name → content) below dir; names may hold slashes.
func drop(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func holdCode(v Verdict) string {
	if v.Hold == nil {
		return ""
	}
	return v.Hold.Code
}

func TestEvaluateBin(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		files   map[string]string // besides the file itself
		request string
		hold    string
		msg     string // a part of the hold message
	}{
		{"match", "Wednesday_S01E03_SUB_fr-FR.ttml", nil, "SR-1042", "", ""},
		{"alias and case", "wednesday_s01e03_sub_FR-fr.TTML", nil, "", "no_matching_request", "where.episode"},
		{"language case", "Wednesday_S01E03_SUB_fr-fr.ttml", nil, "SR-1042", "", ""},
		{"language underscore", "Wednesday_S01E03_SUB_fr_FR.ttml", nil, "SR-1042", "", ""},
		{"sdh alias", "Wednesday_S01E04_SDH_en-US.scc", nil, "SR-1045", "", ""},
		{"cc alias", "Wednesday_S01E04_CC_en-US.scc", nil, "SR-1045", "", ""},
		{"title with underscore for a space", "The_Crown_S02E01_SUB_es-419.ttml", nil, "SR-1047", "", ""},
		{"no match nearest", "Wednesday_S01E03_SUB_it-IT.ttml", nil, "", "no_matching_request", `SR-1042 (language "it-IT" ≠ "fr-FR")`},
		{"closed", "Wednesday_S01E05_SUB_fr-FR.ttml", nil, "", "request_not_open", "SR-1046 (status closed)"},
		{"request lacking a field is not constrained", "Wednesday_S01E03_ME_en.wav", nil, "SR-1043", "", ""},
		{"no rule fits", "notes.txt", nil, "", "no_matching_request", "no naming rule fits"},
		{"pin", "Wednesday_S01E03_SUB_it-IT.ttml", map[string]string{"Wednesday_S01E03_SUB_it-IT.ttml.toml": `request = "SR-1044"`}, "SR-1044", "", ""},
		{"pin closed", "x.ttml", map[string]string{"x.ttml.json": `{"request": "SR-1046"}`}, "", "request_not_open", "SR-1046"},
		{"pin unknown", "x.ttml", map[string]string{"x.ttml.json": `{"request": "SR-9"}`}, "", "no_matching_request", "SR-9"},
		{"broken sidecar", "Wednesday_S01E03_SUB_fr-FR.ttml", map[string]string{"Wednesday_S01E03_SUB_fr-FR.ttml.toml": "frame_rate = \n"}, "SR-1042", "invalid_sidecar", ".ttml.toml:1:"},
		{"wrong extension", "Wednesday_S01E03_SUB_fr-FR.wav", nil, "SR-1042", "unsupported_extension", ".ttml"},
		{"invalid metadata", "Wednesday_S01E03_SUB_fr-FR.ttml", map[string]string{"_metadata.toml": "frame_rate = 26\n"}, "SR-1042", "invalid_metadata", "23.976, 24"},
		{"unportable name", "Wednesday S01E03_SUB_fr-FR.ttml", nil, "", "invalid_name", "space"},
		{"imf package folder", "WED_IMF/CPL_x.xml", nil, "", "no_matching_request", ""},
	}
	m := newTest(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := t.TempDir()
			drop(t, bin, map[string]string{tt.file: "data"})
			drop(t, bin, tt.files)
			v := m.Evaluate(Input{Path: filepath.Join(bin, filepath.FromSlash(tt.file)), Root: bin, Explain: true})
			if v.Request != tt.request || holdCode(v) != tt.hold {
				t.Fatalf("Evaluate(%s) = request %q hold %+v, want %q %q", tt.file, v.Request, v.Hold, tt.request, tt.hold)
			}
			if tt.msg != "" && !strings.Contains(v.Hold.Message, tt.msg) {
				t.Errorf("Evaluate(%s) hold message %q, want it to contain %q", tt.file, v.Hold.Message, tt.msg)
			}
		})
	}
}

func TestAmbiguous(t *testing.T) {
	// Two rules are tried in order; the first that fits decides, and its two splits point at
	// two requests.
	r := Rule{Name: "loose", Pattern: "{title}_{source_type}.{ext}"}
	m, err := New(Options{Rules: []Rule{r}, Requests: []Request{
		req("SR-1", "open", "title", "A", "source_type", "Subtitle"),
		req("SR-2", "open", "title", "A_SUB", "source_type", "SDH/CC", "language", "en"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	drop(t, bin, map[string]string{"A_SUB_CC.srt": "x", "A_SUB.srt": "x"})
	v := m.Evaluate(Input{Path: filepath.Join(bin, "A_SUB_CC.srt"), Root: bin})
	if holdCode(v) != "" || v.Request != "SR-2" {
		t.Errorf("A_SUB_CC.srt: request %q hold %+v, want SR-2", v.Request, v.Hold)
	}
	// Same-field splits pointing at different requests: ambiguous.
	m, _ = New(Options{Rules: []Rule{{Name: "r", Pattern: "{title}_{episode}.{ext}"}}, Requests: []Request{
		req("SR-1", "open", "title", "The", "episode", "Crown_S01E01"),
		req("SR-2", "open", "title", "The_Crown", "episode", "S01E01"),
	}})
	drop(t, bin, map[string]string{"The_Crown_S01E01.mov": "x"})
	v = m.Evaluate(Input{Path: filepath.Join(bin, "The_Crown_S01E01.mov"), Root: bin})
	if holdCode(v) != HoldAmbiguousMatch || !strings.Contains(v.Hold.Message, "SR-1, SR-2") {
		t.Errorf("The_Crown_S01E01.mov: hold %+v, want ambiguous_match naming SR-1, SR-2", v.Hold)
	}
	drop(t, bin, map[string]string{"The_Crown_S01E01.mov.toml": `request = "sr-2"`})
	v = m.Evaluate(Input{Path: filepath.Join(bin, "The_Crown_S01E01.mov"), Root: bin})
	if holdCode(v) != "" || v.Request != "SR-2" {
		t.Errorf("pinned The_Crown_S01E01.mov: request %q hold %+v, want SR-2", v.Request, v.Hold)
	}
	if v.Metadata["title"].Value != "The_Crown" || v.Metadata["title"].Source != FromName {
		t.Errorf("pinned: title = %+v, want the capture of the split pointing at SR-2", v.Metadata["title"])
	}
}

func TestDropFolder(t *testing.T) {
	// An Audio Description request: its profile requires a language, which SR-1050 lacks.
	m := newTest(t, req("SR-1050", "open", "title", "Wednesday", "episode", "S01E03", "source_type", "Audio Description", "package_id", "PKG-1", "files", "2"))
	tests := []struct {
		name, request, file string
		files               map[string]string
		hold                string
		files0              int
		fromProfile         bool
	}{
		{"plain", "SR-1042", "ep.ttml", nil, "", 1, true},
		{"rules not used", "SR-1042", "whatever_name.ttml", nil, "", 1, true},
		{"set files wins", "SR-1043", "L.wav", nil, "", 2, false},
		{"multi by profile", "SR-1048", "CPL.xml", nil, "", 0, true},
		{"imf subfolder", "SR-1048", "pkg/VIDEO.mxf", nil, "", 0, true},
		{"wrong extension", "SR-1048", "pkg/notes.pdf", nil, "unsupported_extension", 0, true},
		{"missing language", "SR-1042", "ep.ttml", map[string]string{"_metadata.json": `{"language": ""}`}, "missing_metadata", 1, true},
		{"misspelt language", "SR-1050", "ep.wav", map[string]string{"ep.wav.toml": "languag = \"en\"\n"}, "missing_metadata", 2, false},
		{"linked sidecar", "SR-1042", "ep.ttml", map[string]string{"ep.ttml.json": "@link"}, "invalid_sidecar", 1, true},
		{"pin elsewhere", "SR-1042", "ep.ttml", map[string]string{"ep.ttml.toml": `request = "SR-1044"`}, "invalid_metadata", 1, true},
		{"closed", "SR-1046", "ep.ttml", nil, "request_not_open", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			drop(t, dir, map[string]string{tt.file: "x"})
			drop(t, dir, tt.files)
			for name, content := range tt.files {
				if content == "@link" {
					p := filepath.Join(dir, name)
					os.Remove(p)
					if err := os.Symlink("/etc/hostname", p); err != nil {
						t.Skip(err)
					}
				}
			}
			v := m.Evaluate(Input{Path: filepath.Join(dir, filepath.FromSlash(tt.file)), Root: dir, Request: tt.request})
			if holdCode(v) != tt.hold || v.Request != tt.request {
				t.Fatalf("Evaluate(%s in %s) = %q %+v, want hold %q", tt.file, tt.request, v.Request, v.Hold, tt.hold)
			}
			if tt.hold == HoldMissingMetadata && strings.Contains(tt.name, "misspelt") && !strings.Contains(v.Hold.Message, "languag is given, did you mean language?") {
				t.Errorf("misspelt field: %q gives no hint", v.Hold.Message)
			}
			if v.Files != tt.files0 || v.FilesFromProfile != tt.fromProfile {
				t.Errorf("Evaluate(%s in %s): Files %d (from profile %v), want %d (%v)", tt.file, tt.request, v.Files, v.FilesFromProfile, tt.files0, tt.fromProfile)
			}
		})
	}
}

func TestMetadataPrecedence(t *testing.T) {
	m := newTest(t)
	bin := t.TempDir()
	file := "show/s1/Wednesday_S01E03_SUB_fr-FR.ttml"
	drop(t, bin, map[string]string{
		file:                  "x",
		"_metadata.toml":      "frame_rate = \"25\"\nvendor = \"far\"\ntitle = \"WEDNESDAY\"\n", // agrees with the request (a contradiction is held)
		"show/_metadata.json": `{"vendor": "near", "reel": 3}`,
		file + ".toml":        "frame_rate = 23.976\n",
	})
	v := m.Evaluate(Input{Path: filepath.Join(bin, filepath.FromSlash(file)), Root: bin})
	if holdCode(v) != "" || v.Request != "SR-1042" {
		t.Fatalf("request %q hold %+v", v.Request, v.Hold)
	}
	want := map[string][2]string{
		"frame_rate":  {"23.976", string(FromSidecar)},
		"vendor":      {"near", string(FromFolderSidecar)},
		"reel":        {"3", string(FromFolderSidecar)},
		"title":       {"WEDNESDAY", string(FromFolderSidecar)},
		"episode":     {"S01E03", string(FromName)},
		"language":    {"fr-FR", string(FromName)},
		"source_type": {"Subtitle", string(FromName)},
		"package_id":  {"PKG-1", string(FromRequest)},
	}
	for f, w := range want {
		if got := v.Metadata[f]; got.Value != w[0] || string(got.Source) != w[1] {
			t.Errorf("metadata %s = %+v, want %s from %s", f, got, w[0], w[1])
		}
	}
	if raw := v.Metadata["source_type"].Raw; raw != "SUB" {
		t.Errorf("source_type raw = %q, want SUB", raw)
	}
	if _, ok := v.Metadata["status"]; ok {
		t.Errorf("status is in the metadata")
	}
	if len(v.Trace.Sidecars) != 3 {
		t.Errorf("sidecars %v, want three", v.Trace.Sidecars)
	}
}

func TestBothSidecars(t *testing.T) {
	m := newTest(t)
	dir := t.TempDir()
	drop(t, dir, map[string]string{"a.ttml": "x", "a.ttml.toml": "", "a.ttml.json": "{}"})
	v := m.Evaluate(Input{Path: filepath.Join(dir, "a.ttml"), Root: dir, Request: "SR-1042"})
	if holdCode(v) != HoldInvalidSidecar || !strings.Contains(v.Hold.Message, "keep one") {
		t.Errorf("hold %+v, want invalid_sidecar about two sidecars", v.Hold)
	}
}

func TestOutsideRoot(t *testing.T) {
	m := newTest(t)
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "..", "x"), "relative/x", dir} {
		v := m.Evaluate(Input{Path: p, Root: dir})
		if holdCode(v) != HoldUnsafePath {
			t.Errorf("Evaluate(%s) hold %+v, want unsafe_path", p, v.Hold)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"bad pattern", Options{Rules: []Rule{{Name: "r", Pattern: "{x", Pos: "h.toml:3:1"}}}, `h.toml:3:1: rule "r": pattern "{x", at byte 0`},
		{"where without capture", Options{Rules: []Rule{{Pattern: "{x}", Where: map[string]*regexp.Regexp{"y": regexp.MustCompile("a")}}}}, "no {y} capture"},
		{"alias clash", Options{SourceTypes: []SourceType{{Name: "Karaoke", Aliases: []string{"SUB"}}}}, `"SUB" names both "Subtitle" and "Karaoke"`},
	}
	for _, tt := range tests {
		_, err := New(tt.o)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	_, err := New(Options{Rules: []Rule{{Pattern: "a}"}}})
	var pe *PatternError
	if !errors.As(err, &pe) || pe.Offset != 1 {
		t.Errorf("New with pattern a} = %v, want a PatternError at offset 1", err)
	}
}

func TestFirstFittingRuleDecides(t *testing.T) {
	m, err := New(Options{
		Rules: []Rule{
			{Name: "by-id", Pattern: "{id}_{rest}.{ext}", Where: map[string]*regexp.Regexp{"id": regexp.MustCompile(`SR-[0-9]+`)}},
			timedTextRule,
		},
		Requests: testRequests(),
	})
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	tests := []struct{ name, rule, request, hold string }{
		{"SR-1044_anything.ttml", "by-id", "SR-1044", ""},
		// by-id does not fit (where refuses), so timed-text decides.
		{"Wednesday_S01E03_SUB_fr-FR.ttml", "timed-text", "SR-1042", ""},
		// by-id fits and decides, even though it points at no open request.
		{"SR-1046_x.ttml", "by-id", "", HoldRequestNotOpen},
	}
	for _, tt := range tests {
		drop(t, bin, map[string]string{tt.name: "x"})
		v := m.Evaluate(Input{Path: filepath.Join(bin, tt.name), Root: bin})
		if v.Trace.Decided != tt.rule || v.Request != tt.request || holdCode(v) != tt.hold {
			t.Errorf("Evaluate(%s): rule %q request %q hold %+v; want %q %q %q", tt.name, v.Trace.Decided, v.Request, v.Hold, tt.rule, tt.request, tt.hold)
		}
	}
}

// TestConcurrentEvaluate: one Matcher, many goroutines (run with -race).
func TestConcurrentEvaluate(t *testing.T) {
	m := newTest(t)
	bin := t.TempDir()
	names := []string{"Wednesday_S01E03_SUB_fr-FR.ttml", "Wednesday_S01E03_SUB_it-IT.ttml", "x.ttml", "The_Crown_S02E01_SUB_es-419.ttml"}
	for _, n := range names {
		drop(t, bin, map[string]string{n: "x"})
	}
	want := make([]Verdict, len(names))
	for i, n := range names {
		want[i] = m.Evaluate(Input{Path: filepath.Join(bin, n), Root: bin})
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			for i := range 50 {
				j := (g + i) % len(names)
				v := m.Evaluate(Input{Path: filepath.Join(bin, names[j]), Root: bin, Explain: i%2 == 0})
				if v.Request != want[j].Request || holdCode(v) != holdCode(want[j]) {
					done <- errors.New(names[j] + ": a different verdict under concurrency")
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkEvaluate is the whole per-file cost with files on disk: sidecar and checksum
// look-ups included (a file sidecar and a folder sidecar exist).
func BenchmarkEvaluate(b *testing.B) {
	m, names := benchMatcher(b, 5)
	bin := b.TempDir()
	os.WriteFile(filepath.Join(bin, "_metadata.toml"), []byte("vendor = \"x\"\n"), 0o644)
	for _, n := range names[:100] {
		os.WriteFile(filepath.Join(bin, n), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(bin, n+".toml"), []byte("frame_rate = 25\n"), 0o644)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		m.Evaluate(Input{Path: filepath.Join(bin, names[i%100]), Root: bin})
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/file")
}

func TestFiles(t *testing.T) {
	m := newTest(t, req("SR-9", "open", "source_type", "Mystery"), Request{ID: "SR-10", Status: "open", Files: 1, FilesSet: true, Fields: map[string]string{"source_type": "IMF"}})
	tests := []struct {
		id          string
		files       int
		fromProfile bool
		ok          bool
	}{
		{"SR-1042", 1, true, true},  // Subtitle: one file
		{"SR-1043", 2, false, true}, // files = 2 set
		{"sr-1048", 0, true, true},  // IMF: any number
		{"SR-9", 1, false, true},    // no profile: the default
		{"SR-10", 1, false, true},   // files = 1 set wins over IMF's multi
		{"SR-404", 0, false, false},
	}
	for _, tt := range tests {
		files, fromProfile, ok := m.Files(tt.id)
		if files != tt.files || fromProfile != tt.fromProfile || ok != tt.ok {
			t.Errorf("Files(%s) = %d %v %v, want %d %v %v", tt.id, files, fromProfile, ok, tt.files, tt.fromProfile, tt.ok)
		}
	}
}
