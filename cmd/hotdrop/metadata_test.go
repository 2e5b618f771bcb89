package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestSidecarMetadataReachesTheStudio (issue 14, item 11): what a folder's _metadata.toml
// says about a file is in its file.delivered event, its manifest entry and its status file.
func TestSidecarMetadataReachesTheStudio(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	var mu sync.Mutex
	var delivered map[string]string
	e.hooks.events = func(ev delivery.Event) {
		if ev.Type == delivery.EventFileDelivered && ev.File != nil {
			mu.Lock()
			delivered = ev.File.Metadata
			mu.Unlock()
		}
	}
	e.start()
	if err := os.WriteFile(filepath.Join(e.folder("SR-1"), "_metadata.toml"), []byte("frame_rate = \"25\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(e.folder("SR-1"), "ep1.ttml"), 100)
	s := e.waitStatus("SR-1", "delivered")
	if got := s.Files[0].Metadata; got["frame_rate"] != "25" || got["title"] != "Wednesday" {
		t.Errorf("status file metadata = %v, want frame_rate 25 beside the request's fields", got)
	}
	mu.Lock()
	if delivered["frame_rate"] != "25" {
		t.Errorf("file.delivered metadata = %v, want frame_rate 25", delivered)
	}
	mu.Unlock()
	manifest := filepath.Join(srv.Dir, "PKG-1", "Subtitle", "SR-1.hotdrop.json")
	var m delivery.Manifest
	waitFor(t, 10*time.Second, "the manifest", func() bool {
		data, err := os.ReadFile(manifest)
		return err == nil && json.Unmarshal(data, &m) == nil
	})
	if len(m.Files) != 1 || m.Files[0].Metadata["frame_rate"] != "25" {
		t.Errorf("manifest files = %+v, want ep1.ttml with frame_rate 25", m.Files)
	}
}
