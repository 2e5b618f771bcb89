//go:build unix

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestSendFolderSwappedForLink: between send's listing and its upload a writer renames a
// sub-folder of the named folder away and puts a link to another folder in its place, with a
// file of the same name, size and mtime there. The file outside the named folder is never read
// nor sent: the listed file is refused (unsafe_path, in safefs's words), and send exits 1
// naming it. A file replaced in place by one of the same size and mtime is refused too. It
// used to open the listed path by name and send the other folder's file.
func TestSendFolderSwappedForLink(t *testing.T) {
	s := sshdtest.Start(t)
	cfg := sendConfig(t, s, `checksum = "none"`)
	src := t.TempDir()
	reel, outside := filepath.Join(src, "reel"), filepath.Join(src, "outside")
	mustWrite := func(p, data string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(data), 0o644))
	}
	mustWrite(filepath.Join(reel, "a.txt"), "sent as listed")
	mustWrite(filepath.Join(reel, "b.txt"), "listed")
	mustWrite(filepath.Join(reel, "sub", "secret.txt"), "AAAA inside the named folder")
	mustWrite(filepath.Join(outside, "secret.txt"), "BBBB out of the named folder")
	when := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, p := range []string{filepath.Join(reel, "sub", "secret.txt"), filepath.Join(outside, "secret.txt"), filepath.Join(reel, "b.txt")} {
		must(t, os.Chtimes(p, when, when))
	}
	// A link already there when send lists the folder is skipped, never walked.
	must(t, os.Symlink(outside, filepath.Join(reel, "linked")))

	swapped := false
	afterSendListing = func() {
		must(t, os.Rename(filepath.Join(reel, "sub"), filepath.Join(src, "sub.moved")))
		must(t, os.Symlink(outside, filepath.Join(reel, "sub")))
		// And a file replaced by another of the same size and mtime: only its inode differs.
		mustWrite(filepath.Join(src, "b.new"), "placed")
		must(t, os.Chtimes(filepath.Join(src, "b.new"), when, when))
		must(t, os.Rename(filepath.Join(src, "b.new"), filepath.Join(reel, "b.txt")))
		swapped = true
	}
	t.Cleanup(func() { afterSendListing = nil })

	var stdout, stderr bytes.Buffer
	code := run([]string{"send", "--config", cfg, reel}, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	if !swapped {
		t.Fatalf("the folder was never swapped (exit %d):\n%s", code, out)
	}
	if code != exitFail {
		t.Errorf("send exit %d, want %d:\n%s", code, exitFail, out)
	}
	remote := filepath.Join(s.Dir, "reel", "sub", "secret.txt")
	if got, err := os.ReadFile(remote); err == nil {
		t.Errorf("the server received reel/sub/secret.txt (%q) through the link", got)
	}
	if entries, _ := os.ReadDir(filepath.Join(s.Dir, "reel", "sub")); len(entries) != 0 {
		t.Errorf("left on the server in reel/sub: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "reel", "linked")); err == nil {
		t.Errorf("a link found while listing was walked and sent")
	}
	if got, err := os.ReadFile(filepath.Join(s.Dir, "reel", "a.txt")); err != nil || string(got) != "sent as listed" {
		t.Errorf("reel/a.txt on the server: %q, %v", got, err)
	}
	secret := filepath.Join(reel, "sub", "secret.txt")
	if !strings.Contains(stdout.String(), "failed   "+secret+": unsafe_path: ") ||
		!strings.Contains(stdout.String(), "is a symbolic link, or has one on its path; hotdrop never follows links") {
		t.Errorf("send does not say which file was refused and why:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "reel", "b.txt")); err == nil {
		t.Errorf("reel/b.txt, replaced since it was listed, was sent")
	}
	if !strings.Contains(stdout.String(), "failed   "+filepath.Join(reel, "b.txt")+": changed_during_upload: local file "+filepath.Join(reel, "b.txt")+" is no longer the file send listed") {
		t.Errorf("send does not say b.txt changed since it was listed:\n%s", out)
	}
	if !strings.Contains(stdout.String(), "1 of 3 files delivered, 2 failed") {
		t.Errorf("summary:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "skipping "+filepath.Join(reel, "linked")) {
		t.Errorf("send does not say it skipped the link it listed:\n%s", out)
	}
}
