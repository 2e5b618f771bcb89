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
