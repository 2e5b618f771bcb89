package delivery

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

func frames(sizes map[int64]int64) []*fileState {
	var out []*fileState
	for n, size := range sizes {
		out = append(out, &fileState{name: fmt.Sprintf("shot_010.%04d.exr", n), rec: FileRecord{Size: size, State: Ready}})
	}
	return out
}

func oneSequence(t *testing.T, files []*fileState, framesGiven bool) *sequence {
	t.Helper()
	seqs := sequencesOf(files, framesGiven)
	if len(seqs) != 1 {
		t.Fatalf("%d sequences, want 1", len(seqs))
	}
	return seqs[0]
}

func TestJudgeSequence(t *testing.T) {
	whole := map[int64]int64{}
	for n := int64(1001); n <= 1010; n++ {
		whole[n] = 8 << 20
	}
	gappy := map[int64]int64{}
	for n, s := range whole {
		if n != 1003 && (n < 1006 || n > 1008) {
			gappy[n] = s
		}
	}
	for _, tc := range []struct {
		name    string
		sizes   map[int64]int64
		fields  map[string]string
		suspect bool
		code    string
		says    []string
	}{
		{"whole", whole, nil, false, "", nil},
		{"gaps named as ranges", gappy, nil, false, ReasonIncompleteSequence, []string{"shot_010.[1001-1010].exr", "missing 4 frame(s): 1003, 1006-1008"}},
		{"gaps allowed", gappy, map[string]string{"allow_gaps": "true"}, false, "", nil},
		{"the request's range names the frames missing at its ends", whole, map[string]string{"frames": "1000-1012"}, false,
			ReasonIncompleteSequence, []string{"missing 3 frame(s): 1000, 1011-1012"}},
		{"frames outside the request's range", whole, map[string]string{"frames": "1001-1008"}, false,
			ReasonIncompleteSequence, []string{"2 frame(s) outside the request's frames 1001-1008: 1009-1010"}},
		{"a range given wins over allow_gaps", gappy, map[string]string{"frames": "1001-1010", "allow_gaps": "true"}, false,
			ReasonIncompleteSequence, []string{"1003, 1006-1008"}},
		{"a bad frames field", whole, map[string]string{"frames": "ten to twenty"}, false, "invalid_metadata", []string{`frames = "ten to twenty"`}},
		{"a whole sequence is not suspect", whole, nil, true, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := judgeSequence(oneSequence(t, frames(tc.sizes), true), tc.fields, tc.suspect)
			if tc.code == "" {
				if h != nil {
					t.Fatalf("held %s: %s", h.code, h.msg)
				}
				return
			}
			if h == nil || h.code != tc.code {
				t.Fatalf("hold = %+v, want %s", h, tc.code)
			}
			for _, s := range tc.says {
				if !strings.Contains(h.msg, s) {
					t.Errorf("message %q does not say %q", h.msg, s)
				}
			}
		})
	}
}

func TestSuspectFrames(t *testing.T) {
	sizes := map[int64]int64{}
	for n := int64(1); n <= 20; n++ {
		sizes[n] = 8 << 20
	}
	sizes[5] = 12 << 10 // truncated: a node died while writing it
	sizes[9] = 0        // empty
	// A cut to black: frames 14-20 are small, and like each other.
	for n := int64(14); n <= 20; n++ {
		sizes[n] = 40 << 10
	}
	s := oneSequence(t, frames(sizes), false)
	var got []int64
	for _, fs := range suspectFrames(s.frames) {
		got = append(got, fs.frameNum)
	}
	if !slices.Equal(got, []int64{5, 9}) {
		t.Errorf("suspect frames = %v, want [5 9] (the first black frame after the cut is not suspect)", got)
	}
	h := judgeSequence(s, nil, true)
	if h == nil || h.code != ReasonSuspectFrame || len(h.only) != 2 || !strings.Contains(h.msg, "shot_010.0005.exr is 12.0 KiB") {
		t.Fatalf("hold = %+v", h)
	}
	if judgeSequence(s, nil, false) != nil {
		t.Errorf("suspect frames held although the profile does not ask for it")
	}
}

