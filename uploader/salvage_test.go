package uploader

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestResumeKeepsWhatReachedTheServer: a link that drops (or a process that dies) loses
// the acknowledgements of writes the server had already done. On resume, the part of the
// partial past the journaled offset that reads back identical to the local file is kept
// and not sent again; from the first byte that differs (a hole that out-of-order writes
// left, another writer's bytes) it is cut off and sent again. The file arrives identical.
func TestResumeKeepsWhatReachedTheServer(t *testing.T) {
	s := sshdtest.Start(t)
	for _, dest := range bothDestinations(s) {
		t.Run(dest.name, func(t *testing.T) {
			o, dir := dest.opts(t)
			u := newUploader(t, o)
			const size, acked, arrived = 3 << 20, 1 << 20, 1<<20 + 700<<10
			rel := "salvage/" + dest.name + ".mov"
			j, data := localFile(t, size, rel)
			partial := filepath.Join(dir, "salvage", "."+dest.name+".mov.partial")
			must(t, os.MkdirAll(filepath.Dir(partial), 0o777))
			// What reached the server: the acknowledged part, more that arrived unacknowledged,
			// then bytes that differ from the local file's at every position (as a hole of
			// zeros does wherever the file is not zero), then a later write.
			wrong := make([]byte, 100<<10)
			for i := range wrong {
				wrong[i] = ^data[arrived+i]
			}
			held := append(append([]byte{}, data[:arrived]...), wrong...)
			held = append(held, data[arrived+100<<10:arrived+300<<10]...)
			must(t, os.WriteFile(partial, held, 0o644))
			if dest.name == "sshd" {
				chownTo(t, s.User, filepath.Dir(partial), partial)
			}
			fi, err := os.Stat(j.LocalPath)
			must(t, err)
			j.Resume = &Checkpoint{Partial: partial, Offset: acked, Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi)}
			res, err := u.Upload(t.Context(), j)
			must(t, err)
			if res.Resumed != arrived {
				t.Errorf("resumed from %d, want %d: the %d bytes past the acknowledged %d that match the local file are kept, the hole is not",
					res.Resumed, arrived, arrived-acked, acked)
			}
			assertFile(t, filepath.Join(dir, filepath.FromSlash(rel)), data)
			assertNoPartial(t, dir)
		})
	}
}

func chownTo(t *testing.T, name string, paths ...string) {
	t.Helper()
	u, err := user.Lookup(name)
	must(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		must(t, os.Chown(p, uid, gid))
	}
}

// destination is a way to get Options for a test, and the folder files land in.
type destination struct {
	name string
	opts func(t *testing.T) (Options, string)
}

// bothDestinations are the real sshd s and a file:// folder, for a test of behaviour
// both kinds of destination must share.
func bothDestinations(s *sshdtest.Server) []destination {
	return []destination{
		{"sshd", func(t *testing.T) (Options, string) { return sshdOptions(s), s.Dir }},
		{"file", func(t *testing.T) (Options, string) {
			dir := t.TempDir()
			return Options{URL: "file://" + dir, Logger: discardLogger()}, dir
		}},
	}
}

// TestResumeRefusedForGoodLeavesNoPartial: a resume that finds the final name taken (another's
// file arrived there meanwhile) is refused for good, and its caller forgets the resume point:
// the partial it resumed is removed, not left on the server with nothing to ever finish it.
func TestResumeRefusedForGoodLeavesNoPartial(t *testing.T) {
	s := sshdtest.Start(t)
	for _, dest := range bothDestinations(s) {
		t.Run(dest.name, func(t *testing.T) {
			o, dir := dest.opts(t)
			u := newUploader(t, o)
			rel := "taken/" + dest.name + ".mov"
			j, data := localFile(t, 2<<20, rel)
			partial := filepath.Join(dir, "taken", "."+dest.name+".mov.partial")
			final := filepath.Join(dir, filepath.FromSlash(rel))
			must(t, os.MkdirAll(filepath.Dir(partial), 0o777))
			must(t, os.WriteFile(partial, data[:1<<20], 0o644))
			must(t, os.WriteFile(final, []byte("someone else's"), 0o644))
			if dest.name == "sshd" {
				chownTo(t, s.User, filepath.Dir(partial), partial, final)
			}
			fi, err := os.Stat(j.LocalPath)
			must(t, err)
			j.Resume = &Checkpoint{Partial: partial, Offset: 1 << 20, Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi)}
			_, err = u.Upload(t.Context(), j)
			wantCode(t, err, CodeRemoteExists, false)
			assertFile(t, final, []byte("someone else's"))
			assertNoPartial(t, dir)
		})
	}
}
