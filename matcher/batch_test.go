package matcher

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// TestEvaluateAllAgreesWithEvaluate: judged as one look, each file gets the verdict Evaluate
// gives it alone: folder sidecars near and far (one of them broken, one folder with both
// kinds), a file's own sidecar and checksum file, drop folders and the File Bin, a path
// outside its root.
func TestEvaluateAllAgreesWithEvaluate(t *testing.T) {
	m := newTest(t)
	root := t.TempDir()
	bin := filepath.Join(root, "_bin")
	drop(t, root, map[string]string{
		"_metadata.toml":                                 "vendor = \"far\"\n", // above every input's root: not read
		"SR-1042/_metadata.json":                         `{"reel": 3}`,
		"SR-1042/a.ttml":                                 "x",
		"SR-1042/b.ttml":                                 "x",
		"SR-1042/b.ttml.toml":                            "frame_rate = 25\n",
		"SR-1042/c.ttml":                                 "x",
		"SR-1042/c.ttml.md5":                             "0123456789abcdef0123456789abcdef  c.ttml\n",
		"SR-1043/_metadata.toml":                         "reel = [\n", // broken: every file of it held
		"SR-1043/a.wav":                                  "x",
		"SR-1043/b.wav":                                  "x",
		"SR-1044/_metadata.toml":                         "reel = 1\n",
		"SR-1044/_metadata.json":                         `{"reel": 2}`, // both: held
		"SR-1044/a.ttml":                                 "x",
		"_bin/Wednesday_S01E03_SUB_fr-FR.ttml":           "x",
		"_bin/show/_metadata.toml":                       "vendor = \"near\"\n",
		"_bin/show/The_Crown_S02E01_SUB_es-419.ttml":     "x",
		"_bin/show/The_Crown_S02E01_SUB_es-419.ttml.xml": "x",
	})
	ins := []Input{
		{Path: filepath.Join(root, "SR-1042", "a.ttml"), Root: filepath.Join(root, "SR-1042"), Request: "SR-1042"},
		{Path: filepath.Join(root, "SR-1042", "b.ttml"), Root: filepath.Join(root, "SR-1042"), Request: "SR-1042"},
		{Path: filepath.Join(root, "SR-1042", "c.ttml"), Root: filepath.Join(root, "SR-1042"), Request: "SR-1042"},
		{Path: filepath.Join(root, "SR-1043", "a.wav"), Root: filepath.Join(root, "SR-1043"), Request: "SR-1043"},
		{Path: filepath.Join(root, "SR-1043", "b.wav"), Root: filepath.Join(root, "SR-1043"), Request: "SR-1043"},
		{Path: filepath.Join(root, "SR-1044", "a.ttml"), Root: filepath.Join(root, "SR-1044"), Request: "SR-1044"},
		{Path: filepath.Join(bin, "Wednesday_S01E03_SUB_fr-FR.ttml"), Root: bin},
		{Path: filepath.Join(bin, "show", "The_Crown_S02E01_SUB_es-419.ttml"), Root: bin},
		{Path: filepath.Join(root, "elsewhere.ttml"), Root: bin},
	}
	// A folder sidecar met through a link: refused beneath the root above the link, read
	// beneath a root at the link (without watch.root each input's root is what is read
	// beneath, so the same sidecar is not the same read for both).
	drop(t, root, map[string]string{"real/_metadata.toml": "reel = 9\n", "real/f.ttml": "x", "real/g.ttml": "x"})
	if err := os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	ins = append(ins,
		Input{Path: filepath.Join(root, "link", "f.ttml"), Root: root, Request: "SR-1042"},
		Input{Path: filepath.Join(root, "link", "g.ttml"), Root: filepath.Join(root, "link"), Request: "SR-1042"})
	for i := range 40 { // more than the goroutines, so that each judges several
		name := fmt.Sprintf("f%02d.ttml", i)
		drop(t, root, map[string]string{"SR-1042/" + name: "x"})
		ins = append(ins, Input{Path: filepath.Join(root, "SR-1042", name), Root: filepath.Join(root, "SR-1042"), Request: "SR-1042"})
	}
	// Without watch.root, the folder sidecars read are those from each input's root down.
	withRoot := mustNew(t, Options{Root: root, Rules: []Rule{timedTextRule}, Requests: testRequests(), Names: "portable"})
	for _, mm := range []*Matcher{m, withRoot} {
		for _, workers := range []int{1, 3} {
			got := mm.EvaluateAll(ins, workers)
			if len(got) != len(ins) {
				t.Fatalf("%d verdicts for %d files", len(got), len(ins))
			}
			for i, in := range ins {
				if want := mm.Evaluate(in); !reflect.DeepEqual(got[i], want) {
					t.Errorf("workers %d, %s:\n got %+v\nwant %+v", workers, in.Path, got[i], want)
				}
			}
		}
	}
	// What the look was for is what it found.
	v := withRoot.EvaluateAll(ins[:8], 2)
	if got := v[0].Metadata["reel"].Value; got != "3" {
		t.Errorf("SR-1042/a.ttml: reel %q, want its folder sidecar's 3", got)
	}
	if got := v[7].Metadata["vendor"].Value; got != "near" {
		t.Errorf("_bin/show/…: vendor %q, want its folder sidecar's near", got)
	}
	for _, i := range []int{3, 4, 5} {
		if holdCode(v[i]) != HoldInvalidSidecar {
			t.Errorf("%s: hold %+v, want invalid_sidecar from its folder's sidecar", ins[i].Path, v[i].Hold)
		}
	}
}

