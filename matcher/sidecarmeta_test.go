package matcher

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// TestSidecarAgainstRequest (issue 14, item 11): a sidecar that contradicts its request holds
// the file invalid_metadata naming both values; one that agrees (in another spelling) or adds
// a field passes, and its values are in the merged metadata.
func TestSidecarAgainstRequest(t *testing.T) {
	m := newTest(t)
	for _, tc := range []struct {
		name, sidecar, hold, msg string
	}{
		{"adds a field", `frame_rate = "25"`, "", ""},
		{"agrees in another spelling", `language = "fr-fr"`, "", ""},
		{"contradicts", `language = "de-DE"`, HoldInvalidMetadata, `language: the sidecar _metadata.toml says "de-DE", but request SR-1042 says "fr-FR"`},
		{"a title that only looks the same", "title = \"Wednesday\u2013\"", HoldInvalidMetadata, `(they differ at character 10: U+2013 vs the end)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			drop(t, dir, map[string]string{"ep103.ttml": "x", "_metadata.toml": tc.sidecar + "\n"})
			v := m.Evaluate(Input{Path: filepath.Join(dir, "ep103.ttml"), Root: dir, Request: "SR-1042"})
			if holdCode(v) != tc.hold || (tc.msg != "" && !strings.Contains(v.Hold.Message, tc.msg)) {
				t.Errorf("Evaluate = hold %+v, want %q saying %q", v.Hold, tc.hold, tc.msg)
			}
			if tc.hold == "" && v.Metadata.Values()["frame_rate"] != map[bool]string{true: "25"}[tc.name == "adds a field"] {
				t.Errorf("merged metadata %v", v.Metadata.Values())
			}
		})
	}
}

// TestJSONSidecarWithBOM: a JSON sidecar saved by a Windows editor starts with a byte order
// mark; it is read like a TOML one.
func TestJSONSidecarWithBOM(t *testing.T) {
	vals, err := ParseSidecar("x.ttml.json", []byte("\xef\xbb\xbf{\"frame_rate\": \"25\"}"))
	if err != nil || vals["frame_rate"] != "25" {
		t.Errorf("ParseSidecar(JSON with BOM) = %v, %v", vals, err)
	}
}

// TestDecomposedTitleMatches: a name written in decomposed Unicode (macOS: e + U+0301) matches
// the request's composed title, and two values that print alike are never shown without how
// they differ.
func TestDecomposedTitleMatches(t *testing.T) {
	composed := norm.NFC.String("Café Society")
	m, err := New(Options{Rules: []Rule{timedTextRule}, Names: "any",
		Requests: append(testRequests(), req("SR-2001", "open", "title", composed, "episode", "S01E01", "source_type", "Subtitle", "language", "fr-FR"))})
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	name := norm.NFD.String("Café_Society") + "_S01E01_SUB_fr-FR.ttml"
	drop(t, bin, map[string]string{name: "x"})
	if v := m.Evaluate(Input{Path: filepath.Join(bin, name), Root: bin}); v.Request != "SR-2001" || v.Hold != nil {
		t.Errorf("decomposed title: request %q, hold %+v; want SR-2001", v.Request, v.Hold)
	}
	if got := (Diff{Field: "title", File: norm.NFD.String("é"), Request: "é"}).String(); !strings.Contains(got, "different Unicode forms") {
		t.Errorf("Diff of NFD and NFC = %s, want it to say how they differ", got)
	}
	if got := (Diff{Field: "episode", File: "S01E04", Request: "S01E03"}).String(); got != `episode "S01E04" ≠ "S01E03"` {
		t.Errorf("Diff of plain values = %s", got)
	}
}

// TestLongNameHasNoSidecar (issue 14, item 12): a 253-byte name cannot have NAME.toml beside
// it (the file system allows 255 bytes); that is no sidecar, not a broken one.
func TestLongNameHasNoSidecar(t *testing.T) {
	m := newTest(t)
	dir := t.TempDir()
	name := strings.Repeat("a", 248) + ".ttml"
	drop(t, dir, map[string]string{name: "x"})
	if v := m.Evaluate(Input{Path: filepath.Join(dir, name), Root: dir, Request: "SR-1042"}); v.Hold != nil {
		t.Errorf("a %d-byte name: hold %+v, want none", len(name), v.Hold)
	}
}