func TestSummarizeGroupsSequences(t *testing.T) {
	var files []FileView
	for n := 1001; n <= 1400; n++ {
		st := Delivered
		switch {
		case n == 1203:
			st = Held
		case n > 1388:
			st = Uploading
		}
		files = append(files, FileView{Name: fmt.Sprintf("plates/shot_010.%d.exr", n), State: st, Size: 1000, Reason: map[bool]string{true: "x"}[st == Held]})
	}
	files = append(files, FileView{Name: "notes.pdf", State: Ready, Size: 5}, FileView{Name: "poster.0001.exr", State: Ready, Size: 7})
	singles, seqs, omitted := Summarize(files, false)
	if len(seqs) != 1 || omitted != 0 {
		t.Fatalf("sequences %+v, omitted %d", seqs, omitted)
	}
	s := seqs[0]
	if s.Name != "plates/shot_010.[1001-1400].exr" || s.Frames != 400 || s.Delivered != 387 || s.Size != 400000 || s.State != Held || s.Reason != "x" {
		t.Errorf("sequence = %+v", s)
	}
	if len(singles) != 2 || singles[0].Name != "notes.pdf" || singles[1].Name != "poster.0001.exr" {
		t.Errorf("singles = %+v (one frame alone is a file)", singles)
	}
	var many []FileView
	for i := range maxListedFiles + 100 {
		many = append(many, FileView{Name: fmt.Sprintf("f%05d.mov", i), State: Delivered})
	}
	many[maxListedFiles+50].State = Failed
	singles, _, omitted = Summarize(many, false)
	if len(singles) != maxListedFiles || omitted != 100 {
		t.Fatalf("%d listed, %d omitted", len(singles), omitted)
	}
	if !slices.ContainsFunc(singles, func(f FileView) bool { return f.State == Failed }) {
		t.Errorf("the failed file was left out of the list")
	}
}

// A sequence with missing frames is held when the request is complete, naming the missing
// frames; once they are rendered it is delivered, announced as one sequence's milestones.
func TestIncompleteSequenceHeldThenDelivered(t *testing.T) {
	up := newFakeUploader()
	h, evs := withEvents(t, up, nil, req("SR-V", 0, "source_type", "VFX"))
	for _, n := range []int{1001, 1002, 1004, 1005} {
		h.drop("SR-V", fmt.Sprintf("shot.%d.exr", n), watcher.Ready, 100)
	}
	h.drop("SR-V", "_READY", watcher.Ready, 0)
	v := h.waitState("SR-V", Held)
	if len(v.Sequences) != 1 || v.Sequences[0].Reason != ReasonIncompleteSequence || !strings.Contains(v.Sequences[0].Message, "missing 1 frame(s): 1003") {
		t.Fatalf("sequences = %+v", v.Sequences)
	}
	if up.count() != 0 {
		t.Fatalf("%d frames uploaded from an incomplete sequence", up.count())
	}
	h.drop("SR-V", "shot.1003.exr", watcher.Ready, 100)
	v = h.waitState("SR-V", Delivered)
	if up.count() != 5 || len(v.Sequences) != 1 || v.Sequences[0].Delivered != 5 || v.Sequences[0].Name != "shot.[1001-1005].exr" {
		t.Fatalf("%d uploads; sequences = %+v", up.count(), v.Sequences)
	}
	var milestones []string
	eventually(func() bool {
		milestones = milestones[:0]
		for _, typ := range evs.types("SR-V") {
			if strings.HasPrefix(typ, "sequence.") {
				milestones = append(milestones, typ)
			}
		}
		return len(milestones) >= 3
	})
	if want := []string{EventSequenceHeld, EventSequenceStarted, EventSequenceDelivered}; !slices.Equal(milestones, want) {
		t.Errorf("sequence events = %v, want %v", milestones, want)
	}
	evs.mu.Lock()
	defer evs.mu.Unlock()
	for _, ev := range evs.events {
		if ev.File != nil && strings.HasPrefix(ev.File.Name, "shot.") && ev.File.Sequence != "shot.#.exr" {
			t.Errorf("%s for frame %s does not name its sequence: %q", ev.Type, ev.File.Name, ev.File.Sequence)
		}
	}
}

func TestSplitFrameKeysMatchViews(t *testing.T) {
	// The engine's grouping (sequencesOf) and the views' (Summarize) agree on what a sequence is.
	files := frames(map[int64]int64{1: 1, 2: 1, 3: 1})
	files = append(files, &fileState{name: "other.0001.dpx"})
	seqs := sequencesOf(files, false)
	var views []FileView
	for _, fs := range files {
		views = append(views, FileView{Name: fs.name})
	}
	_, vs, _ := Summarize(views, false)
	if len(seqs) != len(vs) || len(seqs) != 1 || vs[0].Name != matcher.SequenceName(seqs[0].frame, 1, 3, 4) {
		t.Errorf("engine %d sequences, views %+v", len(seqs), vs)
	}
}

