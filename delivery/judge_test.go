package delivery

import (
	"crypto/md5"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

func newMatcher(t *testing.T, reqs ...Request) *matcher.Matcher {
	t.Helper()
	var mreqs []matcher.Request
	for _, r := range reqs {
		mreqs = append(mreqs, matcher.Request{ID: r.ID, Status: r.Status, Files: r.Files, FilesSet: true, Fields: r.Fields})
	}
	m, err := matcher.New(matcher.Options{
		Rules:    []matcher.Rule{{Name: "timed-text", Pattern: "{title}_{episode}_{source_type}_{language}.{ext}"}},
		Requests: mreqs, Names: "portable",
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type touches struct {
	mu    sync.Mutex
	paths []string
}

func (tc *touches) touch(p string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.paths = append(tc.paths, p)
}

func (tc *touches) has(p string) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, x := range tc.paths {
		if x == p {
			return true
		}
	}
	return false
}

// writeReal creates a real file (the matcher reads sidecars and checksum files from disk).
func writeReal(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBinFilesMatchedByRules(t *testing.T) {
	reqs := []Request{req("SR-50", 1, "episode", "S01E03"), req("SR-51", 1, "episode", "S01E04", "language", "de-DE")}
	tc := &touches{}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), newFakeUploader(), func(o *Options) {
		o.Matcher = newMatcher(t, reqs...)
		o.Touch = tc.touch
	}, reqs...)
	bin := filepath.Join(h.root, "_bin")
	good := filepath.Join(bin, "Wednesday_S01E03_SUB_fr-fr.ttml")
	writeReal(t, good, "subs")
	h.drop("", "Wednesday_S01E03_SUB_fr-fr.ttml", watcher.Ready, 4)
	v := h.waitState("SR-50", Delivered)
	if len(v.Files) != 1 || v.Files[0].Name != "Wednesday_S01E03_SUB_fr-fr.ttml" {
		t.Errorf("SR-50 files = %+v", v.Files)
	}

	stray := filepath.Join(bin, "Wednesday_S09E09_SUB_fr-FR.ttml")
	writeReal(t, stray, "x")
	h.drop("", "Wednesday_S09E09_SUB_fr-FR.ttml", watcher.Ready, 1)
	waitUntil(t, func() bool {
		bv := h.views.get("")
		for _, f := range bv.Files {
			if f.Path == stray && f.Reason == "no_matching_request" && f.Message != "" {
				return true
			}
		}
		return false
	})

	// A sidecar appearing beside a held file restarts its settle clock (so it is judged again).
	writeReal(t, stray+".toml", "request = \"SR-51\"\n")
	h.drop("", "Wednesday_S09E09_SUB_fr-FR.ttml.toml", watcher.Ready, 1)
	waitUntil(t, func() bool { return tc.has(stray) })
}

func TestWriterChecksumMismatchHolds(t *testing.T) {
	reqs := []Request{req("SR-52", 1)}
	up := newFakeUploader()
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Matcher = newMatcher(t, reqs...) }, reqs...)
	folder := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-52]")
	p := filepath.Join(folder, "a.ttml")
	writeReal(t, p, "the real content")
	sum := md5.Sum([]byte("something else"))
	writeReal(t, p+".md5", hex.EncodeToString(sum[:])+"  a.ttml\n")
	h.drop("SR-52", "a.ttml", watcher.Ready, 16)
	v := h.waitState("SR-52", Held)
	if v.Files[0].Reason != "checksum_mismatch" || up.count() != 0 {
		t.Errorf("files = %+v, uploads %d; want held checksum_mismatch and nothing sent", v.Files, up.count())
	}
	// Fixed checksum file: retry sends it.
	good := md5.Sum([]byte("the real content"))
	writeReal(t, p+".md5", hex.EncodeToString(good[:])+"  a.ttml\n")
	if err := h.eng.Retry(t.Context(), "SR-52"); err != nil {
		t.Fatal(err)
	}
	h.waitState("SR-52", Delivered)
}
