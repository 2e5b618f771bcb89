//go:build unix

package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/hotdrop/hotdrop/store"
)

// sendConfig writes a config whose destination is the test sshd.
func sendConfig(t *testing.T, s *sshdtest.Server, extra string) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "root"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "requests.d"), 0o755))
	cfg := fmt.Sprintf(`state_dir = "state"
[watch]
root = "root"
[requests]
files = ["requests.d/*.toml"]
[destination]
url = %q
identity_file = %q
known_hosts = %q
%s
[status]
listen = ""
`, s.URL(), s.IdentityFile, s.KnownHosts, extra)
	p := filepath.Join(dir, "hotdrop.toml")
	must(os.WriteFile(p, []byte(cfg), 0o644))
	return p
}

func randomFile(t *testing.T, p string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendFolderAndFile(t *testing.T) {
	s := sshdtest.Start(t)
	cfg := sendConfig(t, s, `checksum = "md5"`+"\n"+`verify = "hash"`)
	src := t.TempDir()
	a := randomFile(t, filepath.Join(src, "reel", "a.mxf"), 3<<20)
	b := randomFile(t, filepath.Join(src, "reel", "sub", "b.wav"), 1000)
	randomFile(t, filepath.Join(src, "reel", ".b.wav.partial"), 10) // a writer's temp file: ignored
	c := randomFile(t, filepath.Join(src, "notes.txt"), 10)
	var stdout, stderr bytes.Buffer
	code := run([]string{"send", filepath.Join(src, "reel"), filepath.Join(src, "notes.txt"), "--to", "PKG-1/extra", "--config", cfg}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("send exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	base := filepath.Join(s.Dir, "PKG-1", "extra")
	for p, want := range map[string][]byte{"reel/a.mxf": a, "reel/sub/b.wav": b, "notes.txt": c} {
		got, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("remote %s: %v (equal %v)", p, err, bytes.Equal(got, want))
		}
		if _, err := os.Stat(filepath.Join(base, filepath.FromSlash(p)) + ".md5"); err != nil {
			t.Errorf("checksum file of %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "reel", ".b.wav.partial")); err == nil {
		t.Error("an ignored temp file was sent")
	}
	if !strings.Contains(stdout.String(), "3 of 3 files") {
		t.Errorf("summary missing from stdout:\n%s", stdout.String())
	}

	// Sending again is refused per file (remote_exists), exit 1; --replace overwrites.
	stdout.Reset()
	if code := run([]string{"send", "--config", cfg, "--to", "PKG-1/extra", filepath.Join(src, "notes.txt")}, &stdout, &stderr); code != exitFail {
		t.Errorf("second send exit %d, want %d\n%s", code, exitFail, stdout.String())
	}
	if !strings.Contains(stdout.String(), "remote_exists") {
		t.Errorf("second send does not say remote_exists:\n%s", stdout.String())
	}
	if code := run([]string{"send", "--config", cfg, "--replace", "--to", "PKG-1/extra", filepath.Join(src, "notes.txt")}, &stdout, &stderr); code != exitOK {
		t.Errorf("send --replace exit %d\n%s", code, stdout.String())
	}
}

func TestSendNamesPolicyAndUsage(t *testing.T) {
	s := sshdtest.Start(t)
	cfg := sendConfig(t, s, "")
	src := t.TempDir()
	randomFile(t, filepath.Join(src, "bad name.mxf"), 10)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"send", "--config", cfg, filepath.Join(src, "bad name.mxf")}, &stdout, &stderr); code != exitFail {
		t.Errorf("send of a non-portable name exit %d, want %d", code, exitFail)
	}
	if !strings.Contains(stdout.String(), "invalid_name") {
		t.Errorf("output does not say invalid_name:\n%s", stdout.String())
	}
	if entries, _ := os.ReadDir(s.Dir); len(entries) != 0 {
		t.Errorf("files on the server after a held name: %v", entries)
	}
	for _, args := range [][]string{
		{"send", "--config", cfg},
		{"send", "--config", cfg, "--to", "../up", filepath.Join(src, "bad name.mxf")},
		{"send", "--config", cfg, filepath.Join(src, "missing")},
		{"send", "--bogus"},
		{"send", "--config", cfg, "--streams", "0", filepath.Join(src, "bad name.mxf")},
		{"send", "--config", cfg, "--streams", "many", filepath.Join(src, "bad name.mxf")},
	} {
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%q exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestSendStreams: --streams overrides destination.streams; a large file then goes over
// several SFTP streams (and says so), and arrives intact.
func TestSendStreams(t *testing.T) {
	s := sshdtest.Start(t)
	cfg := sendConfig(t, s, "streams = 1")
	src := t.TempDir()
	data := randomFile(t, filepath.Join(src, "movie.mxf"), 48<<20+7)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"send", "--config", cfg, "--streams", "4", filepath.Join(src, "movie.mxf")}, &stdout, &stderr); code != exitOK {
		t.Fatalf("send exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	got, err := os.ReadFile(filepath.Join(s.Dir, "movie.mxf"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the delivered file differs from the local one (%v)", err)
	}
	if !regexp.MustCompile(`sent .*movie\.mxf .*, over [2-4] streams`).MatchString(stdout.String()) {
		t.Errorf("the output does not say the file went over several streams:\n%s", stdout.String())
	}
}

// TestSendResumesAcrossRuns: a checkpoint left in state_dir's journal by an interrupted run
// (and the partial it describes) is picked up by the next `hotdrop send`, which sends only
// the rest and forgets the checkpoint once the file is delivered.
func TestSendResumesAcrossRuns(t *testing.T) {
	s := sshdtest.Start(t)
	cfg := sendConfig(t, s, "")
	src := t.TempDir()
	local := filepath.Join(src, "movie.mxf")
	data := randomFile(t, local, 5<<20)
	fi, err := os.Stat(local)
	if err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(s.Dir, "in", ".movie.mxf.partial")
	if err := os.MkdirAll(filepath.Dir(partial), 0o777); err != nil {
		t.Fatal(err)
	}
	// What an interrupted run leaves: the acknowledged prefix, and junk past it.
	junk := append(append([]byte(nil), data[:3<<20]...), bytes.Repeat([]byte{0xAA}, 1<<20)...)
	if err := os.WriteFile(partial, junk, 0o666); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "-R", s.User, filepath.Dir(partial)).Run(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.Open(filepath.Join(filepath.Dir(cfg), "state", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	ino := safefs.Inode(fi)
	ck := store.Checkpoint{Partial: partial, Offset: 3 << 20, Size: fi.Size(), ModTime: fi.ModTime(), Inode: uint64(ino)}
	if err := st.SaveCheckpoint(t.Context(), local, ck); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var stdout, stderr bytes.Buffer
	if code := run([]string{"send", "--config", cfg, "--to", "in", local}, &stdout, &stderr); code != exitOK {
		t.Fatalf("send exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "resumed at 3.0 MiB") {
		t.Errorf("send did not resume:\n%s", stdout.String())
	}
	// The rate counts what this run sent, not what the resume found on the server.
	if !strings.Contains(stdout.String(), "1 of 1 files delivered; 2.0 MiB sent in ") || !strings.Contains(stdout.String(), "; 3.0 MiB resumed, already on the server") {
		t.Errorf("send's summary does not separate sent and resumed bytes:\n%s", stdout.String())
	}
	// Again: the file is there; send says so and what to do, and counts it as not delivered.
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"send", "--config", cfg, "--to", "in", local}, &stdout, &stderr); code != exitFail ||
		!strings.Contains(stdout.String(), "remote_exists: in/movie.mxf is already on the server (perhaps from an earlier send); it was left as it is: --replace sends this one over it") ||
		!strings.Contains(stdout.String(), "0 of 1 files delivered, 1 failed;") {
		t.Errorf("send of a file already there: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	got, err := os.ReadFile(filepath.Join(s.Dir, "in", "movie.mxf"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("delivered file differs (%v)", err)
	}
	st, err = store.Open(filepath.Join(filepath.Dir(cfg), "state", "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Checkpoint(t.Context(), local); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("checkpoint after delivery: %v, want ErrNotFound", err)
	}
}
