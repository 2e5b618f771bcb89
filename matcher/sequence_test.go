package matcher

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitFrame(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ok     bool
		key    string
		number int64
		width  int
	}{
		{"shot_010.1001.exr", true, "shot_010.#.exr", 1001, 4},
		{"shot_010_1001.exr", true, "shot_010_#.exr", 1001, 4},
		{"plates/shot_010.0001001.EXR", true, "plates/shot_010.#.exr", 1001, 7},
		{"reel1.000999.dpx", true, "reel1.#.dpx", 999, 6},
		{"a.7.png", true, "a.#.png", 7, 1},
		{"shot_010.1001.mov", false, "", 0, 0},     // not an image format
		{"shot1001.exr", false, "", 0, 0},          // no separator before the number
		{"1001.exr", false, "", 0, 0},              // nothing but the number
		{"_1001.exr", false, "", 0, 0},             // nothing before the separator
		{"shot.exr", false, "", 0, 0},              // no number
		{"shot.1234567890.exr", false, "", 0, 0},   // too long for a frame number
		{"shot.v2.exr", false, "", 0, 0},           // a version, not a frame
		{"dir.1001/shot.exr", false, "", 0, 0},     // digits in a folder name
		{".1001.exr", false, "", 0, 0},             // hidden
		{"shot_010.1001.exr.tmp", false, "", 0, 0}, // a temp file
	} {
		f, ok := SplitFrame(tc.name)
		if ok != tc.ok || f.Key != tc.key || f.Number != tc.number || f.Width != tc.width {
			t.Errorf("SplitFrame(%q) = %+v, %v; want key %q number %d width %d, %v", tc.name, f, ok, tc.key, tc.number, tc.width, tc.ok)
		}
	}
}

func TestSequenceName(t *testing.T) {
	f, _ := SplitFrame("shot_010.1001.exr")
	if got := SequenceName(f, 1001, 2400, 4); got != "shot_010.[1001-2400].exr" {
		t.Errorf("SequenceName = %q", got)
	}
	f, _ = SplitFrame("s/a_0001.dpx")
	if got := SequenceName(f, 1, 12, 4); got != "s/a_[0001-0012].dpx" {
		t.Errorf("SequenceName = %q", got)
	}
}

func TestMissingAndRanges(t *testing.T) {
	have := SortFrames([]int64{1001, 1002, 1004, 1005, 1010, 1002, 1100})
	if got := FormatRanges(Missing(have, 1001, 1010)); got != "1003, 1006-1009" {
		t.Errorf("Missing = %q", got)
	}
	if got := FormatRanges(Missing(have, 1000, 1012)); got != "1000, 1003, 1006-1009, 1011-1012" {
		t.Errorf("Missing with a range wider than the frames = %q", got)
	}
	if got := FormatRanges(Outside(append([]int64{998, 999}, have...), 1001, 1010)); got != "998-999, 1100" {
		t.Errorf("Outside = %q", got)
	}
	if n := CountRanges(Missing(have, 1001, 1010)); n != 5 {
		t.Errorf("CountRanges = %d, want 5", n)
	}
	var many []int64
	for i := int64(0); i < 100; i += 2 {
		many = append(many, i)
	}
	if got := FormatRanges(Missing(many, 0, 99)); !strings.HasSuffix(got, " and 38 more ranges") {
		t.Errorf("many ranges = %q", got)
	}
}

func TestParseFrameRange(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last int64
		ok          bool
	}{
		{"1001-2400", 1001, 2400, true},
		{" 1001 - 2400 ", 1001, 2400, true},
		{"1001", 1001, 1001, true},
		{"2400-1001", 0, 0, false},
		{"a-b", 0, 0, false},
		{"-5", 0, 0, false},
		{"0-999999999999", 0, 0, false}, // too many frames to name or count
		{"", 0, 0, false},
	} {
		first, last, err := ParseFrameRange(tc.in)
		if (err == nil) != tc.ok || first != tc.first || last != tc.last {
			t.Errorf("ParseFrameRange(%q) = %d, %d, %v", tc.in, first, last, err)
		}
	}
}

func FuzzSplitFrame(f *testing.F) {
	for _, s := range []string{"shot_010.1001.exr", "a_0.dpx", "x.999999999.tif", strings.Repeat("9", 5000) + ".exr", "\xff.1.exr", "a/b/c_.1.png"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		fr, ok := SplitFrame(name)
		if !ok {
			return
		}
		if fr.Width < 1 || fr.Width > maxFrameDigits || fr.Number < 0 {
			t.Fatalf("SplitFrame(%q) = %+v", name, fr)
		}
		if got := SequenceName(fr, fr.Number, fr.Number, fr.Width); !strings.HasPrefix(got, fr.Prefix) {
			t.Fatalf("SequenceName lost the prefix: %q", got)
		}
	})
}

// A naming rule may capture {frame}: the frame number is metadata, never a request field, so
// every frame of a File Bin sequence matches the same request.
func TestRuleCapturesFrame(t *testing.T) {
	shot := Request{ID: "SR-77", Status: "open", Fields: map[string]string{"id": "SR-77", "status": "open", "title": "Shot", "shot": "010", "source_type": "VFX"}}
	m, err := New(Options{Rules: []Rule{{Name: "frames", Pattern: "{title}_{shot}_{source_type}.{frame}.{ext}"}}, Requests: []Request{shot}, Names: "portable"})
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for _, name := range []string{"Shot_010_VFX.1001.exr", "Shot_010_VFX.1002.exr", "Shot_010_VFX.0999.exr"} {
		drop(t, bin, map[string]string{name: "frame"})
		v := m.Evaluate(Input{Path: filepath.Join(bin, name), Root: bin})
		if v.Request != "SR-77" || v.Hold != nil {
			t.Fatalf("Evaluate(%s) = request %q hold %+v, want SR-77", name, v.Request, v.Hold)
		}
		f, _ := SplitFrame(name)
		want := strings.TrimSuffix(strings.TrimPrefix(name, "Shot_010_VFX."), ".exr")
		if got := v.Metadata.Values()["frame"]; got != want || f.Key != "Shot_010_VFX.#.exr" {
			t.Errorf("%s: frame metadata %q, key %q", name, got, f.Key)
		}
	}
}
