package delivery

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hotdrop/hotdrop/watcher"
)

// funcInspector is a function-field Inspector: the engine's tests decide what it finds and
// when; the real checker (ffprobe, IMF) is tested in checks and end to end in cmd/hotdrop.
type funcInspector struct {
	mu       sync.Mutex
	file     func(FileInspection) (Inspection, error)
	pkg      func(PackageInspection) (Inspection, error)
	fileSeen []FileInspection
	pkgSeen  []PackageInspection
	gate     chan struct{} // when set, every file inspection waits for a value (or the close) on it
}

func (f *funcInspector) InspectFile(ctx context.Context, in FileInspection) (Inspection, error) {
	f.mu.Lock()
	f.fileSeen = append(f.fileSeen, in)
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return Inspection{}, ctx.Err()
		}
	}
	return f.file(in)
}

func (f *funcInspector) IsPackage(st string) bool { return st == "IMF" }

// Inspects: media and timed text by extension, as the real checker decides by profile.
func (f *funcInspector) Inspects(st, name string) bool {
	return st != "IMF" && !strings.HasSuffix(name, ".exr")
}

func (f *funcInspector) InspectPackage(_ context.Context, in PackageInspection) (Inspection, error) {
	f.mu.Lock()
	f.pkgSeen = append(f.pkgSeen, in)
	f.mu.Unlock()
	return f.pkg(in)
}

func (f *funcInspector) calls() (files, pkgs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fileSeen), len(f.pkgSeen)
}

func TestContentCheckGatesAndHolds(t *testing.T) {
	// The request names no frame rate: its folder sidecar adds one (a sidecar may add metadata, not contradict the request).
	reqs := []Request{req("SR-60", 1, "source_type", "AV (Muxed)")}
	up := newFakeUploader()
	ins := &funcInspector{gate: make(chan struct{})}
	ins.file = func(in FileInspection) (Inspection, error) {
		if in.Metadata["frame_rate"].Value == "25" {
			return Inspection{Applies: true, Summary: "frame_rate 25", Properties: map[string]string{"frame_rate": "25", "resolution": "1280x720"}}, nil
		}
		return Inspection{Applies: true, Hold: ReasonMediaMismatch, Message: "a.mov does not match its metadata: frame_rate: file 25, request " +
			in.Metadata["frame_rate"].Value + " (" + in.Metadata["frame_rate"].Origin + ")"}, nil
	}
	var evMu sync.Mutex
	var delivered []Event
	tc := &touches{}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) {
		o.Matcher = newMatcher(t, reqs...)
		o.Inspector = ins
		o.Touch = tc.touch
		o.Events = eventFunc(func(ev Event) {
			if ev.Type == EventFileDelivered {
				evMu.Lock()
				delivered = append(delivered, ev)
				evMu.Unlock()
			}
		})
	}, reqs...)
	folder := filepath.Join(h.root, "Wednesday", "AV (Muxed) fr-FR [SR-60]")
	p := filepath.Join(folder, "a.mov")
	writeReal(t, p, "a movie")
	writeReal(t, filepath.Join(folder, "_metadata.toml"), "# conform\nframe_rate = \"24\"\n")
	h.drop("SR-60", "a.mov", watcher.Ready, 7)
	waitUntil(t, func() bool { n, _ := ins.calls(); return n == 1 })
	// While the check runs, the request is complete but nothing may leave.
	if v := h.views.get("SR-60"); up.count() != 0 || (len(v.Files) > 0 && v.Files[0].State == Uploading) {
		t.Fatalf("uploading before the content check answered: %+v", v.Files)
	}
	ins.gate <- struct{}{}
	v := h.waitState("SR-60", Held)
	want := "frame_rate: file 25, request 24 (sidecar _metadata.toml:2)"
	if v.Files[0].Reason != ReasonMediaMismatch || !strings.Contains(v.Files[0].Message, want) || up.count() != 0 {
		t.Fatalf("files = %+v, uploads %d; want held media_mismatch naming %q", v.Files, up.count(), want)
	}
	// The same version reported ready again is not inspected again, and stays held.
	h.drop("SR-60", "a.mov", watcher.Ready, 7)
	h.waitState("SR-60", Held)
	// A retry re-derives the hold from what is known, without a new inspection.
	if err := h.eng.Retry(t.Context(), "SR-60"); err != nil {
		t.Fatal(err)
	}
	v = h.waitState("SR-60", Held)
	if n, _ := ins.calls(); n != 1 || v.Files[0].Reason != ReasonMediaMismatch {
		t.Fatalf("inspections = %d (want 1), files %+v", n, v.Files)
	}
	// The metadata is corrected: the file is judged again and goes, with its properties.
	close(ins.gate)
	writeReal(t, filepath.Join(folder, "_metadata.toml"), "frame_rate = \"25\"\n")
	h.drop("SR-60", "_metadata.toml", watcher.Ready, 20)
	waitUntil(t, func() bool { return tc.has(p) })
	h.drop("SR-60", "a.mov", watcher.Ready, 7)
	v = h.waitState("SR-60", Delivered)
	if v.Files[0].Media["frame_rate"] != "25" {
		t.Errorf("delivered view media = %v", v.Files[0].Media)
	}
	waitUntil(t, func() bool { evMu.Lock(); defer evMu.Unlock(); return len(delivered) == 1 })
	evMu.Lock()
	md := delivered[0].File.Metadata
	evMu.Unlock()
	if md["media.frame_rate"] != "25" || md["media.resolution"] != "1280x720" || md["source_type"] != "AV (Muxed)" {
		t.Errorf("file.delivered metadata = %v", md)
	}
}