func mustNew(t *testing.T, o Options) *Matcher {
	t.Helper()
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// BenchmarkEvaluateAll is BenchmarkEvaluate's files judged as looks of 100 on one goroutine:
// the folder sidecar read once a look, one root for all.
func BenchmarkEvaluateAll(b *testing.B) {
	m, names := benchMatcher(b, 5)
	bin := b.TempDir()
	os.WriteFile(filepath.Join(bin, "_metadata.toml"), []byte("vendor = \"x\"\n"), 0o644)
	ins := make([]Input, 100)
	for i, n := range names[:100] {
		os.WriteFile(filepath.Join(bin, n), []byte("x"), 0o644)
		os.WriteFile(filepath.Join(bin, n+".toml"), []byte("frame_rate = 25\n"), 0o644)
		ins[i] = Input{Path: filepath.Join(bin, n), Root: bin}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		m.EvaluateAll(ins, 1)
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*len(ins)), "cpu-ns/file")
}

// TestLookKeepsNoReadFailure: a folder sidecar that could not be read (its folder could not
// be opened: too many open files, say) is that moment's failure; the look reads it again for
// its next file rather than hold every file of the batch with it.
func TestLookKeepsNoReadFailure(t *testing.T) {
	base := filepath.Join(t.TempDir(), "SR-1")
	drop(t, filepath.Dir(base), map[string]string{"SR-1": "not a folder yet"})
	lk := &look{folders: map[string]sidecarRead{}}
	p := filepath.Join(base, "_metadata.toml")
	u := safefs.NewUnder(base)
	_, _, _, err := lk.folderSidecar(u, p)
	u.Close()
	if err == nil {
		t.Fatal("a sidecar beneath a file read as if there were a folder")
	}
	if err := os.Remove(base); err != nil {
		t.Fatal(err)
	}
	drop(t, base, map[string]string{"_metadata.toml": "reel = 4\n"})
	u = safefs.NewUnder(base)
	defer u.Close()
	vals, _, found, err := lk.folderSidecar(u, p)
	if err != nil || !found || vals["reel"] != "4" {
		t.Errorf("read again: %v %v %v; want reel 4, the failure before not kept", vals, found, err)
	}
}
