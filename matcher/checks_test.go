package matcher

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

func TestBuiltinProfiles(t *testing.T) {
	want := []string{"Audio Description", "Audio M&E", "Audio Print Master", "Final Script", "Forced Sub",
		"Production Locked Proxy", "SDH/CC", "Secondary Audio", "Subtitle", "AV (Muxed)", "Non-IMF delivery",
		"Secondary AV (Muxed)", "IMF", "VFX"}
	ps, err := buildProfiles(nil)
	if err != nil {
		t.Fatalf("the built-in profiles clash: %v", err)
	}
	if len(ps.list) != len(want) {
		t.Fatalf("%d built-in profiles, want %d", len(ps.list), len(want))
	}
	for i, p := range ps.list {
		if p.Name != want[i] {
			t.Errorf("profile %d = %s, want %s", i, p.Name, want[i])
		}
	}
	for code, name := range map[string]string{
		"SUB": "Subtitle", "sdh": "SDH/CC", "CC": "SDH/CC", "sdh-cc": "SDH/CC", "ME": "Audio M&E", "M&E": "Audio M&E",
		"audio_m&e": "Audio M&E", "PM": "Audio Print Master", "AD": "Audio Description", "FS": "Forced Sub",
		"PLP": "Production Locked Proxy", "IMF": "IMF", "IMP": "IMF", "av (muxed)": "AV (Muxed)", "AV": "AV (Muxed)",
		"NON-IMF": "Non-IMF delivery", "SAV": "Secondary AV (Muxed)", "script": "Final Script", "SA": "Secondary Audio",
		"PLATES": "VFX", "exr": "VFX", "vfx-pull": "VFX",
	} {
		if p := ps.lookup(code); p == nil || p.Name != name {
			t.Errorf("lookup(%q) = %v, want %s", code, p, name)
		}
	}
	if ps.lookup("XYZ") != nil {
		t.Errorf("lookup(XYZ) found a profile")
	}
	if !ps.lookup("IMF").Multi || ps.lookup("SUB").Multi {
		t.Errorf("IMF must be multi-file and Subtitle single")
	}
}

