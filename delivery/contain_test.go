//go:build linux

package delivery

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/uploader"
	"github.com/hotdrop/hotdrop/watcher"
	"golang.org/x/sys/unix"
)

// The attacks of issue 10, played against the real uploader (file:// destination) and real
// files: a render-farm user swaps a folder of the drop tree for a symbolic link to a folder
// they cannot read or write, right before or right after an upload.

// hookedUploader is the real uploader, converted as cmd/hotdrop converts it, with hooks that
// run right before and right after each upload.
type hookedUploader struct {
	u             *uploader.Uploader
	mu            sync.Mutex
	before, after func(j Job)
}

func (h *hookedUploader) Upload(ctx context.Context, j Job) (Result, error) {
	h.mu.Lock()
	before, after := h.before, h.after
	h.mu.Unlock()
	if before != nil {
		before(j)
	}
	uj := uploader.Job{LocalPath: j.LocalPath, Open: j.Open, RemoteRel: j.RemoteRel, Size: j.Size, ModTime: j.ModTime,
		Replace: j.Replace, BeforeRename: j.BeforeRename, Progress: j.Progress, NoChecksumFile: j.NoChecksumFile}
	res, err := h.u.Upload(ctx, uj)
	if after != nil {
		after(j)
	}
	if err != nil {
		var te *TransferError
		if errors.As(err, &te) {
			return Result{}, te
		}
		ue := uploader.Classify(err)
		return Result{}, &TransferError{Code: ue.Code, Msg: ue.Msg, Transient: ue.Transient, Err: err}
	}
	return Result{Remote: res.Remote, Size: res.Size, SHA256: res.SHA256}, nil
}

func (h *hookedUploader) Stat(ctx context.Context, rel string) (int64, bool, error) {
	return h.u.Stat(ctx, rel)
}

// containHarness runs an Engine over a real root with the real uploader delivering into dest.
func containHarness(t *testing.T, mutate func(*Options), reqs ...Request) (h *harness, up *hookedUploader, dest string) {
	t.Helper()
	dest = t.TempDir()
	u, err := uploader.New(uploader.Options{URL: "file://" + dest, Checksum: "none"})
	if err != nil {
		t.Fatal(err)
	}
	up = &hookedUploader{u: u}
	h = &harness{t: t, root: filepath.Join(t.TempDir(), "root"), st: newMemStore(), views: &viewLog{}, events: make(chan watcher.Event)}
	if err := os.Mkdir(h.root, 0o755); err != nil {
		t.Fatal(err)
	}
	opt := Options{
		Root: h.root, Bin: "_bin", FolderTemplate: "{title}/{source_type} {language} [{id}]", FolderMode: 0o2775,
		ReadyMarker: "_READY", Concurrency: 1, AutoDeliver: true, Names: "portable",
		RemotePath: func(r Request, name string) (string, error) { return r.ID + "/" + name, nil },
		Clock:      clock.NewSkipping(time.Unix(0, 0)),
	}
	if mutate != nil {
		mutate(&opt)
	}
	h.eng = New(opt, up, h.st, h.views)
	if err := h.eng.SetRequests(context.Background(), reqs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.eng.Run(ctx, h.events) }()
	t.Cleanup(h.stop)
	return h, up, dest
}

// victim makes a folder outside the root holding name with content, with the same size and
// mtime as the attacker's file at ours: only the inode (and device) tell them apart.
func victim(t *testing.T, name, content, ours string) (dir, file string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "victim")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, name)
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(ours)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// swapForLink replaces the folder at dir with a symbolic link to target in one step
// (renameat2 RENAME_EXCHANGE), the way an attacker times it; the real folder ends up at
// dir+".away".
func swapForLink(t *testing.T, dir, target string) {
	t.Helper()
	link := dir + ".away"
	if err := os.Symlink(target, link); err != nil {
		t.Error(err)
		return
	}
	if err := unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE); err != nil {
		t.Errorf("renameat2(RENAME_EXCHANGE): %v", err)
	}
}

// remoteHolds reports whether any file below dest has content.
func remoteHolds(t *testing.T, dest, content string) []string {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, rerr := os.ReadFile(p); rerr == nil && bytes.Contains(b, []byte(content)) {
				found = append(found, p)
			}
		}
		return nil
	})
	return found
}

