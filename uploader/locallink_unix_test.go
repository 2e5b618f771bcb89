//go:build unix

package uploader

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// linkedOutbox makes a file:// destination folder and, outside it, a folder holding
// victim.txt: what a link planted in the destination by someone else would aim at.
func linkedOutbox(t *testing.T) (root, outside, victim string) {
	t.Helper()
	base := t.TempDir()
	root, outside = filepath.Join(base, "outbox"), filepath.Join(base, "elsewhere")
	must(t, os.Mkdir(root, 0o755))
	must(t, os.Mkdir(outside, 0o755))
	victim = filepath.Join(outside, "victim.txt")
	must(t, os.WriteFile(victim, []byte("precious, not hotdrop's"), 0o644))
	return root, outside, victim
}

// wantLinkRefused checks an upload refused for a link in the destination: permanent, and a
// sentence that names the path and says hotdrop does not follow links.
func wantLinkRefused(t *testing.T, err error, path string) {
	t.Helper()
	e := wantCode(t, err, CodeRemoteError, false)
	msg := e.Reason()
	t.Logf("refused: %s", msg)
	if !strings.Contains(msg, path) || !strings.Contains(msg, "symbolic link") || !strings.Contains(msg, "never follows links") {
		t.Errorf("reason = %q, want it to name %s as a symbolic link hotdrop never follows", msg, path)
	}
}

// TestLocalPartialLinkNotFollowed: someone who can write into a file:// destination (a share
// the ingest side writes too) plants a link at the partial's name, aimed at a file outside
// it. Neither a new upload (which used to open the name with O_TRUNC) nor a resume (which
// used to open it for writing) may write through it: the upload is refused, the file the
// link points at keeps its bytes, and nothing is published.
func TestLocalPartialLinkNotFollowed(t *testing.T) {
	for _, resume := range []bool{false, true} {
		name := map[bool]string{false: "new", true: "resume"}[resume]
		t.Run(name, func(t *testing.T) {
			root, _, victim := linkedOutbox(t)
			before, err := os.ReadFile(victim)
			must(t, err)
			u := newUploader(t, Options{URL: "file://" + root, Logger: discardLogger()})
			j, _ := localFile(t, 300000, "PKG/movie.mxf")
			must(t, os.Mkdir(filepath.Join(root, "PKG"), 0o755))
			partial := filepath.Join(root, "PKG", ".movie.mxf.partial")
			must(t, os.Symlink(victim, partial))
			if resume {
				fi, err := os.Stat(j.LocalPath)
				must(t, err)
				j.Resume = &Checkpoint{Partial: partial, Offset: 10, Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi)}
			}
			_, err = u.Upload(t.Context(), j)
			after, rerr := os.ReadFile(victim)
			must(t, rerr)
			if !bytes.Equal(after, before) {
				t.Errorf("the file the planted link points at was written: %d bytes now, %d before", len(after), len(before))
			}
			wantLinkRefused(t, err, partial)
			if _, err := os.Lstat(filepath.Join(root, "PKG", "movie.mxf")); err == nil {
				t.Errorf("something was published under the final name")
			}
			if li, err := os.Lstat(partial); err != nil || li.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the planted link was not left for a person to look at (%v, %v)", li, err)
			}
		})
	}
}

// TestLocalFolderLinkNotFollowed: a folder of the remote path planted as a link to a folder
// outside the destination (PKG -> elsewhere). Nothing is created or written outside the
// destination: the upload is refused, naming the link.
func TestLocalFolderLinkNotFollowed(t *testing.T) {
	for _, rel := range []string{"PKG/movie.mxf", "PKG/AV/movie.mxf"} {
		t.Run(rel, func(t *testing.T) {
			root, outside, _ := linkedOutbox(t)
			u := newUploader(t, Options{URL: "file://" + root, Logger: discardLogger()})
			link := filepath.Join(root, "PKG")
			must(t, os.Symlink(outside, link))
			j, _ := localFile(t, 300000, rel)
			_, err := u.Upload(t.Context(), j)
			if got := files(t, outside); len(got) != 1 || got[0] != "victim.txt" {
				t.Errorf("outside the destination now: %v, want only victim.txt", got)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 1 {
				t.Errorf("outside the destination now holds %d entries, want 1", len(entries))
			}
			wantLinkRefused(t, err, link)
		})
	}
}

// TestLocalStalePartialLosesItsNameNotItsBytes: a regular file left at the partial's name is
// replaced by a new file, not cut and written over: another name of it (a hard link someone
// made in the share) keeps its bytes. And a link at the final name, replaced by a
// redelivery, goes itself; its target is never written.
func TestLocalStalePartialLosesItsNameNotItsBytes(t *testing.T) {
	root, _, victim := linkedOutbox(t)
	u := newUploader(t, Options{URL: "file://" + root, Logger: discardLogger()})
	must(t, os.Mkdir(filepath.Join(root, "PKG"), 0o755))
	other := filepath.Join(root, "PKG", "someone-elses.mxf")
	must(t, os.WriteFile(other, []byte("their bytes"), 0o644))
	must(t, os.Link(other, filepath.Join(root, "PKG", ".movie.mxf.partial")))
	j, data := localFile(t, 300000, "PKG/movie.mxf")
	_, err := u.Upload(t.Context(), j)
	must(t, err)
	assertFile(t, filepath.Join(root, "PKG", "movie.mxf"), data)
	assertFile(t, other, []byte("their bytes"))
	assertNoPartial(t, root)

	final := filepath.Join(root, "PKG", "linked.mxf")
	must(t, os.Symlink(victim, final))
	before, err := os.ReadFile(victim)
	must(t, err)
	j2, data2 := localFile(t, 1000, "PKG/linked.mxf")
	j2.Replace = true
	_, err = u.Upload(t.Context(), j2)
	must(t, err)
	assertFile(t, final, data2)
	if li, err := os.Lstat(final); err != nil || !li.Mode().IsRegular() {
		t.Errorf("final name after the redelivery: %v (%v), want the regular file sent", li, err)
	}
	assertFile(t, victim, before)
}
