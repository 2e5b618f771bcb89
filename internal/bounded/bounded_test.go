package bounded

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// Hostile documents from issue 9: each makes BurntSushi/toml v1.6.0 allocate gigabytes.
func hostileTOML() map[string]string {
	return map[string]string{
		"10,000 nested inline tables": "a = " + strings.Repeat("{b = ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n",
		"20,000-part dotted key":      strings.Repeat("a.", 20_000) + "b = 1\n",
		"20,000-part table header":    "[" + strings.Repeat("a.", 20_000) + "b]\nc = 1\n",
		"nested arrays":               "a = " + strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + "\n",
		// Each key within the limits, but 32 parts nested in 32 inline tables: 1,024 deep.
		"long keys in nested tables": "x = " + strings.Repeat("{"+strings.Repeat("a.", 31)+"a = ", 32) + "1" + strings.Repeat("}", 32) + "\n",
		// 31-part keys by the thousand: each costs the decoder ~85 KB.
		"many long dotted keys": strings.Repeat(strings.Repeat("a.", 31)+"k = 1\n", 12_000),
	}
}

func TestTOMLRefusesHostileQuicklyWithLittleMemory(t *testing.T) {
	for name, doc := range hostileTOML() {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			err := TOML([]byte(doc), Untrusted)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			var be *Error
			if !errors.As(err, &be) || be.Line < 1 || be.Col < 1 {
				t.Fatalf("TOML(%s) = %v, want an *Error with a position", name, err)
			}
			if took > 200*time.Millisecond {
				t.Errorf("TOML(%s) took %s, want well under a second", name, took)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("TOML(%s) allocated %d bytes, want under 1 MiB", name, alloc)
			}
		})
	}
}

func TestTOMLPositions(t *testing.T) {
	for _, tt := range []struct {
		doc       string
		lim       Limits
		line, col int
		msg       string
	}{
		{"a = 1\nb.c.d = 2\n", Limits{MaxDepth: 2}, 2, 4, "more than 2 levels"},
		{"[x]\n\"é\".c = { d = 1 }\n", Limits{MaxDepth: 3}, 2, 11, "more than 3 levels"},
		{"a = [[[1]]]\n", Limits{MaxDepth: 3}, 1, 7, "more than 3 levels"},
		{"[a.b.c]\n", Limits{MaxDepth: 2}, 1, 5, "more than 2 levels"},
		{"a = 1\nb = 2\nc = 3\n", Limits{MaxKeys: 2}, 3, 1, "more than 2 keys"},
		{"a = 1\n", Limits{MaxBytes: 3}, 0, 0, "is 6 bytes, more than the 3 allowed"},
	} {
		err := TOML([]byte(tt.doc), tt.lim)
		var be *Error
		if !errors.As(err, &be) || be.Line != tt.line || be.Col != tt.col || !strings.Contains(be.Msg, tt.msg) {
			t.Errorf("TOML(%q, %+v) = %v, want %d:%d: …%s…", tt.doc, tt.lim, err, tt.line, tt.col, tt.msg)
		}
	}
}

// TestTOMLPassesOrdinaryDocuments: what hotdrop itself reads (config, requests, sidecars)
// passes, with brackets, dots and quotes inside strings and comments not counted.
func TestTOMLPassesOrdinaryDocuments(t *testing.T) {
	docs := []string{
		"language = \"fr-FR\"\nframe_rate = 23.976\nwhen = 1979-05-27 07:32:00.999\n",
		"a = \"[[[[{{{{ a.b.c.d.e\"\nb = '{{{{.....'\nc = \"\"\"\n[[[[\n.....\\\"\"\"\"\nd = '''\n{{{{'''\n# [[[[ {{{{ a.b.c.d.e.f\n",
		"[source_type.metadata]\nlanguage = { required = true }\nframe_rate = { required = true, values = [\"23.976\", \"24\"] }\n",
		"[[request]]\nid = \"SR-1\"\n[[request]]\nid = \"SR-2\"\nfiles = 2\n",
		"a = [\n  [1, 2], # comment ]]]]\n  [3, 4],\n]\nt = { x = { y = [ { z = 1 } ] }, }\n",
		"\"a.b.c.d.e.f.g\" = 1\n'h.i.j.k.l.m' = 2\n",
	}
	files, _ := filepath.Glob("../../config/testdata/*.toml")
	more, _ := filepath.Glob("../../config/testdata/*/*.toml")
	for _, f := range append(files, more...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(data))
	}
	for _, doc := range docs {
		if err := TOML([]byte(doc), Limits{MaxBytes: 1 << 20, MaxDepth: 6, MaxKeys: 10_000}); err != nil {
			t.Errorf("TOML(%q) = %v, want it passed", doc, err)
		}
	}
}

