package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func fileConfig(globs ...string) *Config {
	c := Default()
	c.File = "/etc/hotdrop/hotdrop.toml"
	c.Requests.Files = globs
	return c
}

func TestLoadRequests(t *testing.T) {
	// The second glob matches nothing, which is not an error.
	reqs, err := LoadRequests(fileConfig("testdata/requests.d/*.toml", "testdata/nothing-here/*.toml"))
	if err != nil {
		t.Fatalf("LoadRequests: %v", err)
	}
	want := []Request{
		{
			ID: "SR-1042", Title: "Wednesday", PackageID: "PKG-77812", SourceType: "Subtitle",
			Language: "fr-FR", Status: "open", Files: 1,
			Fields: map[string]string{
				"id": "SR-1042", "title": "Wednesday", "episode": "S01E03", "package_id": "PKG-77812",
				"source_type": "Subtitle", "language": "fr-FR", "status": "open",
			},
			Pos: Position{"testdata/requests.d/a.toml", 1, 1},
		},
		{
			ID: "SR-1043", Title: "Wednesday", SourceType: "Audio M&E", Status: "open", Files: 0, FilesSet: true,
			Fields: map[string]string{"id": "SR-1043", "title": "Wednesday", "source_type": "Audio M&E", "status": "open"},
			Pos:    Position{"testdata/requests.d/a.toml", 10, 1},
		},
		{
			ID: "SR-2001", Title: "Dune", Status: "redelivery_requested", Files: 3, FilesSet: true,
			Fields: map[string]string{"id": "SR-2001", "title": "Dune", "status": "redelivery_requested", "vendor": "Acme"},
			Pos:    Position{"testdata/requests.d/b.toml", 1, 1},
		},
	}
	if !reflect.DeepEqual(reqs, want) {
		t.Errorf("LoadRequests =\n%+v\nwant\n%+v", reqs, want)
	}
}

func TestLoadRequestsHTTPSource(t *testing.T) {
	c := fileConfig("testdata/requests.d/*.toml")
	c.Requests.Source = "http"
	if reqs, err := LoadRequests(c); reqs != nil || err != nil {
		t.Errorf("LoadRequests(source = http) = %v, %v; want nil, nil", reqs, err)
	}
}

func TestBadRequests(t *testing.T) {
	tests := []struct {
		file string
		want []wantErr
	}{
		{"dup_in_file.toml", []wantErr{
			{8, 6, `request id "SR-1" is already used at testdata/requests-bad/dup_in_file.toml:2:6`},
		}},
		{"bad_language.toml", []wantErr{
			{3, 12, `request.language: "french" is not a valid language tag (language: tag is not well-formed); expected a BCP 47 tag like fr-FR`},
		}},
		{"missing_id.toml", []wantErr{
			{1, 1, `request.id is required in every [[request]]`},
			{5, 6, `request.id: "SR 2/3" is not a usable id`},
		}},
		{"wrong_type.toml", []wantErr{
			{3, 11, `request.episode: expected a string, got integer 3`},
			{4, 9, `request.files: must be 0 or more, got -1`},
			{8, 9, `request.files: expected an integer, got string "2"`},
			{9, 1, `"Season" is not a field name`},
			{10, 10, `request.status: must not be empty`},
		}},
		{"unknown_top.toml", []wantErr{
			{1, 1, `unknown key "requests" (did you mean "request"?)`},
		}},
		{"syntax.toml", []wantErr{
			{2, 11, `not valid TOML: strings cannot contain newlines`},
		}},
		{"json.toml", []wantErr{
			{1, 1, `not valid TOML: expected '.' or '=', but got '{' instead (this looks like JSON: config and requests files are TOML; a requests file holds [[request]] tables)`},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := "testdata/requests-bad/" + tt.file
			reqs, err := LoadRequests(fileConfig(path))
			if reqs != nil {
				t.Errorf("LoadRequests returned requests along with errors")
			}
			checkErrors(t, path, err, tt.want)
		})
	}
}

// TestDuplicateAcrossFiles checks that an id reused in another file names
// both places.
func TestDuplicateAcrossFiles(t *testing.T) {
	_, err := LoadRequests(fileConfig("testdata/requests-dup/*.toml"))
	checkErrors(t, "testdata/requests-dup/b.toml", err, []wantErr{
		{6, 8, `request id "SR-1042" is already used at testdata/requests-dup/a.toml:2:6`},
	})
}

