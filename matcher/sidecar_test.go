package matcher

import (
	"errors"
	"sort"
	"strings"
	"testing"
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
		{"a.toml", "\xff", "a.toml: is not UTF-8 text"},
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