// Attack 1: the file settles, then (with the upload slot busy) the folder holding it becomes
// a link to a folder holding a root-only file of the same name, size and mtime. Before the fix
// the victim's bytes were delivered.
func TestSwappedParentFolderIsNeverRead(t *testing.T) {
	h, up, dest := containHarness(t, nil, req("SR-1", 1))
	folder := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-1]")
	nested := filepath.Join(folder, "nested")
	ours := filepath.Join(nested, "ep1_en-US.scc")
	writeReal(t, ours, "attacker")
	vdir, _ := victim(t, "ep1_en-US.scc", "SECRET!!", ours)
	up.before = func(Job) { swapForLink(t, nested, vdir) }
	h.drop("SR-1", "nested/ep1_en-US.scc", watcher.Ready, 8)
	v := h.waitState("SR-1", Held)
	if got := remoteHolds(t, dest, "SECRET!!"); len(got) > 0 {
		t.Fatalf("the victim's content was delivered: %v", got)
	}
	if len(v.Files) != 1 || v.Files[0].Reason != ReasonUnsafePath {
		t.Fatalf("files = %+v, want one held %s", v.Files, ReasonUnsafePath)
	}
	if v.Files[0].SHA256 != "" {
		t.Errorf("a checksum was recorded for a file never sent: %q", v.Files[0].SHA256)
	}
}

// Attack 1, same-folder variant: the path is reached through real folders, but the file at it
// is another one with the same size and mtime (a hard link or copy swapped in): the opened
// descriptor is not the identity that settled, so nothing is sent and the file settles again.
func TestReplacedFileIsNotSent(t *testing.T) {
	h, up, dest := containHarness(t, nil, req("SR-2", 1))
	folder := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-2]")
	ours := filepath.Join(folder, "ep1_en-US.scc")
	writeReal(t, ours, "attacker")
	_, vfile := victim(t, "ep1_en-US.scc", "SECRET!!", ours)
	up.before = func(Job) {
		other := filepath.Join(folder, ".swap")
		b, _ := os.ReadFile(vfile)
		fi, _ := os.Stat(vfile)
		if err := os.WriteFile(other, b, 0o600); err != nil {
			t.Error(err)
		}
		os.Chtimes(other, fi.ModTime(), fi.ModTime())
		keep := filepath.Join(folder, ".keep") // keeps the settled inode from being reused
		if err := os.Link(ours, keep); err != nil {
			t.Error(err)
		}
		if err := os.Rename(other, ours); err != nil {
			t.Error(err)
		}
	}
	h.drop("SR-2", "ep1_en-US.scc", watcher.Ready, 8)
	v := h.waitState("SR-2", Settling)
	if got := remoteHolds(t, dest, "SECRET!!"); len(got) > 0 {
		t.Fatalf("a file that never settled was delivered: %v", got)
	}
	if len(v.Files) != 1 || v.Files[0].Reason != ReasonChangedDuringUpload {
		t.Fatalf("files = %+v, want one settling again (%s)", v.Files, ReasonChangedDuringUpload)
	}
}

// Attack 2: with after = delete or move, the folder holding the delivered file is swapped
// (atomically) for a link to a folder holding a root-owned file of the same name, right after
// the upload. Before the fix hotdrop deleted or moved the victim's file.
func TestAfterDeliveryNeverActsThroughASwappedFolder(t *testing.T) {
	for _, after := range []string{"delete", "move"} {
		t.Run(after, func(t *testing.T) {
			h, up, dest := containHarness(t, func(o *Options) { o.After = after }, req("SR-3", 1))
			folder := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-3]")
			nested := filepath.Join(folder, "nested")
			ours := filepath.Join(nested, "ep1_fr-FR.ttml")
			writeReal(t, ours, "our subs")
			vdir, vfile := victim(t, "ep1_fr-FR.ttml", "victim!!", ours)
			up.after = func(Job) { swapForLink(t, nested, vdir) }
			h.drop("SR-3", "nested/ep1_fr-FR.ttml", watcher.Ready, 8)
			h.waitState("SR-3", Delivered)
			if got := remoteHolds(t, dest, "our subs"); len(got) != 1 {
				t.Fatalf("delivered copies of our file: %v, want 1", got)
			}
			b, err := os.ReadFile(vfile)
			if err != nil || string(b) != "victim!!" {
				t.Fatalf("after = %s acted through the link: victim file now %q (%v)", after, b, err)
			}
			var moved []string
			_ = filepath.WalkDir(filepath.Join(h.root, DeliveredDir), func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					moved = append(moved, p)
				}
				return nil
			})
			if len(moved) > 0 {
				t.Fatalf("after = %s moved %v into %s through the link", after, moved, DeliveredDir)
			}
			// Our own file, in the folder that was swapped away, is left alone too: hotdrop
			// cannot tell where it went.
			if _, err := os.Stat(filepath.Join(nested+".away", "ep1_fr-FR.ttml")); err != nil {
				t.Errorf("our own source: %v", err)
			}
		})
	}
}

