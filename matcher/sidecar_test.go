package matcher

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParseSidecar(t *testing.T) {
	tests := []struct {
		file, data string
		want       string // "k=v,k=v" sorted, or the error
	}{
		{"a.toml", "language = \"fr-FR\"\nframe_rate = 23.976\nreel = 3\nhdr = true\n", "frame_rate=23.976,hdr=true,language=fr-FR,reel=3"},
		{"a.json", `{"language": "fr-FR", "frame_rate": 23.976, "hdr": false}`, "frame_rate=23.976,hdr=false,language=fr-FR"},
		{"a.json", "{}", ""},
		{"a.toml", "", ""},
		{"a.toml", "language = \"fr\"\nframe_rate = \n", "a.toml:2:14: "},
		{"a.toml", "x = [1, 2]\n", "a.toml:1:1: x: expected a string, number or boolean, not an array"},
		{"a.toml", "[sub]\nx = 1\n", "a.toml:1:1: sub: expected a string, number or boolean, not a table"},
		{"a.toml", "y = 1\n[[sub]]\nx = 1\n", "a.toml:2:1: sub: expected a string, number or boolean, not an array"},
		{"a.toml", "Language = \"fr\"\n", `a.toml:1:1: "Language" is not a field name`},
		{"a.toml", "request = \"\"\n", `a.toml:1:1: request: "" is not a request id`},
		{"a.json", "{\n  \"language\": \"fr\",\n  \"x\": [1]\n}", "a.json:3:8: x: expected a string, number or boolean, not an array"},
		{"a.json", "{\n  \"language\": \"fr\"\n  \"x\": 1\n}", "a.json:3:3: "},
		{"a.json", "{\n  \"a\": 1,\n  \"a\": 2\n}", `a.json:3:3: "a" is given twice`},
		{"a.json", "[1]", "a.json:1:1: expected a JSON object"},
		{"a.json", `{"a": 1} x`, "a.json:1:10: unexpected text after the JSON object"},
		{"a.json", `{"a": `, "a.json:1:7: unexpected end"},
		{"a.json", `{"é": 1}`, `a.json:1:2: "é" is not a field name`},
		{"a.json", `{"a": null}`, "a.json:1:7: a: expected a string, number or boolean, not null"},
		{"a.toml", "\xff", "a.toml:1:1: is not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"},
		{"a.toml", "title = \"ok\"\nlanguage = \"fr\xe9\"\n", "a.toml:2:15: is not UTF-8 text (byte 0xe9 at offset 27)"},
		{"a.json", "\xff\xfe{\x00\"\x00a\x00\"\x00", "a.json:1:1: is UTF-16 text (a Windows editor's \"Unicode\"), not UTF-8; save it as UTF-8"},
	}
	for _, tt := range tests {
		got, err := ParseSidecar(tt.file, []byte(tt.data))
		var s string
		if err != nil {
			var se *SidecarError
			if !errors.As(err, &se) {
				t.Errorf("ParseSidecar(%s, %q) error %v is not a *SidecarError", tt.file, tt.data, err)
			}
			s = err.Error()
		} else {
			var parts []string
			keys := make([]string, 0, len(got))
			for k := range got {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				parts = append(parts, k+"="+got[k])
			}
			s = strings.Join(parts, ",")
		}
		if !strings.HasPrefix(s, tt.want) || (err == nil && s != tt.want) {
			t.Errorf("ParseSidecar(%s, %q) = %s, want %s", tt.file, tt.data, s, tt.want)
		}
	}
}

