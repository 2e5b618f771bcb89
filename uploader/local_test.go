package uploader

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileDestination(t *testing.T) {
	root := t.TempDir()
	u := newUploader(t, Options{URL: "file://" + root})
	j, data := localFile(t, 200000, "PKG/AV/movie.mxf")
	res, err := u.Upload(t.Context(), j)
	must(t, err)
	final := filepath.Join(root, "PKG", "AV", "movie.mxf")
	if res.Remote != final || res.SHA256 != sum(data) || res.Size != int64(len(data)) {
		t.Errorf("Upload() = %+v, want %s", res, final)
	}
	assertFile(t, final, data)
	assertNoPartial(t, root)

	t.Run("remote_exists", func(t *testing.T) {
		_, err := u.Upload(t.Context(), j)
		wantCode(t, err, CodeRemoteExists, false)
	})
	t.Run("replace", func(t *testing.T) {
		j2, data2 := localFile(t, 1000, "PKG/AV/movie.mxf")
		j2.Replace = true
		_, err := u.Upload(t.Context(), j2)
		must(t, err)
		assertFile(t, final, data2)
	})
	t.Run("changed", func(t *testing.T) {
		j3, _ := localFile(t, 200000, "PKG/AV/other.mxf")
		j3.Progress = func(int64) { _ = os.Truncate(j3.LocalPath, 1) }
		_, err := u.Upload(t.Context(), j3)
		wantCode(t, err, CodeChanged, false)
		if _, err := os.Stat(filepath.Join(root, "PKG", "AV", "other.mxf")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("final file exists after change (err %v)", err)
		}
		assertNoPartial(t, root)
	})
	t.Run("missing_folder", func(t *testing.T) {
		// A share that is not mounted (or a wrong URL) is reported; no folder is made for it.
		gone := filepath.Join(root, "not-mounted")
		u := newUploader(t, Options{URL: "file://" + gone})
		j5, _ := localFile(t, 10, "PKG/x.bin")
		_, err := u.Upload(t.Context(), j5)
		e := wantCode(t, err, CodeRemoteError, false)
		if !strings.Contains(e.Reason(), gone+" does not exist") {
			t.Errorf("reason = %q, want it to say %s does not exist", e.Reason(), gone)
		}
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the missing destination folder was made (%v)", err)
		}
	})
	t.Run("permission_denied", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only folders; the sshd test covers this as an unprivileged user")
		}
		ro := filepath.Join(root, "ro")
		must(t, os.Mkdir(ro, 0o555))
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
		j4, _ := localFile(t, 10, "ro/x.bin")
		_, err := u.Upload(t.Context(), j4)
		wantCode(t, err, CodePermissionDenied, false)
	})
}

// TestLocalRenameIsIdempotent: on a file:// share, publishing without replace is link(2)
// then unlink(2). An NFS client that resends either after losing its answer hears EEXIST
// for its own link, or ENOENT for its own removal; neither is someone else's file. The state
// such a resend finds is made here: the final name already a link of the partial, then the
// partial already gone.
func TestLocalRenameIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	tg := localTargetAt(t, dir, "")
	from, to := filepath.Join(dir, ".a.wav.partial"), filepath.Join(dir, "a.wav")
	must(t, os.WriteFile(from, []byte("hotdrop"), 0o644))
	must(t, os.Link(from, to)) // the LINK went through; its answer did not
	if _, err := tg.rename(from, to, false); err != nil {
		t.Fatalf("rename over its own link = %v, want done", err)
	}
	if _, err := os.Stat(from); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("partial still there after the rename (%v)", err)
	}
	// Someone else's file under the final name is still refused.
	must(t, os.WriteFile(from, []byte("hotdrop"), 0o644))
	if _, err := tg.rename(from, to, false); !errors.Is(err, fs.ErrExist) {
		t.Errorf("rename onto another file = %v, want it refused (exists)", err)
	}
	if got, _ := os.ReadFile(to); string(got) != "hotdrop" {
		t.Errorf("final file = %q, changed", got)
	}
}

// localTargetAt opens a file:// target on the existing folder root for one test.
func localTargetAt(t *testing.T, root, tempName string) localTarget {
	t.Helper()
	tg, err := openLocalTarget(root, tempName)
	must(t, err)
	t.Cleanup(tg.close)
	return tg
}
