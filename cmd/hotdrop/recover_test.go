package main

import (
	"context"
	"encoding/json"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/hotdrop/hotdrop/store"
)

// chownToLogin gives paths to the account the test sshd logs in as, as the
// uploads of a previous run would have left them.
func chownToLogin(t *testing.T, s *sshdtest.Server, paths ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup(s.User)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashBetweenRenamesFinishesPublish: hotdrop was killed after the data file's rename
// into place and before its checksum file's, so the server holds the file and
// `.NAME.sha256.partial`, and the journal (a real SQLite file) the rename intent. The next
// start records the file delivered without sending it again and finishes the whole publish:
// NAME.sha256 with the right sum, no temporary file left, and the manifest listing the file
// with its sha256.
func TestCrashBetweenRenamesFinishesPublish(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "poll")
	src := filepath.Join(e.folder("SR-1"), "ep1_fr-FR.ttml")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, 200<<10)
	sum, err := sha256File(src)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}

	// What the killed process left: the journal's intent, the renamed file, the checksum
	// file's temporary copy.
	const rel = "PKG-1/Subtitle/ep1_fr-FR.ttml"
	if err := os.MkdirAll(e.cfg.StateDir, 0o750); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(e.cfg.StateDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.SaveFile(ctx, store.File{Path: src, RequestID: "SR-1", Size: fi.Size(), ModTime: fi.ModTime(),
		Inode: safefs.Inode(fi), State: string(delivery.Uploading), RemotePath: rel,
		CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkRenameIntent(ctx, src, rel, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	remoteDir := filepath.Join(srv.Dir, "PKG-1", "Subtitle")
	final := filepath.Join(remoteDir, "ep1_fr-FR.ttml")
	tmpSum := filepath.Join(remoteDir, ".ep1_fr-FR.ttml.sha256.partial")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(remoteDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(final, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmpSum, []byte(sum+"  ep1_fr-FR.ttml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	chownToLogin(t, srv, filepath.Join(srv.Dir, "PKG-1"), remoteDir, final, tmpSum)

	e.start()
	s := e.waitStatus("SR-1", "delivered")
	if len(s.Files) != 1 || s.Files[0].SHA256 != sum || s.Files[0].Verified != "hash" {
		t.Errorf("status files = %+v, want the file delivered with sha256 %s, verified by the server's hash", s.Files, sum)
	}
	manifest := filepath.Join(remoteDir, "SR-1.hotdrop.json")
	waitFor(t, 20*time.Second, "the manifest on the server", func() bool {
		_, err := os.Stat(manifest)
		return err == nil
	})
	e.stop()

	if n := e.uploads.Load(); n != 0 {
		t.Errorf("uploads after the restart = %d, want 0 (the file was on the server already)", n)
	}
	got, err := os.ReadFile(final + ".sha256")
	if err != nil {
		t.Fatalf("checksum file after the restart: %v", err)
	}
	if want := sum + "  ep1_fr-FR.ttml\n"; string(got) != want {
		t.Errorf("checksum file = %q, want %q", got, want)
	}
	if left := strings.Join(remoteFiles(t, srv.Dir), " "); strings.Contains(left, ".partial") {
		t.Errorf("temporary files left on the server: %s", left)
	}
	var m delivery.Manifest
	raw, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest %s: %v", raw, err)
	}
	if len(m.Files) != 1 || m.Files[0].SHA256 != sum || m.Files[0].Size != fi.Size() {
		t.Errorf("manifest files = %+v, want the file with sha256 %s and size %d", m.Files, sum, fi.Size())
	}
}