// TestTOMLNeverUndercounts compares the scan's depth with the decoder's nesting on documents
// the decoder accepts: each passes at exactly its decoded depth and is refused one below.
func TestTOMLNeverUndercounts(t *testing.T) {
	for _, doc := range []string{
		"a.b.c = 1",
		"[a.b]\nc.d = {e = 1}",
		"[[a.b]]\nc = [[{d = 1}]]",
		"x = {a.b = {c = [1]}}",
		"\"q.q\".r = {s = 1}",
	} {
		var m map[string]any
		if _, err := toml.Decode(doc, &m); err != nil {
			t.Fatalf("%q is not valid TOML: %v", doc, err)
		}
		want := depthOf(m)
		if err := TOML([]byte(doc), Limits{MaxDepth: want}); err != nil {
			t.Errorf("TOML(%q, depth %d) = %v, want it passed", doc, want, err)
		}
		if err := TOML([]byte(doc), Limits{MaxDepth: want - 1}); err == nil {
			t.Errorf("TOML(%q, depth %d) passed; the decoder nests %d deep", doc, want-1, want)
		}
	}
}

func depthOf(v any) int {
	switch v := v.(type) {
	case map[string]any:
		d := 0
		for _, x := range v {
			d = max(d, depthOf(x)+1)
		}
		return d
	case []map[string]any:
		d := 0
		for _, x := range v {
			d = max(d, depthOf(x)+1)
		}
		return d
	case []any:
		d := 0
		for _, x := range v {
			d = max(d, depthOf(x)+1)
		}
		return d
	}
	return 0
}

func TestJSON(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 10_000) + "1" + strings.Repeat("}", 10_000)
	var be *Error
	if err := JSON([]byte(deep), Untrusted); !errors.As(err, &be) || be.Line != 1 || be.Col != 5*32+1 {
		t.Errorf("JSON(10,000 nested objects) = %v, want refused at 1:%d", err, 5*32+1)
	}
	if err := JSON([]byte(`{"a": "[[[[{{{{\"::::", "b": [1, {"c": 2}]}`), Limits{MaxDepth: 3, MaxKeys: 3}); err != nil {
		t.Errorf("JSON(ordinary) = %v", err)
	}
	if err := JSON([]byte(`{"a": 1, "b": 2, "c": 3}`), Limits{MaxKeys: 2}); err == nil || !strings.Contains(err.Error(), "more than 2 object members") {
		t.Errorf("JSON(3 keys, max 2) = %v", err)
	}
	if err := JSON([]byte(`[1, 2]`), Limits{MaxBytes: 4}); err == nil {
		t.Errorf("JSON(6 bytes, max 4) passed")
	}
}

// FuzzTOML: the scan never panics, and what it passes with small limits the decoder decodes
// quickly (no explosion hidden behind a scan that lost its place).
func FuzzTOML(f *testing.F) {
	for _, doc := range hostileTOML() {
		f.Add([]byte(doc))
	}
	f.Add([]byte("a = \"\"\"x\"\"\"\"\nb = [1,{c=2}]\n[[d.e]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if TOML(data, Limits{MaxDepth: 8, MaxKeys: 200}) != nil {
			return
		}
		start := time.Now()
		var m map[string]any
		toml.Decode(string(data), &m)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("decoding a document that passed took %s", took)
		}
	})
}