func TestContentCheckErrorHoldsThenRetries(t *testing.T) {
	reqs := []Request{req("SR-61", 1, "source_type", "Audio M&E")}
	up := newFakeUploader()
	var mu sync.Mutex
	broken := true
	ins := &funcInspector{file: func(FileInspection) (Inspection, error) {
		mu.Lock()
		defer mu.Unlock()
		if broken {
			return Inspection{}, errString("ffprobe is not available: exec: \"ffprobe\": executable file not found in $PATH")
		}
		return Inspection{Applies: true}, nil
	}}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Matcher = newMatcher(t, reqs...); o.Inspector = ins }, reqs...)
	writeReal(t, filepath.Join(h.root, "Wednesday", "Audio M&E fr-FR [SR-61]", "a.wav"), "riff")
	h.drop("SR-61", "a.wav", watcher.Ready, 4)
	v := h.waitState("SR-61", Held)
	if v.Files[0].Reason != ReasonUnreadableMedia || !strings.Contains(v.Files[0].Message, "ffprobe is not available") || up.count() != 0 {
		t.Fatalf("files = %+v; want held unreadable_media with the tool's words", v.Files)
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	if err := h.eng.Retry(t.Context(), "SR-61"); err != nil {
		t.Fatal(err)
	}
	h.waitState("SR-61", Delivered)
}

type errString string

func (e errString) Error() string { return string(e) }

func TestPackageCheckedOnceWhole(t *testing.T) {
	reqs := []Request{req("SR-62", 0, "source_type", "IMF")}
	up := newFakeUploader()
	var mu sync.Mutex
	bad := true
	ins := &funcInspector{file: func(FileInspection) (Inspection, error) { return Inspection{}, nil }}
	ins.pkg = func(in PackageInspection) (Inspection, error) {
		mu.Lock()
		defer mu.Unlock()
		if bad {
			return Inspection{Applies: true, Hold: ReasonIMFMismatch, HoldFile: "VIDEO.mxf", Message: "the IMF package disagrees with its own packing list: asset urn:uuid:v1 (VIDEO.mxf): SHA-1 is x but PKL.xml says y"}, nil
		}
		return Inspection{Applies: true, Compositions: []Composition{{ID: "urn:uuid:c1", Title: "WEDNESDAY_FR"}}}, nil
	}
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Matcher = newMatcher(t, reqs...); o.Inspector = ins; o.Manifest = true }, reqs...)
	folder := filepath.Join(h.root, "Wednesday", "IMF fr-FR [SR-62]")
	for _, n := range []string{"ASSETMAP.xml", "PKL.xml", "VIDEO.mxf"} {
		writeReal(t, filepath.Join(folder, n), n)
		h.drop("SR-62", n, watcher.Ready, int64(len(n)))
	}
	h.waitState("SR-62", Waiting) // no marker yet: not complete, not checked
	if _, n := ins.calls(); n != 0 {
		t.Fatalf("package checked %d times before it was complete", n)
	}
	writeReal(t, filepath.Join(folder, "_READY"), "")
	h.drop("SR-62", "_READY", watcher.Ready, 0)
	v := h.waitState("SR-62", Held)
	var held FileView
	for _, f := range v.Files {
		if f.State == Held {
			held = f
		}
	}
	if held.Name != "VIDEO.mxf" || held.Reason != ReasonIMFMismatch || !strings.Contains(held.Message, "asset urn:uuid:v1 (VIDEO.mxf)") || up.count() != 0 {
		t.Fatalf("held = %+v, uploads %d", held, up.count())
	}
	if _, n := ins.calls(); n != 1 {
		t.Fatalf("package checked %d times, want 1", n)
	}
	if ps := ins.pkgSeen[0]; ps.Folder != folder || len(ps.Files) != 3 {
		t.Errorf("package inspection = %+v", ps)
	}
	// The MXF is rendered again: a new version, checked again, and the package goes.
	mu.Lock()
	bad = false
	mu.Unlock()
	writeReal(t, filepath.Join(folder, "VIDEO.mxf"), "VIDEO.mxf, again")
	h.drop("SR-62", "VIDEO.mxf", watcher.Ready, 16)
	h.waitState("SR-62", Delivered)
	if _, n := ins.calls(); n != 2 || up.count() != 4 { // three files and the manifest
		t.Errorf("package checks %d (want 2), uploads %d (want 4)", n, up.count())
	}
	if got := h.eng.compositionsOfLocked("SR-62"); len(got) != 1 || got[0].Title != "WEDNESDAY_FR" {
		t.Errorf("compositions = %+v", got)
	}
}

type eventFunc func(Event)

func (f eventFunc) Emit(ev Event) { f(ev) }

// compositionsOfLocked reads a package's compositions through the loop.
func (e *Engine) compositionsOfLocked(id string) []Composition {
	var out []Composition
	_ = e.do(context.Background(), func() { out = e.compositionsOf(id) })
	return out
}
