package delivery

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotdrop/hotdrop/watcher"
)

// A folder hotdrop cannot enter shows as held permission_denied with the watcher's sentence,
// on the files known in it or on the folder itself, and the hold lifts when the watcher
// reports the files again (issue 14: they stayed settling forever, without a reason).
func TestDeniedFolderHeld(t *testing.T) {
	h := newHarness(t, newMemStore(), newFakeUploader(), req("SR-80", 2), req("SR-81", 1))
	const why = "hotdrop (running as the user hotdrop) cannot enter the folder …/sub (owner render:render, mode 0700), so the files in it cannot be delivered: chmod g+rx …"
	deny := func(id, name string) string {
		p := h.drop(id, name, watcher.Settling, 4) // known: the watcher saw it before the folder was locked
		rel, _ := filepath.Rel(h.root, p)
		h.events <- watcher.Event{Kind: watcher.Denied, Path: p, Rel: filepath.ToSlash(rel), Reason: why}
		return p
	}
	deny("SR-80", "sub/a.wav")
	h.drop("SR-80", "b.wav", watcher.Ready, 4)
	v := h.waitState("SR-80", Held)
	held := map[string]FileView{}
	for _, f := range v.Files {
		held[f.Name] = f
	}
	if f := held["sub/a.wav"]; f.State != Held || f.Reason != ReasonPermissionDenied || f.Message != why {
		t.Fatalf("sub/a.wav = %+v, want held %s saying %q", f, ReasonPermissionDenied, why)
	}
	// A retry cannot help; the watcher lifts the hold once the folder can be read.
	err := h.eng.Retry(context.Background(), "SR-80")
	for _, v := range h.eng.Requests() {
		for _, f := range v.Files {
			if f.Name == "sub/a.wav" && (f.State != Held || f.Reason != ReasonPermissionDenied) {
				t.Fatalf("after hotdrop retry (err %v): sub/a.wav %s %s, want still held %s", err, f.State, f.Reason, ReasonPermissionDenied)
			}
		}
	}
	h.drop("SR-80", "sub/a.wav", watcher.Settling, 4)
	h.drop("SR-80", "sub/a.wav", watcher.Ready, 4)
	h.waitState("SR-80", Delivered)

	// Nothing known inside: the folder itself is held, in its request, until it is lifted.
	folder := filepath.Join(h.eng.Requests()[1].Folder, "locked")
	rel, _ := filepath.Rel(h.root, folder)
	h.events <- watcher.Event{Kind: watcher.Denied, Path: folder, Rel: filepath.ToSlash(rel), Reason: why}
	v = h.waitState("SR-81", Held)
	if len(v.Files) != 1 || v.Files[0].Name != "locked" || v.Files[0].Reason != ReasonPermissionDenied {
		t.Fatalf("files = %+v, want the folder locked held %s", v.Files, ReasonPermissionDenied)
	}
	h.events <- watcher.Event{Kind: watcher.Removed, Path: folder, Rel: filepath.ToSlash(rel)}
	h.drop("SR-81", "locked/c.wav", watcher.Ready, 4)
	h.waitState("SR-81", Delivered)
}

// A folder's _metadata.toml known when the folder was locked is held like the files beside
// it (nothing can tell what it is then); seen again once the folder is readable, it is folder
// metadata, and its hold goes: it must not keep the request held.
func TestDeniedMetadataLifted(t *testing.T) {
	h := newHarness(t, newMemStore(), newFakeUploader(), req("SR-82", 1))
	folder := h.eng.Requests()[0].Folder
	if err := os.MkdirAll(filepath.Join(folder, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(folder, "sub", "_metadata.toml")
	if err := os.WriteFile(meta, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(h.root, meta)
	h.events <- watcher.Event{Kind: watcher.Denied, Path: meta, Rel: filepath.ToSlash(rel), Reason: "cannot enter the folder sub"}
	h.waitState("SR-82", Held)
	h.events <- watcher.Event{Kind: watcher.Settling, Path: meta, Rel: filepath.ToSlash(rel)}
	h.drop("SR-82", "sub/a.wav", watcher.Ready, 4)
	v := h.waitState("SR-82", Delivered)
	if len(v.Files) != 1 || v.Files[0].Name != "sub/a.wav" {
		t.Errorf("files = %+v, want only sub/a.wav", v.Files)
	}
}
