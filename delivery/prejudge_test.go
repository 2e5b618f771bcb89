package delivery

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

// TestBatchJudgesItsFilesSideBySide: the ready files of one batch are judged by the matcher
// side by side before the batch is handled, and handling each takes the verdict made for
// it: the holds, metadata and checksums are the ones judging on the loop gives, and nothing
// is kept past the batch.
func TestBatchJudgesItsFilesSideBySide(t *testing.T) {
	root := t.TempDir()
	e, ctx := judgingEngine(t, root, req("SR-70", 100))
	folder := filepath.Join(root, "SR-70")
	var evs []watcher.Event
	for i := range 40 {
		name := fmt.Sprintf("reel.%04d.ttml", 1001+i)
		p := filepath.Join(folder, name)
		writeReal(t, p, "frame")
		switch i {
		case 3:
			writeReal(t, p+".toml", "episode = \"S01E05\"\n")
		case 5:
			writeReal(t, p+".toml", "episode = [\n") // invalid_sidecar
		case 7:
			writeReal(t, p+".md5", "0123456789abcdef0123456789abcdef  "+name+"\n")
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, watcher.Event{Kind: watcher.Ready, Path: p, Rel: "SR-70/" + name,
			Info: watcher.FileInfo{Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi), Dev: devOf(fi)}})
	}

	e.prejudge(evs)
	if len(e.prejudged) != len(evs) {
		t.Fatalf("%d verdicts made ahead for a batch of %d ready files", len(e.prejudged), len(evs))
	}
	// A verdict made ahead is what handling uses: the sidecar changed after it is not read
	// (its own event would have the file judged again).
	writeReal(t, evs[3].Path+".toml", "episode = \"S01E06\"\n")
	for _, ev := range evs {
		e.handle(ctx, ev)
	}
	if len(e.prejudged) != 0 {
		t.Errorf("%d verdicts left unused after the batch", len(e.prejudged))
	}
	for i, ev := range evs {
		fs := e.files[ev.Path]
		switch {
		case fs == nil:
			t.Fatalf("%s not taken", ev.Rel)
		case i == 5:
			if fs.rec.State != Held || fs.rec.Reason != "invalid_sidecar" {
				t.Errorf("%s: %s %s, want held invalid_sidecar", ev.Rel, fs.rec.State, fs.rec.Reason)
			}
		case fs.rec.State != Ready:
			t.Errorf("%s: %s %s %s, want ready", ev.Rel, fs.rec.State, fs.rec.Reason, fs.rec.Message)
		case i == 3 && fs.meta["episode"] != "S01E05":
			t.Errorf("%s: episode %q, want S01E05, its sidecar's when it was judged", ev.Rel, fs.meta["episode"])
		case i == 7 && len(fs.x().verify) != 1:
			t.Errorf("%s: %d checksums to verify, want its .md5", ev.Rel, len(fs.x().verify))
		case fs.meta["language"] != "fr-FR" || i != 3 && fs.meta["episode"] != "":
			t.Errorf("%s: language %q, episode %q; want the request's fr-FR and no episode", ev.Rel, fs.meta["language"], fs.meta["episode"])
		}
	}
}

// judgingEngine is an Engine on root for reqs, driven by the test's calls rather than by Run;
// the uploads it starts go to a fake uploader and end with the test.
func judgingEngine(t *testing.T, root string, reqs ...Request) (*Engine, context.Context) {
	t.Helper()
	e := New(Options{
		Root: root, Bin: "_bin", FolderTemplate: "{id}", FolderMode: 0o755, ReadyMarker: "_READY",
		Concurrency: 2, AutoDeliver: true, Names: "portable", Matcher: newMatcher(t, reqs...),
		RemotePath: func(r Request, name string) (string, error) { return r.ID + "/" + name, nil },
		Clock:      clock.NewSkipping(time.Unix(0, 0)),
	}, newFakeUploader(), newMemStore(), &viewLog{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e.runCtx = ctx
	if err := e.SetRequests(ctx, reqs); err != nil {
		t.Fatal(err)
	}
	return e, ctx
}

// TestVerdictMadeAheadIsUsedOnlyForItsInput: a verdict made ahead is not used for another
// input (the event before it moved the file to another request) nor after the matcher was
// replaced (a reload): then the file is judged again.
func TestVerdictMadeAheadIsUsedOnlyForItsInput(t *testing.T) {
	reqs := []Request{req("SR-71", 1)}
	m := newMatcher(t, reqs...)
	e := New(Options{Root: t.TempDir(), Bin: "_bin", Matcher: m}, newFakeUploader(), newMemStore(), &viewLog{})
	p := filepath.Join(e.opt.Root, "SR-71", "a.exr")
	in := matcher.Input{Path: p, Root: filepath.Dir(p), Request: "SR-71"}
	ahead := matcher.Verdict{Request: "made ahead"}

	e.prejudged = map[string]prejudged{p: {in: in, m: m, v: ahead}}
	if v := e.evaluate(in); v.Request != "made ahead" {
		t.Errorf("same input, same matcher: verdict for %q, want the one made ahead", v.Request)
	}
	other := in
	other.Request, other.Root = "", filepath.Join(e.opt.Root, "_bin")
	e.prejudged = map[string]prejudged{p: {in: in, m: m, v: ahead}}
	if v := e.evaluate(other); v.Request == "made ahead" {
		t.Error("a verdict made for the file in SR-71 was used for it in the File Bin")
	}
	e.prejudged = map[string]prejudged{p: {in: in, m: newMatcher(t, reqs...), v: ahead}}
	if v := e.evaluate(in); v.Request == "made ahead" {
		t.Error("a verdict of the matcher before a reload was used after it")
	}
	if len(e.prejudged) != 0 {
		t.Error("a verdict made ahead stays after its file was judged")
	}
}

// TestBigRequestStartsWhenItsLastFileIsJudged: a request of more than bigRequest files is
// re-derived at most every reportEvery while its frames are judged, but at once after the
// batch that judged the last of them: that is when it may start, and waiting for the next
// turn held back the first upload of 20,000 frames by a quarter of a second (issue 11).
func TestBigRequestStartsWhenItsLastFileIsJudged(t *testing.T) {
	root := t.TempDir()
	e, ctx := judgingEngine(t, root, req("SR-72", 0))
	folder := filepath.Join(root, "SR-72")
	n := bigRequest + 100
	ready := writeFrames(t, root, "SR-72", n)
	var settling []watcher.Event
	for _, ev := range ready {
		ev.Kind = watcher.Settling
		settling = append(settling, ev)
	}
	marker := filepath.Join(folder, "_READY")
	writeReal(t, marker, "")
	// As the loop does: each batch handled, then settled (refreshStale).
	batch := func(evs []watcher.Event) {
		e.handleAll(ctx, evs)
		e.settle(ctx, false)
	}
	batch(append(settling, watcher.Event{Kind: watcher.Ready, Path: marker, Rel: "SR-72/_READY"}))
	r := e.reqs["SR-72"]
	if r.state != Settling {
		t.Fatalf("with every frame settling: %s, want settling", r.state)
	}
	batch(ready[:n-100])
	if r.state != Settling {
		t.Fatalf("with 100 frames settling: %s, want settling", r.state)
	}
	batch(ready[n-100:])
	if r.state != Uploading {
		t.Fatalf("after the batch that judged the last frame: %s, want uploading at once", r.state)
	}
}

// writeFrames writes n frames into the drop folder of id below root, and returns their Ready
// events.
func writeFrames(t *testing.T, root, id string, n int) []watcher.Event {
	t.Helper()
	var evs []watcher.Event
	for i := range n {
		name := fmt.Sprintf("shot.%05d.ttml", i)
		p := filepath.Join(root, id, name)
		writeReal(t, p, "frame")
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, watcher.Event{Kind: watcher.Ready, Path: p, Rel: id + "/" + name,
			Info: watcher.FileInfo{Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi), Dev: devOf(fi)}})
	}
	return evs
}

