package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
	"github.com/hotdrop/hotdrop/uploader"
)

// A redelivery whose rename landed but whose answer the link lost is finished again
// (FinishPublish) as a replace: its checksum file takes the place of the one the first
// delivery wrote, rather than leaving that one, which now disagrees with its file, beside it.
func TestFinishPublishOfARedeliveryReplacesItsChecksumFile(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	u, err := uploader.New(uploaderOptions(e.cfg.Destination, newLogger(testWriter{t})))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	a := uploaderAdapter{u: u}
	job := func(body string) delivery.Job {
		p := filepath.Join(t.TempDir(), "ep1.ttml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return delivery.Job{LocalPath: p, RemoteRel: "redo/ep1.ttml", Size: fi.Size(), ModTime: fi.ModTime()}
	}
	first, err := a.Upload(t.Context(), job("first version\n"))
	if err != nil || first.ChecksumFile == "" {
		t.Fatalf("first delivery: %+v, %v", first, err)
	}
	// The second version renamed into place; its answer lost.
	second := job("the second version\n")
	second.Replace = true
	if err := os.WriteFile(first.Remote, []byte("the second version\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := a.FinishPublish(t.Context(), second)
	if err != nil || res.ChecksumErr != nil {
		t.Fatalf("FinishPublish of the redelivery: %+v, %v; want its checksum file written", res, err)
	}
	got, err := os.ReadFile(first.ChecksumFile)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("the second version\n"))
	if want := hex.EncodeToString(sum[:]) + "  ep1.ttml\n"; string(got) != want {
		t.Errorf("checksum file beside the redelivered file says %q, want %q", got, want)
	}
}
