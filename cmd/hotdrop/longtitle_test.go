package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/sshdtest"
)

// TestRequestWithoutFolderDoesNotStopTheOthers (issue 14, item 12): a request whose drop folder
// cannot be made (a 300-byte title) is flagged with why; the daemon runs the others.
func TestRequestWithoutFolderDoesNotStopTheOthers(t *testing.T) {
	srv := sshdtest.Start(t)
	e := newE2E(t, "", srv.URL(), srv.IdentityFile, srv.KnownHosts, "auto")
	long := "[[request]]\nid = \"SR-9\"\ntitle = \"" + strings.Repeat("T", 300) + "\"\npackage_id = \"PKG-9\"\nsource_type = \"Subtitle\"\n"
	if err := os.WriteFile(filepath.Join(e.dir, "requests.d", "long.toml"), []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	var eng *delivery.Engine
	e.hooks.engine = func(x *delivery.Engine) { eng = x }
	e.start()
	writeFile(t, filepath.Join(e.folder("SR-1"), "a.ttml"), 100)
	e.waitStatus("SR-1", "delivered")
	found := false
	for _, v := range eng.Requests() {
		found = found || v.ID == "SR-9"
		if v.ID == "SR-9" && (!strings.HasPrefix(v.Why, "no drop folder: ") || !strings.Contains(v.Why, "file name too long") || v.CanDeliver) {
			t.Errorf("SR-9 view: why %q, can deliver %v; want it flagged, no deliver", v.Why, v.CanDeliver)
		}
	}
	if !found {
		t.Error("SR-9 is not among the engine's requests")
	}
}
