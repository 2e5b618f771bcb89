package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse or ParseRequests panic, and
// that every error they report carries a position. Seeds are the fixtures;
// run longer with: go test -fuzz FuzzParse ./config/
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func() error{
			func() error { _, err := Parse("f.toml", data); return err },
			func() error { _, err := ParseRequests("f.toml", data); return err },
		} {
			err := parse()
			if err == nil {
				continue
			}
			list, ok := err.(ErrorList)
			if !ok {
				t.Fatalf("error %T, want ErrorList: %v", err, err)
			}
			for _, e := range list {
				if e.Pos.File != "f.toml" || e.Pos.Line < 1 || e.Pos.Col < 1 {
					t.Errorf("error without a position: %q", e.Error())
				}
			}
		}
	})
}

// FuzzLocate checks that the position scanner never panics, whatever it reads: it runs beside
// the TOML library, on input the library may yet refuse.
func FuzzLocate(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		loc := locate("f.toml", string(data))
		for _, m := range []map[string]Position{loc.keys, loc.vals} {
			for k, p := range m {
				if p.File != "f.toml" || p.Line < 1 || p.Col < 1 {
					t.Errorf("%s: position %+v", k, p)
				}
			}
		}
	})
}

// addSeeds seeds a fuzz target with the fixtures, the tricky file and the hostile documents.
func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.toml")
	files = append(files, "testdata/good.toml")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(tricky))
	for _, doc := range hostileTOML { // issue 9: these exhausted memory in the decoder
		f.Add([]byte(doc))
	}
}
