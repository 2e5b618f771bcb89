package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/store"
)

var updateExplain = flag.Bool("update", false, "rewrite the golden files in testdata/explain")

const explainConfig = `state_dir = "state"

[watch]
root = "root"

[requests]
files = ["requests.toml"]

[destination]
url = "sftp://studio@ingest.example.com/incoming"

[[rule]]
name = "timed-text"
pattern = "{title}_{episode}_{source_type}_{language}.{ext}"
[rule.where]
episode = "S[0-9]{2}E[0-9]{2}"

[[source_type]]
name = "Subtitle"
aliases = ["SUB"]
extensions = ["ttml", "dfxp", "srt", "vtt", "scc", "stl"]
[source_type.metadata]
language = { required = true }
frame_rate = { required = true, values = ["23.976", "24", "25", "29.97", "30"] }

[[source_type]]
name = "IMF"
require_marker = true
`

const explainRequests = `[[request]]
id = "SR-1042"
title = "Wednesday"
episode = "S01E03"
package_id = "PKG-77812"
source_type = "Subtitle"
language = "fr-FR"

[[request]]
id = "SR-1043"
title = "Wednesday"
episode = "S01E03"
package_id = "PKG-77812"
source_type = "Audio M&E"
files = 2

[[request]]
id = "SR-1044"
title = "Wednesday"
episode = "S01E04"
package_id = "PKG-77813"
source_type = "Subtitle"
language = "de-DE"

[[request]]
id = "SR-1050"
title = "Wednesday"
episode = "S01E06"
package_id = "PKG-77815"
source_type = "Subtitle"
language = "fr-FR"

[[request]]
id = "SR-1051"
title = "Wednesday"
episode = "S01E06"
package_id = "PKG-90001"
source_type = "Subtitle"
language = "fr-fr"
status = "redelivery_requested"

[[request]]
id = "SR-1060"
title = "Wednesday"
episode = "S01E03"
package_id = "PKG-77812"
source_type = "Subtitle"
language = "it-IT"
status = "closed"

[[request]]
id = "SR-3001"
title = "The Crown"
package_id = "PKG-3"
source_type = "IMF"
`