// TestRequestsFilesThatNameNothing (operator review, item 1): a plain path in requests.files
// that does not exist, or names a folder, is an error at its entry in the config file, since a
// typo there leaves the daemon idle; a glob that matches nothing is only a warning, since a
// tracker may write files there later.
func TestRequestsFilesThatNameNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "requests.d", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "requests.d", "r.toml"), []byte("[[request]]\nid = \"SR-1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "hotdrop.toml")
	text := "state_dir = \"state\"\n[watch]\nroot = \"root\"\n[requests]\nfiles = [\"requests.d/r.toml\",\n  \"nosuch/r.toml\", \"requests.d\",\n  \"requests.d/*.json\", \"requests.d/*.toml\"]\n[destination]\nurl = \"file:///tmp/out\"\n"
	if err := os.WriteFile(cfgFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LoadRequests(c)
	checkErrors(t, cfgFile, err, []wantErr{
		{6, 3, "requests.files: " + filepath.Join(dir, "nosuch/r.toml") + " does not exist; expected a requests file of [[request]] tables: correct the path"},
		{6, 20, "requests.files: " + filepath.Join(dir, "requests.d") + ` is a folder; expected a requests file or a glob: write "` + filepath.Join(dir, "requests.d/*.toml") + `"`},
	})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadRequests = %v, want it to match fs.ErrNotExist", err)
	}
	warns := UnmatchedRequestGlobs(c)
	if len(warns) != 1 || warns[0].Pos != (Position{cfgFile, 7, 3}) ||
		!strings.Contains(warns[0].Msg, "requests.files: no file matches "+filepath.Join(dir, "requests.d/*.json")+" yet") {
		t.Errorf("UnmatchedRequestGlobs = %v, want one warning for requests.d/*.json at %s:7:3", ErrorList(warns), cfgFile)
	}

	// Without the two bad entries, the plain path and the glob read the same file once.
	c.Requests.Files = []string{c.Requests.Files[0], c.Requests.Files[3], c.Requests.Files[4]}
	if reqs, err := LoadRequests(c); err != nil || len(reqs) != 1 || reqs[0].ID != "SR-1" {
		t.Errorf("LoadRequests(good entries) = %v, %v; want SR-1 once", reqs, err)
	}
}

func TestLoadRequestsBadGlob(t *testing.T) {
	_, err := LoadRequests(fileConfig("testdata/[.toml"))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Pos.File != "/etc/hotdrop/hotdrop.toml" {
		t.Errorf("LoadRequests(bad glob) = %v, want one error naming the config file", err)
	}
}

func TestParseRequests(t *testing.T) {
	src := "[[request]]\nid = \"SR-1\"\nlanguage = \"pt-br\"\n"
	reqs, err := ParseRequests("r.toml", []byte(src))
	if err != nil {
		t.Fatalf("ParseRequests: %v", err)
	}
	if len(reqs) != 1 || reqs[0].Language != "pt-BR" || reqs[0].Fields["language"] != "pt-BR" || reqs[0].Status != "open" || reqs[0].Files != 1 {
		t.Errorf("ParseRequests = %+v, want one open request, language pt-BR, files 1", reqs)
	}
	if reqs, err := ParseRequests("empty.toml", nil); reqs != nil || err != nil {
		t.Errorf("ParseRequests(empty) = %v, %v; want nil, nil", reqs, err)
	}
}

// Frame-sequence fields: allow_gaps is a boolean (kept as "true"/"false" among the fields),
// frames a range, checked where they are written.
func TestRequestSequenceFields(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "r.toml")
	if err := os.WriteFile(p, []byte("[[request]]\nid = \"SR-1\"\nallow_gaps = true\nframes = \"1001-2400\"\n\n[[request]]\nid = \"SR-2\"\nallow_gaps = \"yes\"\nframes = \"ten\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRequests(fileConfig(p))
	if err == nil {
		t.Fatal("no error for allow_gaps = \"yes\" and frames = \"ten\"")
	}
	for _, want := range []string{":8:14: request.allow_gaps: expected true or false", `:9:10: request.frames: "ten" is not a frame range`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := os.WriteFile(p, []byte("[[request]]\nid = \"SR-1\"\nallow_gaps = true\nframes = \"1001-2400\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reqs, err := LoadRequests(fileConfig(p))
	if err != nil || reqs[0].Fields["allow_gaps"] != "true" || reqs[0].Fields["frames"] != "1001-2400" {
		t.Fatalf("requests %+v, %v", reqs, err)
	}
}