// A sequence dropped in the File Bin goes to one request whole: frames matched to different
// requests are all held, naming how they split, and go once they agree.
func TestBinSequenceNeverSplitAcrossRequests(t *testing.T) {
	reqs := []Request{req("SR-A", 0, "source_type", "VFX"), req("SR-B", 0, "source_type", "VFX")}
	up := newFakeUploader()
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Matcher = newMatcher(t, reqs...) }, reqs...)
	bin := filepath.Join(h.root, "_bin")
	writeReal(t, filepath.Join(bin, "_metadata.toml"), "request = \"SR-A\"\n")
	writeReal(t, filepath.Join(bin, "shot.1003.exr.toml"), "request = \"SR-B\"\n")
	for n := 1001; n <= 1004; n++ {
		name := fmt.Sprintf("shot.%d.exr", n)
		writeReal(t, filepath.Join(bin, name), "frame")
		h.drop("", name, watcher.Ready, 5)
	}
	for _, id := range []string{"SR-A", "SR-B"} {
		if err := h.eng.Deliver(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	v := h.waitState("SR-A", Held)
	msg := v.Sequences[0].Message
	if v.Sequences[0].Reason != "ambiguous_match" || !strings.Contains(msg, "SR-A (3 frames), SR-B (1 frames)") {
		t.Fatalf("SR-A's sequence = %+v", v.Sequences[0])
	}
	if w := h.waitState("SR-B", Held); w.Files[0].Reason != "ambiguous_match" {
		t.Fatalf("SR-B's frame = %+v", w.Files[0])
	}
	if up.count() != 0 {
		t.Fatalf("%d frames sent from a split sequence", up.count())
	}
	// The stray pin goes: every frame goes to SR-A, whole.
	if err := os.Remove(filepath.Join(bin, "shot.1003.exr.toml")); err != nil {
		t.Fatal(err)
	}
	h.drop("", "shot.1003.exr", watcher.Ready, 5) // SR-A was released: it goes once whole
	h.waitState("SR-A", Delivered)
	if up.count() != 4 {
		t.Errorf("%d frames sent, want the 4", up.count())
	}
}

// A File Bin sequence still being rendered is not split: frames still settling have no request
// yet, and are not counted as matched to none.
func TestBinSequenceStillRendering(t *testing.T) {
	reqs := []Request{req("SR-A", 0, "source_type", "VFX")}
	up := newFakeUploader()
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Matcher = newMatcher(t, reqs...) }, reqs...)
	bin := filepath.Join(h.root, "_bin")
	writeReal(t, filepath.Join(bin, "_metadata.toml"), "request = \"SR-A\"\n")
	for n := 1001; n <= 1004; n++ {
		name := fmt.Sprintf("shot.%d.exr", n)
		writeReal(t, filepath.Join(bin, name), "frame")
		kind := watcher.Ready
		if n == 1004 {
			kind = watcher.Settling // the render node is still writing it
		}
		h.drop("", name, kind, 5)
	}
	if err := h.eng.Deliver(t.Context(), "SR-A"); err != nil {
		t.Fatal(err)
	}
	for _, v := range h.eng.Requests() {
		if v.ID == "SR-A" && v.State == Held {
			t.Fatalf("SR-A held while a frame still settles: %+v %+v", v.Sequences, v.Files)
		}
	}
	h.drop("", "shot.1004.exr", watcher.Ready, 5)
	h.waitState("SR-A", Delivered)
	if up.count() != 4 {
		t.Errorf("%d frames sent, want 4", up.count())
	}
}

// TestSequenceLogsItsMilestonesNotEachFrame: the log tells of a shot's frames as a sequence
// (started, delivered) at INFO; each frame's "delivered" line is DEBUG, while a file that is
// not a frame keeps its INFO line.
func TestSequenceLogsItsMilestonesNotEachFrame(t *testing.T) {
	var mu sync.Mutex
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	up := newFakeUploader()
	h := newHarnessWith(t, t.TempDir(), newMemStore(), up, func(o *Options) { o.Logger = logger }, req("SR-48", 4))
	for i := range 3 {
		h.drop("SR-48", fmt.Sprintf("shot_010.%04d.exr", 1001+i), watcher.Ready, 4)
	}
	h.drop("SR-48", "notes.txt", watcher.Ready, 4)
	h.waitState("SR-48", Delivered)
	h.stop()

	mu.Lock()
	defer mu.Unlock()
	out := logs.String()
	if n := strings.Count(out, "msg=delivered "); n != 1 || !strings.Contains(out, "notes.txt") {
		t.Errorf("INFO delivered lines = %d, want 1 (notes.txt, not the frames):\n%s", n, out)
	}
	for _, want := range []string{`msg="sequence started" request=SR-48 sequence=shot_010.[1001-1003].exr`,
		`msg="sequence delivered" request=SR-48 sequence=shot_010.[1001-1003].exr frames=3 delivered=3 bytes=12`} {
		if strings.Count(out, want) != 1 {
			t.Errorf("log has not once %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