// explainWorld writes the config, the requests and the files the golden cases explain.
func explainWorld(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"hotdrop.toml":  explainConfig,
		"requests.toml": explainRequests,
		"root/_bin/Wednesday_S01E03_SUB_fr-FR.ttml":                                  "<tt/>",
		"root/_bin/Wednesday_S01E03_SUB_fr-FR.ttml.toml":                             "frame_rate = 23.976\n",
		"root/_bin/Wednesday_S01E03_SUB_pt-BR.ttml":                                  "<tt/>",
		"root/_bin/Wednesday_S01E06_SUB_fr-FR.ttml":                                  "<tt/>",
		"root/_bin/_metadata.toml":                                                   "vendor = \"Subs & Co\"\n",
		"root/_bin/Wednesday_S01E04_SUB_de-DE.ttml":                                  "<tt/>",
		"root/_bin/late/Wednesday_S01E04_SUB_de-DE.ttml":                             "<tt/>",
		"root/_bin/late/_metadata.json":                                              "{\n  \"frame_rate\": \"26\"\n}\n",
		"root/_bin/broken/Wednesday_S01E03_SUB_fr-FR.ttml":                           "<tt/>",
		"root/_bin/broken/Wednesday_S01E03_SUB_fr-FR.ttml.toml":                      "frame_rate = 25\nlanguage = fr-FR\n",
		"root/_bin/Wednesday_S01E03_SUB_fr-FR.docx":                                  "doc",
		"root/Wednesday/Subtitle fr-FR [SR-1042]/Wednesday S01E03 (final).ttml":      "<tt/>",
		"root/Wednesday/Subtitle fr-FR [SR-1042]/Wednesday S01E03 (final).ttml.toml": "frame_rate = \"25\"\n",
		"root/The Crown/IMF [SR-3001]/CPL_crown.xml":                                 "<cpl/>",
		"root/The Crown/IMF [SR-3001]/video/VIDEO_crown.mxf":                         "mxf",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "hotdrop.toml"), filepath.Join(dir, "root", "_bin", "Wednesday_S01E03_SUB_fr-FR.srt")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExplainGolden(t *testing.T) {
	dir := explainWorld(t)
	bin := "root/_bin/"
	imf := "root/The Crown/IMF [SR-3001]"
	folder := "root/Wednesday/Subtitle fr-FR [SR-1042]/"
	tests := []struct {
		golden string
		args   []string
		before func()
	}{
		{"unsafe_name", []string{folder + "Wednesday S01E03 (final).ttml"}, nil},
		// The drop folder's own file would make two for a request that takes one: gone first.
		{"match", []string{bin + "Wednesday_S01E03_SUB_fr-FR.ttml"}, func() {
			os.Remove(filepath.Join(dir, filepath.FromSlash(folder), "Wednesday S01E03 (final).ttml"))
		}},
		{"match_json", []string{"--json", bin + "Wednesday_S01E03_SUB_fr-FR.ttml"}, nil},
		{"no_match", []string{bin + "Wednesday_S01E03_SUB_pt-BR.ttml"}, nil},
		{"ambiguous", []string{bin + "Wednesday_S01E06_SUB_fr-FR.ttml"}, nil},
		{"missing_metadata", []string{bin + "Wednesday_S01E04_SUB_de-DE.ttml"}, nil},
		{"invalid_metadata", []string{bin + "late/Wednesday_S01E04_SUB_de-DE.ttml"}, nil},
		{"invalid_sidecar", []string{bin + "broken/Wednesday_S01E03_SUB_fr-FR.ttml"}, nil},
		{"unsupported_extension", []string{bin + "Wednesday_S01E03_SUB_fr-FR.docx"}, nil},
		{"name_only", []string{"Wednesday_S01E04_SUB_de-de.srt"}, nil},
		{"auxiliary", []string{bin + "Wednesday_S01E03_SUB_fr-FR.ttml.toml"}, nil},
		{"unsafe_path", []string{bin + "Wednesday_S01E03_SUB_fr-FR.srt"}, nil},
		{"multi_without_marker", []string{imf}, nil},
		{"multi_with_marker", []string{imf}, func() {
			os.WriteFile(filepath.Join(dir, filepath.FromSlash(imf), "_READY"), nil, 0o644)
		}},
		// The engine's request-level rule (delivery.RequestHold): one file more than it takes.
		{"too_many_files", []string{bin + "Wednesday_S01E03_SUB_fr-FR.ttml"}, func() {
			os.WriteFile(filepath.Join(dir, filepath.FromSlash(folder), "Wednesday_S01E03_SUB_fr-FR.ttml"), []byte("<tt/>"), 0o644)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			t.Chdir(dir)
			var stdout, stderr bytes.Buffer
			args := append([]string{"--config", "hotdrop.toml"}, tt.args...)
			if err := cmdExplain(args, &stdout, &stderr); err != nil {
				t.Fatalf("explain %v: %v\n%s", tt.args, err, stderr.String())
			}
			got := strings.ReplaceAll(stdout.String(), dir, "$TMP")
			ext := ".golden"
			if strings.HasSuffix(tt.golden, "_json") {
				ext = ".json"
				var v any
				if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
					t.Fatalf("explain --json is not JSON: %v", err)
				}
			}
			file := filepath.Join(goldenDir(t), tt.golden+ext)
			if *updateExplain {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -run Explain ./cmd/hotdrop/ -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("explain %v differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", tt.args, file, got, want)
			}
		})
	}
}

// goldenDir is testdata/explain beside this test, found before any test changes directory.
func goldenDir(t *testing.T) string {
	t.Helper()
	if explainTestdata == "" {
		t.Fatal("cannot tell the test's folder")
	}
	return explainTestdata
}

var explainTestdata = func() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	return filepath.Join(wd, "testdata", "explain")
}()