// FuzzParseSidecar checks that no sidecar makes the decoder panic, and that errors always
// carry the file name.
func FuzzParseSidecar(f *testing.F) {
	f.Add(true, []byte(`{"language": "fr-FR", "frame_rate": 23.976}`))
	f.Add(false, []byte("language = \"fr-FR\"\nframe_rate = 23.976\n"))
	f.Add(false, []byte("[t]\nx = 1"))
	f.Add(true, []byte(`{"a": [1, {"b": 2}]}`))
	for name, data := range hostileSidecars() { // issue 9: these exhausted memory in the decoder
		f.Add(strings.HasSuffix(name, ".json"), data)
	}
	f.Fuzz(func(t *testing.T, isJSON bool, data []byte) {
		file := "s.toml"
		if isJSON {
			file = "s.json"
		}
		_, err := ParseSidecar(file, data)
		if err != nil && !strings.HasPrefix(err.Error(), file) {
			t.Fatalf("ParseSidecar(%q) error %q does not name the file", data, err)
		}
	})
}

// hostileSidecars are small files shaped to make a parser spend gigabytes (issue 9): before
// the bounded pre-scan, the first two ran BurntSushi/toml out of memory and the daemon with it.
func hostileSidecars() map[string][]byte {
	return map[string][]byte{
		"nested.toml":      []byte("a = " + strings.Repeat("{b = ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n"),
		"dotted.toml":      []byte("language = \"fr-FR\"\n" + strings.Repeat("a.", 20_000) + "b = 1\n"),
		"header.toml":      []byte("[" + strings.Repeat("a.", 20_000) + "b]\nc = 1\n"),
		"many-dotted.toml": []byte(strings.Repeat(strings.Repeat("a.", 30)+"k = 1\n", 12_000)),
		"nested.json":      []byte(strings.Repeat(`{"a": `, 9_000) + "1" + strings.Repeat("}", 9_000)),
		"wide.json":        []byte("{" + strings.Repeat(`"k": 1, `, 20_000) + `"z": 1}`),
	}
}

// TestHostileSidecarsRefusedCheaply: each hostile sidecar is refused as a *SidecarError naming
// the file, line and column, within a second and with little memory. (The old code is not run:
// it takes gigabytes.) The bounds are loose on purpose; a machine shared with other builds
// must not make this flaky.
func TestHostileSidecarsRefusedCheaply(t *testing.T) {
	dir := t.TempDir()
	for name, data := range hostileSidecars() {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "ep.ttml."+strings.SplitN(name, ".", 2)[1])
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(path)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, found, err := ReadSidecar(path)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			var se *SidecarError
			if !found || !errors.As(err, &se) || se.Line < 1 || se.Col < 1 || !strings.HasPrefix(err.Error(), path+":") {
				t.Fatalf("ReadSidecar(%s) = %v, want a *SidecarError at FILE:LINE:COL", name, err)
			}
			if took > time.Second {
				t.Errorf("ReadSidecar(%s) took %s, want well under a second", name, took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 50<<20 {
				t.Errorf("ReadSidecar(%s) allocated %d MB, want under 50 MB", name, alloc>>20)
			}
		})
	}
}

// TestHostileSidecarHoldsFile: through the matcher, a hostile sidecar holds its file
// invalid_sidecar with a sentence naming file, line and column.
func TestHostileSidecarHoldsFile(t *testing.T) {
	m := newTest(t)
	bin := t.TempDir()
	file := "Wednesday_S01E03_SUB_fr-FR.ttml"
	drop(t, bin, map[string]string{file: "data", file + ".toml": string(hostileSidecars()["dotted.toml"])})
	start := time.Now()
	v := m.Evaluate(Input{Path: filepath.Join(bin, file), Root: bin, Explain: true})
	if took := time.Since(start); took > time.Second {
		t.Errorf("Evaluate took %s, want well under a second", took)
	}
	want := filepath.Join(bin, file+".toml") + ":2:64: nests tables, arrays or dotted-key parts more than 32 levels deep"
	if holdCode(v) != HoldInvalidSidecar || !strings.HasPrefix(v.Hold.Message, want) {
		t.Errorf("hold %+v, want invalid_sidecar starting %q", v.Hold, want)
	}
}