func TestOverrideProfiles(t *testing.T) {
	yes := true
	ps, err := buildProfiles([]SourceType{
		{Name: "subtitle", Extensions: []string{".TTML"}, Metadata: map[string]Field{"frame_rate": {Required: true, Values: []string{"25"}}}, RequireChecksum: true},
		{Name: "Karaoke", Aliases: []string{"KAR"}, Multi: &yes},
		{Name: "SDH/CC", Aliases: []string{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sub := ps.lookup("SUB")
	if sub == nil || strings.Join(sub.Extensions, ",") != "ttml" || !sub.RequireChecksum {
		t.Fatalf("Subtitle override: %+v", sub)
	}
	if !sub.Metadata["frame_rate"].Required || !sub.Metadata["language"].Required {
		t.Errorf("Subtitle metadata %v: frame_rate must be replaced and language kept", sub.Metadata)
	}
	if bi := BuiltinProfiles()[8]; bi.Metadata["frame_rate"].Required {
		t.Errorf("the override changed the built-in profile")
	}
	if k := ps.lookup("kar"); k == nil || !k.Multi || len(k.Extensions) != 0 {
		t.Errorf("Karaoke: %+v", k)
	}
	if ps.lookup("CC") != nil || ps.lookup("SDH/CC") == nil {
		t.Errorf("an empty aliases list must remove the aliases, keeping the name")
	}
}

func TestMetadataChecks(t *testing.T) {
	p := &Profile{Name: "Subtitle", Metadata: map[string]Field{
		"language":   {Required: true},
		"frame_rate": {Values: []string{"23.976", "25"}},
		"kind":       {Values: []string{"Full"}},
	}}
	tests := []struct {
		md               map[string]string
		missing, invalid string
	}{
		{map[string]string{"language": "fr-FR", "frame_rate": "25.0", "kind": "FULL"}, "", ""},
		{map[string]string{"frame_rate": "24"}, "language", `frame_rate: "24"`},
		{map[string]string{"language": "not a tag"}, "", "language: \"not a tag\""},
		{map[string]string{"language": " "}, "language", ""},
	}
	for _, tt := range tests {
		md := Metadata{}
		for k, v := range tt.md {
			md[k] = Value{Value: v, Source: FromSidecar, From: "x.toml"}
		}
		missing, invalid := metadataProblems(p, md)
		if strings.Join(missing, ",") != tt.missing || (tt.invalid == "") != (len(invalid) == 0) || (tt.invalid != "" && !strings.HasPrefix(invalid[0], tt.invalid)) {
			t.Errorf("metadataProblems(%v) = %v, %v; want %q, %q", tt.md, missing, invalid, tt.missing, tt.invalid)
		}
	}
}

func TestChecksumFiles(t *testing.T) {
	dir := t.TempDir()
	data := []byte("the render\n")
	file := filepath.Join(dir, "ep.mov")
	os.WriteFile(file, data, 0o644)
	m5 := md5.Sum(data)
	s2 := sha256.Sum256(data)
	x := fmt.Sprintf("%016x", xxhash.Sum64(data))
	tests := []struct {
		ext, content string
		mismatch     bool
		parseErr     string
	}{
		{"md5", hex.EncodeToString(m5[:]) + "  ep.mov\n", false, ""},
		{"md5", strings.ToUpper(hex.EncodeToString(m5[:])) + " *ep.mov\n", false, ""},
		{"sha256", hex.EncodeToString(s2[:]) + "\n", false, ""},
		{"sha256", "0000000000000000000000000000000000000000000000000000000000000000  other.mov\n" + hex.EncodeToString(s2[:]) + "  dir/ep.mov\n", false, ""},
		{"xxh64", x + "  ep.mov\n", false, ""},
		{"xxh64", "0123456789abcdef  ep.mov\n", true, ""},
		{"md5", "nothex  ep.mov\n", false, "ep.mov.md5:1:1: expected 32 hex digits"},
		{"md5", hex.EncodeToString(m5[:]) + "  a\n" + hex.EncodeToString(m5[:]) + "  b\n", false, "has no line for ep.mov"},
		// Past the size cap the file is refused, not checked on its first MiB.
		{"md5", strings.Repeat("# padding\n", 110_000) + hex.EncodeToString(m5[:]) + "  ep.mov\n", false, "is larger than 1048576 bytes"},
		// A line past the scanner's buffer ends the scan: refused, not "no line".
		{"md5", "# " + strings.Repeat("x", 70_000) + "\n" + hex.EncodeToString(m5[:]) + "  ep.mov\n", false, "ep.mov.md5:1:1: a line longer than 65536 bytes"},
	}
	for _, tt := range tests {
		cf := file + "." + tt.ext
		os.WriteFile(cf, []byte(tt.content), 0o644)
		sums, serr := readChecksums(safefs.NewUnder(""), "", file)
		os.Remove(cf)
		if tt.parseErr != "" {
			if serr == nil || !strings.Contains(serr.Error(), tt.parseErr) {
				t.Errorf("%s %q: error %v, want %q", tt.ext, tt.content, serr, tt.parseErr)
			}
			continue
		}
		if serr != nil || len(sums) != 1 {
			t.Errorf("%s %q: %v %v", tt.ext, tt.content, sums, serr)
			continue
		}
		err := sums[0].Verify(context.Background(), file)
		if tt.mismatch != errors.Is(err, ErrChecksumMismatch) || (!tt.mismatch && err != nil) {
			t.Errorf("%s %q: Verify = %v, mismatch want %v", tt.ext, tt.content, err, tt.mismatch)
		}
	}
}

func TestRequireChecksumAndMarker(t *testing.T) {
	m, err := New(Options{
		Requests:    []Request{req("SR-1", "open", "source_type", "IMF"), req("SR-2", "open", "source_type", "Production Locked Proxy")},
		SourceTypes: []SourceType{{Name: "IMF", RequireMarker: true}, {Name: "Production Locked Proxy", RequireChecksum: true}},
		ReadyMarker: "_DONE",
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	drop(t, dir, map[string]string{"pkg/CPL.xml": "<cpl/>", "proxy.mov": "mov"})
	cpl := filepath.Join(dir, "pkg", "CPL.xml")
	v := m.Evaluate(Input{Path: cpl, Root: dir, Request: "SR-1"})
	if v.Hold != nil || !strings.Contains(v.Wait, "_DONE") || v.Files != 0 {
		t.Errorf("IMF without the marker: hold %+v wait %q files %d; want no hold, waiting for _DONE, files 0", v.Hold, v.Wait, v.Files)
	}
	drop(t, dir, map[string]string{"_DONE": ""})
	if v := m.Evaluate(Input{Path: cpl, Root: dir, Request: "SR-1"}); v.Hold != nil || v.Wait != "" {
		t.Errorf("IMF with the marker: hold %+v wait %q", v.Hold, v.Wait)
	}
	proxy := filepath.Join(dir, "proxy.mov")
	if v := m.Evaluate(Input{Path: proxy, Root: dir, Request: "SR-2"}); holdCode(v) != HoldChecksumMismatch {
		t.Errorf("proxy without a checksum file: hold %+v, want checksum_mismatch", v.Hold)
	}
	sum := md5.Sum([]byte("mov"))
	drop(t, dir, map[string]string{"proxy.mov.md5": hex.EncodeToString(sum[:]) + "  proxy.mov\n"})
	v = m.Evaluate(Input{Path: proxy, Root: dir, Request: "SR-2", VerifyChecksums: true})
	if v.Hold != nil || len(v.Checksums) != 1 {
		t.Errorf("proxy with a good checksum file: hold %+v checksums %v", v.Hold, v.Checksums)
	}
	drop(t, dir, map[string]string{"proxy.mov": "truncated"})
	if v := m.Evaluate(Input{Path: proxy, Root: dir, Request: "SR-2", VerifyChecksums: true}); holdCode(v) != HoldChecksumMismatch {
		t.Errorf("proxy changed after its checksum: hold %+v, want checksum_mismatch", v.Hold)
	}
}

func TestAuxiliary(t *testing.T) {
	m := newTest(t)
	dir := t.TempDir()
	drop(t, dir, map[string]string{"ep": "x", "ep.toml": "", "notes.json": "{}", "script.toml": ""})
	tests := []struct {
		name string
		aux  bool
	}{
		{"_READY", true}, {"_metadata.toml", true}, {"_metadata.json", true}, {".hotdrop-status.json", true},
		{"ep.ttml.toml", true}, {"ep.ttml.json", true}, {"ep.mov.md5", true}, {"ep.mov.sha256", true}, {"ep.mov.xxh64", true},
		{"ep.toml", true}, // beside an existing "ep"
		{"notes.json", false}, {"script.toml", false}, {"ep.mov", false}, {"ep.md5", true}, {"other.md5", false}, {".toml", false},
	}
	for _, tt := range tests {
		if got, _ := m.Auxiliary(filepath.Join(dir, tt.name)); got != tt.aux {
			t.Errorf("Auxiliary(%s) = %v, want %v", tt.name, got, tt.aux)
		}
	}
	v := m.Evaluate(Input{Path: filepath.Join(dir, "ep.toml"), Root: dir, Request: "SR-1042"})
	if v.Auxiliary == "" {
		t.Errorf("Evaluate of a sidecar did not say it is auxiliary")
	}
}

func TestPortableName(t *testing.T) {
	for name, ok := range map[string]bool{"a/b-c_d.1.ttml": true, "a b.ttml": false, "é.ttml": false, strings.Repeat("a", 256): false} {
		if got := PortableNameProblem(name) == ""; got != ok {
			t.Errorf("PortableNameProblem(%q) ok = %v, want %v", name, got, ok)
		}
	}
}

// TestNameProblem: the one names policy. Unsafe names are refused under both policies,
// non-portable ones only under "portable".
func TestNameProblem(t *testing.T) {
	for _, tt := range []struct {
		policy, rel string
		ok          bool
	}{
		{"portable", "a/b-c_d.1.ttml", true},
		{"portable", "Audio M&E/a.wav", false},
		{"any", "Audio M&E/a.wav", true},
		{"portable", "a/../b.wav", false},
		{"any", "a/../b.wav", false},
		{"any", "a\\b.wav", false},
		{"any", "a\nb.wav", false},
		{"", "a b.wav", true},
	} {
		if got := NameProblem(tt.policy, tt.rel); (got == "") != tt.ok {
			t.Errorf("NameProblem(%q, %q) = %q, want ok %v", tt.policy, tt.rel, got, tt.ok)
		}
	}
}

func TestAffected(t *testing.T) {
	m := newTest(t)
	dir := t.TempDir()
	drop(t, dir, map[string]string{"ep": "x"})
	tests := []struct {
		name, target string
		below, ok    bool
	}{
		{"ep.ttml.toml", "ep.ttml", false, true},
		{"ep.toml", "ep", false, true},
		{"ep.mov.xxh64", "ep.mov", false, true},
		{"_metadata.json", ".", true, true},
		{"_READY", ".", true, true},
		{".hotdrop-status.json", "", false, true},
		{"ep.mov", "", false, false},
	}
	for _, tt := range tests {
		target, below, ok := m.Affected(filepath.Join(dir, tt.name))
		want := ""
		if tt.target != "" {
			want = filepath.Join(dir, tt.target)
		}
		if target != want || below != tt.below || ok != tt.ok {
			t.Errorf("Affected(%s) = %q %v %v, want %q %v %v", tt.name, target, below, ok, want, tt.below, tt.ok)
		}
	}
}

// Control characters, backslashes and ".." are refused whatever destination.names says.
func TestUnsafeNamesUnderAnyPolicy(t *testing.T) {
	m, err := New(Options{Requests: testRequests(), Names: "any"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"a\nb.ttml", "..\\evil.ttml"} {
		drop(t, dir, map[string]string{name: "subs"})
		v := m.Evaluate(Input{Path: filepath.Join(dir, name), Root: dir, Request: "SR-1042"})
		if holdCode(v) != HoldInvalidName {
			t.Errorf("Evaluate(%q) hold = %+v, want %s", name, v.Hold, HoldInvalidName)
		}
	}
	if p := UnsafeNameProblem("SR-1/Audio M&E/été.wav"); p != "" {
		t.Errorf("UnsafeNameProblem of a plain name = %q, want none", p)
	}
}