// The same, without any swap: delete and move still work through the opened folder.
func TestAfterDeliveryStillMovesAndDeletes(t *testing.T) {
	for _, after := range []string{"delete", "move"} {
		t.Run(after, func(t *testing.T) {
			h, _, _ := containHarness(t, func(o *Options) { o.After = after }, req("SR-4", 1))
			ours := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-4]", "nested", "ep1_fr-FR.ttml")
			writeReal(t, ours, "our subs")
			h.drop("SR-4", "nested/ep1_fr-FR.ttml", watcher.Ready, 8)
			h.waitState("SR-4", Delivered)
			if _, err := os.Lstat(ours); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("after = %s: source still there (%v)", after, err)
			}
			moved := filepath.Join(h.root, DeliveredDir, "Wednesday", "Subtitle fr-FR [SR-4]", "nested", "ep1_fr-FR.ttml")
			_, err := os.Lstat(moved)
			if (after == "move") != (err == nil) {
				t.Fatalf("after = %s: moved copy: %v", after, err)
			}
		})
	}
}

// Drop folders are made beneath the root one level at a time: a title folder swapped for a
// link is refused, not followed into the victim's folder.
func TestDropFolderNotCreatedThroughALink(t *testing.T) {
	h, _, _ := containHarness(t, nil, req("SR-5", 1))
	vdir := filepath.Join(t.TempDir(), "victim")
	if err := os.Mkdir(vdir, 0o700); err != nil {
		t.Fatal(err)
	}
	swapForLink(t, filepath.Join(h.root, "Wednesday"), vdir)
	r := req("SR-6", 1, "source_type", "Forced Sub")
	err := h.eng.Reload(context.Background(), h.eng.opt, nil, []Request{req("SR-5", 1), r})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Reload with a drop folder below a link: err = %v, want a refusal naming the link", err)
	}
	if entries, _ := os.ReadDir(vdir); len(entries) > 0 {
		t.Fatalf("a folder was made through the link: %v", entries[0].Name())
	}
}

// An existing drop folder is taken as it is only when it is a folder all the way down: one
// swapped for a link to a folder is refused on the next setup, as a missing one would be.
func TestExistingDropFolderSwappedForALinkIsRefused(t *testing.T) {
	h, _, _ := containHarness(t, nil, req("SR-5", 1))
	drop := filepath.Join(h.root, "Wednesday", "Subtitle fr-FR [SR-5]")
	if fi, err := os.Lstat(drop); err != nil || !fi.IsDir() {
		t.Fatalf("drop folder %s: %v", drop, err)
	}
	if err := h.eng.Reload(context.Background(), h.eng.opt, nil, []Request{req("SR-5", 1)}); err != nil {
		t.Fatalf("Reload with the drop folder in place: %v", err)
	}
	vdir := filepath.Join(t.TempDir(), "victim")
	if err := os.Mkdir(vdir, 0o700); err != nil {
		t.Fatal(err)
	}
	swapForLink(t, drop, vdir)
	err := h.eng.Reload(context.Background(), h.eng.opt, nil, []Request{req("SR-5", 1)})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Reload with the drop folder swapped for a link: err = %v, want a refusal naming the link", err)
	}
}
