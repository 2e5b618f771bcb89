package uploader

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// Nothing hotdrop did not write is ever overwritten on the server: not the
// file's own name when something appears there during the upload, and not a
// checksum file that was there before.

// TestNoClobber runs each case against the real sshd and a file:// folder.
func TestNoClobber(t *testing.T) {
	s := sshdtest.Start(t)
	for _, dest := range bothDestinations(s) {
		t.Run(dest.name+"/appears during upload", func(t *testing.T) {
			o, dir := dest.opts(t)
			o.Verify = VerifySize // so nothing looks at the final name again after the size check
			u := newUploader(t, o)
			rel := "nc/" + dest.name + "-late.mov"
			final := filepath.Join(dir, filepath.FromSlash(rel))
			u.beforeVerify = func(string) { must(t, os.WriteFile(final, []byte("the studio's own file"), 0o644)) }
			j, _ := localFile(t, 200<<10, rel)
			_, err := u.Upload(t.Context(), j)
			wantCode(t, err, CodeRemoteExists, false)
			assertFile(t, final, []byte("the studio's own file"))
			assertNoPartial(t, dir)
		})
		t.Run(dest.name+"/foreign checksum file", func(t *testing.T) {
			o, dir := dest.opts(t)
			o.Checksum = ChecksumSHA256
			u := newUploader(t, o)
			rel := "nc/" + dest.name + "-sum.mov"
			final := filepath.Join(dir, filepath.FromSlash(rel))
			must(t, os.MkdirAll(filepath.Dir(final), 0o777))
			must(t, os.WriteFile(final+".sha256", []byte("0000  other.mov\n"), 0o644))
			j, _ := localFile(t, 1000, rel)
			_, err := u.Upload(t.Context(), j)
			e := wantCode(t, err, CodeRemoteExists, false)
			if !strings.Contains(e.Msg, ".sha256") {
				t.Errorf("message %q does not name the checksum file", e.Msg)
			}
			if _, err := os.Stat(final); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the file was published beside a checksum file that disagrees with it (stat: %v)", err)
			}
			assertFile(t, final+".sha256", []byte("0000  other.mov\n"))
		})
		t.Run(dest.name+"/checksum file written again", func(t *testing.T) {
			o, dir := dest.opts(t)
			o.Checksum = ChecksumSHA256
			u := newUploader(t, o)
			rel := "nc/" + dest.name + "-again.mov"
			j, data := localFile(t, 1000, rel)
			res, err := u.Upload(t.Context(), j)
			must(t, err)
			// Written again, as a retry after a lost answer does: what is there says the
			// same, so it is done; a different sum is refused and the file kept.
			if _, err := u.WriteChecksumFile(t.Context(), rel, ChecksumSHA256, sum(data), false); err != nil {
				t.Errorf("WriteChecksumFile with the same sum = %v, want done", err)
			}
			_, err = u.WriteChecksumFile(t.Context(), rel, ChecksumSHA256, strings.Repeat("a", 64), false)
			wantCode(t, err, CodeRemoteExists, false)
			assertFile(t, res.ChecksumFile, []byte(sum(data)+"  "+filepath.Base(rel)+"\n"))
			assertNoPartial(t, dir)
		})
	}
}