// TestBigRequestStartsWhenItsMarkerComes: the same when the ready marker comes after every
// frame was judged, as a render farm writes it.
func TestBigRequestStartsWhenItsMarkerComes(t *testing.T) {
	root := t.TempDir()
	e, ctx := judgingEngine(t, root, req("SR-73", 0))
	folder := filepath.Join(root, "SR-73")
	ready := writeFrames(t, root, "SR-73", bigRequest+100)
	batch := func(evs ...watcher.Event) {
		e.handleAll(ctx, evs)
		e.settle(ctx, false)
	}
	batch(ready...)
	r := e.reqs["SR-73"]
	if r.state == Uploading {
		t.Fatalf("uploading before its marker")
	}
	marker := filepath.Join(folder, "_READY")
	writeReal(t, marker, "")
	batch(watcher.Event{Kind: watcher.Ready, Path: marker, Rel: "SR-73/_READY"})
	if r.state != Uploading {
		t.Fatalf("after the batch that saw its marker: %s, want uploading at once", r.state)
	}
}

// TestBigRequestIsNotReDerivedPerBatch: only the files that were settling when the request
// was last re-derived count towards the refresh it gets at once. A request with a file that
// keeps settling (a log the farm appends to) and files judged into it from the File Bin one
// batch after another was re-derived whole after every batch, as each such file counted its
// last settling one down (found by review).
func TestBigRequestIsNotReDerivedPerBatch(t *testing.T) {
	root := t.TempDir()
	e, ctx := judgingEngine(t, root, req("SR-80", 0, "episode", "S01E03"))
	own := writeFrames(t, root, "SR-80", bigRequest+100)
	writeReal(t, filepath.Join(root, "SR-80", "render.log"), "log")
	batch := func(evs ...watcher.Event) {
		e.handleAll(ctx, evs)
		e.settle(ctx, false)
	}
	event := func(rel string, k watcher.Kind) watcher.Event {
		p := filepath.Join(root, filepath.FromSlash(rel))
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return watcher.Event{Kind: k, Path: p, Rel: rel, Info: watcher.FileInfo{Size: fi.Size(), ModTime: fi.ModTime(), Inode: inodeOf(fi), Dev: devOf(fi)}}
	}
	batch(append(own, event("SR-80/render.log", watcher.Settling))...)
	r := e.reqs["SR-80"]
	const batches = 100
	refreshes, start := 0, time.Now()
	for i := range batches {
		rel := fmt.Sprintf("_bin/Wednesday_S01E03_SUB_fr-fr.%d.ttml", i)
		writeReal(t, filepath.Join(root, filepath.FromSlash(rel)), "subs")
		batch(event(rel, watcher.Settling))
		before := r.refreshedAt
		batch(event(rel, watcher.Ready))
		if i == 0 && e.files[filepath.Join(root, filepath.FromSlash(rel))].req() != "SR-80" {
			t.Fatal("the File Bin file was not matched to SR-80")
		}
		if r.refreshedAt != before {
			refreshes++
		}
	}
	if most := int(time.Since(start)/reportEvery) + 2; refreshes > most {
		t.Errorf("re-derived %d times in %d batches; the limiter allows %d", refreshes, batches, most)
	}
}