func TestExplainUsage(t *testing.T) {
	dir := explainWorld(t)
	t.Chdir(dir)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"explain", "--config", "hotdrop.toml"}, &stdout, &stderr); code != exitUsage {
		t.Errorf("explain without a path: exit %d, want %d", code, exitUsage)
	}
	stderr.Reset()
	if code := run([]string{"explain", "--config", "hotdrop.toml", "/elsewhere/x.ttml"}, &stdout, &stderr); code != exitFail || !strings.Contains(stderr.String(), "neither in the File Bin") {
		t.Errorf("explain of a path outside the root: exit %d, stderr %q", code, stderr.String())
	}
}

// TestExplainHTTPSource: with requests.source = "http", explain reads the requests the daemon
// last saved in the state database, and fetches nothing.
func TestExplainHTTPSource(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg := strings.Replace(explainConfig, `files = ["requests.toml"]`, `source = "http"
url = "https://tracker.invalid/api"`, 1)
	if err := os.WriteFile("hotdrop.toml", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := cmdExplain([]string{"--config", "hotdrop.toml", "Wednesday_S01E03_SUB_fr-FR.ttml"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "does not exist yet") {
		t.Fatalf("explain with no state database: %v, want an error saying so", err)
	}
	st, err := store.Open(filepath.Join(dir, "state", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	fields := `{"id": "SR-7", "title": "Wednesday", "episode": "S01E03", "source_type": "Subtitle", "language": "fr-FR", "frame_rate": "25", "status": "open"}`
	if err := st.SaveRequest(context.Background(), store.Request{ID: "SR-7", Fields: fields, Status: "open", Files: 1}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := cmdExplain([]string{"--config", "hotdrop.toml", "--json", "Wednesday_S01E03_SUB_fr-FR.ttml"}, &stdout, &stderr); err != nil {
		t.Fatalf("explain: %v\n%s", err, stderr.String())
	}
	var out []struct {
		Request, Verdict string
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != 1 || out[0].Request != "SR-7" {
		t.Errorf("explain --json = %s (%v), want one file going to SR-7", stdout.String(), err)
	}
}

// TestExplainHostileSidecar: `explain` on a file whose sidecar is a 20,000-part dotted key
// (issue 9: the decoder ran out of memory on it) answers at once: held invalid_sidecar, with
// the sidecar's file, line and column.
func TestExplainHostileSidecar(t *testing.T) {
	dir := explainWorld(t)
	t.Chdir(dir)
	folder := filepath.Join("root", "_bin", "hostile")
	if err := os.MkdirAll(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(folder, "Wednesday_S01E03_SUB_fr-FR.ttml")
	if err := os.WriteFile(file, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file+".toml", []byte(strings.Repeat("a.", 20_000)+"b = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	start := time.Now()
	if err := cmdExplain([]string{"--config", "hotdrop.toml", file}, &stdout, &stderr); err != nil {
		t.Fatalf("explain: %v\n%s", err, stderr.String())
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("explain took %s, want well under a second or two", took)
	}
	want := "verdict: held invalid_sidecar: " + filepath.Join(dir, file) + ".toml:1:64: nests tables, arrays or dotted-key parts more than 32 levels deep"
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("explain output lacks %q:\n%s", want, stdout.String())
	}
}

// sequenceWorld is a config with one request of any number of VFX frames, 1001-1040, and
// its empty drop folder.
func sequenceWorld(t *testing.T) (dir, drop string, must func(error)) {
	t.Helper()
	dir = t.TempDir()
	must = func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "hotdrop.toml"), []byte("state_dir = \"state\"\n[watch]\nroot = \"root\"\nfolder = \"{id}\"\n[requests]\nfiles = [\"r.toml\"]\n[destination]\nurl = \"file:///tmp/out\"\npath = \"{id}/{name}\"\n"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "r.toml"), []byte("[[request]]\nid = \"SR-V\"\ntitle = \"Shot\"\nsource_type = \"VFX\"\nfiles = 0\nframes = \"1001-1040\"\n"), 0o644))
	drop = filepath.Join(dir, "root", "SR-V")
	must(os.MkdirAll(drop, 0o755))
	return dir, drop, must
}

// explain on a drop folder of frames shows the sequence once, with the daemon's verdict on it
// as a whole (issue 11): frames missing are named, not 40 near-identical explanations printed.
func TestExplainSequence(t *testing.T) {
	dir, drop, must := sequenceWorld(t)
	for n := 1001; n <= 1040; n++ {
		if n == 1013 || n == 1039 || n == 1040 {
			continue
		}
		must(os.WriteFile(filepath.Join(drop, fmt.Sprintf("shot_010.%d.exr", n)), []byte("frame data"), 0o644))
	}
	must(os.WriteFile(filepath.Join(drop, "notes.exr.txt"), []byte("x"), 0o644))
	var out, errOut strings.Builder
	code := run([]string{"explain", drop, "--config", filepath.Join(dir, "hotdrop.toml")}, &out, &errOut)
	text := out.String()
	if code != 0 {
		t.Fatalf("explain exited %d: %s\n%s", code, errOut.String(), text)
	}
	for _, want := range []string{"shot_010.[1001-1038].exr", "sequence: 37 frames (1001-1038)", "held incomplete_sequence", "missing 3 frame(s): 1013, 1039-1040", "notes.exr.txt"} {
		if !strings.Contains(text, want) {
			t.Errorf("explain does not say %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "shot_010."); n != 2 { // the row's name, and the hold's sentence
		t.Errorf("the frames appear %d times, want the sequence once:\n%s", n, text)
	}
}

// TestExplainReadsTheJournal: explain judges as the daemon does on what it delivered before.
// A delivered file as it is now is delivered (not held by its own request), and one written
// again with the same bytes too; another file for that request, or the same file with other
// bytes, is held already_delivered, as the daemon holds it. Without the journal explain said
// both would go.
func TestExplainReadsTheJournal(t *testing.T) {
	dir := explainWorld(t)
	t.Chdir(dir)
	folder := filepath.Join(dir, "root", "Wednesday", "Subtitle fr-FR [SR-1042]")
	for _, p := range []string{"Wednesday S01E03 (final).ttml", "Wednesday S01E03 (final).ttml.toml"} {
		if err := os.Remove(filepath.Join(folder, p)); err != nil { // a name the portable policy holds
			t.Fatal(err)
		}
	}
	done := filepath.Join(folder, "Wednesday_S01E03_final.ttml")
	for p, content := range map[string]string{done: "<tt/>", done + ".toml": "frame_rate = \"25\"\n"} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(done)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "state", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	if _, err := st.SaveFile(context.Background(), store.File{Path: done, RequestID: "SR-1042", Size: fi.Size(), ModTime: fi.ModTime(),
		Inode: safefs.Inode(fi), State: "delivered", SHA256: "0e5a0e2f9d2f3ec5d5f5ee8b5bb0a4f9d1f9b7ad6d2a0d8b8c2a7c5ba3f0a1c2", RemotePath: "PKG-77812/Subtitle/final.ttml", DeliveredAt: at}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	explainJSON := func(p string) (verdict, hold string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := cmdExplain([]string{"--config", "hotdrop.toml", "--json", p}, &stdout, &stderr); err != nil {
			t.Fatalf("explain %s: %v\n%s", p, err, stderr.String())
		}
		var out []struct {
			Verdict   string
			Hold      *struct{ Code string }
			Delivered *struct {
				RemotePath string `json:"remote_path"`
			}
		}
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out) != 1 {
			t.Fatalf("explain --json %s = %s (%v)", p, stdout.String(), err)
		}
		if out[0].Hold != nil {
			hold = out[0].Hold.Code
		}
		if d := out[0].Delivered; d != nil {
			return out[0].Verdict + " to " + d.RemotePath, hold
		}
		return out[0].Verdict, hold
	}
	// The journal's sha256 above is not the file's: only its identity says it is the one.
	if v, h := explainJSON(done); h != "" || v != "delivered to PKG-77812/Subtitle/final.ttml" {
		t.Errorf("the delivered file as it is: verdict %q, hold %q; want delivered", v, h)
	}
	// The studio closed the request once it had the file: the daemon never judges the
	// delivered file again, and explain does not hold it either.
	reqs, err := os.ReadFile("requests.toml")
	if err != nil {
		t.Fatal(err)
	}
	closed := strings.Replace(string(reqs), "id = \"SR-1042\"\n", "id = \"SR-1042\"\nstatus = \"closed\"\n", 1)
	if err := os.WriteFile("requests.toml", []byte(closed), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, h := explainJSON(done); h != "" || v != "delivered to PKG-77812/Subtitle/final.ttml" {
		t.Errorf("the delivered file of a request closed since: verdict %q, hold %q; want delivered", v, h)
	}
	if err := os.WriteFile("requests.toml", reqs, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(folder, "Wednesday_S01E03_v2.ttml")
	if err := os.WriteFile(other, []byte("<tt/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other+".toml", []byte("frame_rate = \"25\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, h := explainJSON(other); h != "already_delivered" {
		t.Errorf("another file for the delivered request: hold %q, want already_delivered", h)
	}
	// Written again: other bytes are held, the delivered bytes are delivered.
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	os.Remove(other + ".toml")
	if err := os.WriteFile(done, []byte("<tx/>"), 0o644); err != nil { // the same size
		t.Fatal(err)
	}
	if _, h := explainJSON(done); h != "already_delivered" {
		t.Errorf("the delivered file with other bytes: hold %q, want already_delivered", h)
	}
	st, err = store.Open(filepath.Join(dir, "state", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := sha256File(done)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveFile(context.Background(), store.File{Path: done, RequestID: "SR-1042", Size: fi.Size(), ModTime: fi.ModTime().Add(-time.Hour),
		State: "delivered", SHA256: sum, RemotePath: "PKG-77812/Subtitle/final.ttml", DeliveredAt: at}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if v, h := explainJSON(done); h != "" || v != "delivered to PKG-77812/Subtitle/final.ttml" {
		t.Errorf("the delivered file written again with its bytes: verdict %q, hold %q; want delivered", v, h)
	}
}

// TestExplainDeliveredSequence: the delivered frames of a sequence are one row, delivered,
// and not judged again as a sequence (the daemon does not judge delivered frames again).
func TestExplainDeliveredSequence(t *testing.T) {
	dir, drop, must := sequenceWorld(t)
	st, err := store.Open(filepath.Join(dir, "state", "state.db"))
	must(err)
	for n := 1001; n <= 1010; n++ { // 1011-1040 missing: a gap, if they were judged again
		p := filepath.Join(drop, fmt.Sprintf("shot_010.%d.exr", n))
		must(os.WriteFile(p, []byte("frame data"), 0o644))
		fi, err := os.Stat(p)
		must(err)
		_, err = st.SaveFile(context.Background(), store.File{Path: p, RequestID: "SR-V", Size: fi.Size(), ModTime: fi.ModTime(), Inode: safefs.Inode(fi),
			State: "delivered", SHA256: "ab", RemotePath: "SR-V/" + filepath.Base(p), DeliveredAt: time.Now()})
		must(err)
	}
	st.Close()
	var out, errOut strings.Builder
	if code := run([]string{"explain", drop, "--config", filepath.Join(dir, "hotdrop.toml")}, &out, &errOut); code != 0 {
		t.Fatalf("explain exited %d: %s\n%s", code, errOut.String(), out.String())
	}
	text := out.String()
	for _, want := range []string{"sequence: 10 frames (1001-1010)", "verdict: delivered to SR-V/shot_010.[1001-1010].exr (request SR-V)"} {
		if !strings.Contains(text, want) {
			t.Errorf("explain does not say %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "incomplete_sequence") || strings.Count(text, "verdict:") != 1 {
		t.Errorf("want one delivered row, not judged again as a sequence:\n%s", text)
	}
}
