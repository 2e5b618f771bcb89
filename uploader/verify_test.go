package uploader

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// resumable leaves on the server the partial of an earlier, interrupted
// attempt at j (its first n bytes, or junk, as another writer or a server
// that lost unflushed data would), and points j.Resume at it.
func resumable(t *testing.T, s *sshdtest.Server, j *Job, prefix []byte) {
	t.Helper()
	partial := filepath.Join(s.Dir, filepath.FromSlash(filepath.Dir(j.RemoteRel)), "."+filepath.Base(j.RemoteRel)+".partial")
	must(t, os.MkdirAll(filepath.Dir(partial), 0o777))
	must(t, os.WriteFile(partial, prefix, 0o666))
	if os.Geteuid() == 0 {
		uid, gid := lookupIDs(t, s.User)
		must(t, os.Chown(filepath.Dir(partial), uid, gid))
		must(t, os.Chown(partial, uid, gid))
	}
	fi, err := os.Stat(j.LocalPath)
	must(t, err)
	j.Resume = &Checkpoint{Partial: partial, Offset: int64(len(prefix)), Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi)}
}

// TestSSHDResumedNeverSizeOnly: a file resumed from an offset > 0 is proved
// by the server's hash where the account has a shell, by reading its earlier
// part back where it is SFTP-only, and never by its size alone, whatever
// verify says. A prefix that differs from the local file (written by another
// process, lost in a power cut) is never published: the partial is discarded
// and the next attempt sends the file again from the start.
func TestSSHDResumedNeverSizeOnly(t *testing.T) {
	full := sshdtest.Start(t)
	sftpOnly := sshdtest.StartWith(t, sshdtest.Options{SFTPOnly: true})
	const size, offset = 3 << 20, 1 << 20
	for _, tt := range []struct {
		name   string
		s      *sshdtest.Server
		verify string
		want   string // Result.Verified for a resumed file
		fresh  string // Result.Verified for a file sent from the start
	}{
		{"auto with a shell", full, "", VerifyHash, VerifyHash},
		{"size with a shell", full, VerifySize, VerifyHash, VerifySize},
		{"auto sftp-only", sftpOnly, VerifyAuto, VerifyReadback, VerifySize},
		{"size sftp-only", sftpOnly, VerifySize, VerifyReadback, VerifySize},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := sshdOptions(tt.s)
			o.Verify = tt.verify
			u := newUploader(t, o)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			dir := filepath.Base(t.Name())

			fresh, _ := localFile(t, 100000, dir+"/fresh.bin")
			res, err := u.Upload(ctx, fresh)
			must(t, err)
			if res.Verified != tt.fresh {
				t.Errorf("new file: Verified = %q, want %q", res.Verified, tt.fresh)
			}

			j, data := localFile(t, size, dir+"/good.bin")
			resumable(t, tt.s, &j, data[:offset])
			res, err = u.Upload(ctx, j)
			must(t, err)
			if res.Resumed != offset || res.Verified != tt.want {
				t.Errorf("resumed file: Resumed = %d, Verified = %q; want %d, %q", res.Resumed, res.Verified, offset, tt.want)
			}
			assertFile(t, filepath.Join(tt.s.Dir, dir, "good.bin"), data)

			j, data = localFile(t, size, dir+"/bad.bin")
			bad := append([]byte(nil), data[:offset]...)
			bad[offset/2] ^= 0xff // one wrong byte in the part nobody sends again
			resumable(t, tt.s, &j, bad)
			_, err = u.Upload(ctx, j)
			e := wantCode(t, err, CodeTransient, true)
			if !errors.Is(e, errBadPrefix) {
				t.Errorf("error %v does not say the resumed part differs", e)
			}
			final := filepath.Join(tt.s.Dir, dir, "bad.bin")
			if _, err := os.Stat(final); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a resumed file with a wrong prefix was published (stat err %v)", err)
			}
			assertNoPartial(t, tt.s.Dir)
			// The caller retries with the same journal point: the partial is
			// gone, so it starts over and delivers the right bytes.
			res, err = u.Upload(ctx, j)
			must(t, err)
			if res.Resumed != 0 {
				t.Errorf("retry after a bad prefix: Resumed = %d, want 0", res.Resumed)
			}
			assertFile(t, final, data)
		})
	}
}
