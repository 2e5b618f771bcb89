package checks

import (
	"errors"
	"strings"
	"testing"
)

const ttml = `<?xml version="1.0" encoding="UTF-8"?>
<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"
    ttp:frameRate="30" ttp:frameRateMultiplier="1000 1001" xml:lang="fr-FR">
  <body><div><p begin="00:00:01:00" end="00:00:02:00">Bonjour</p><p begin="00:00:03:00" end="00:00:04:00">Salut</p></div></body>
</tt>`

func TestParseTTML(t *testing.T) {
	tt, err := ParseTimedText("ttml", strings.NewReader(ttml))
	if err != nil {
		t.Fatal(err)
	}
	if tt.FrameRate.String() != "29.97" || tt.Lang != "fr-FR" || tt.Cues != 2 {
		t.Errorf("ParseTTML = %+v; want 29.97, fr-FR, 2 cues", tt)
	}
	// Another prefix for the parameter namespace, no multiplier, language on the body.
	other := `<tt xmlns="http://www.w3.org/ns/ttml" xmlns:p="http://www.w3.org/ns/ttml#parameter" p:frameRate="25"><body xml:lang="de"><p>x</p></body></tt>`
	tt, err = ParseTimedText("dfxp", strings.NewReader(other))
	if err != nil || tt.FrameRate.String() != "25" || tt.Lang != "de" {
		t.Errorf("ParseTTML(other) = %+v, %v; want 25, de", tt, err)
	}
	latin := "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<tt xml:lang=\"fr\"><body><p>\xe9t\xe9</p></body></tt>"
	if tt, err := ParseTimedText("ttml", strings.NewReader(latin)); err != nil || tt.Lang != "fr" {
		t.Errorf("ParseTTML(latin-1) = %+v, %v", tt, err)
	}
}

func TestParseTTMLRefuses(t *testing.T) {
	for name, doc := range map[string]string{
		"not well-formed": `<tt><body><p>unclosed</body></tt>`,
		"truncated":       `<tt><body><p>x</p>`,
		"deep":            "<tt>" + strings.Repeat("<span>", 300) + strings.Repeat("</span>", 300) + "</tt>",
		"utf-16":          "\xff\xfe<\x00t\x00t\x00",
		"odd encoding":    `<?xml version="1.0" encoding="EBCDIC-US"?><tt/>`,
		"bad multiplier":  `<tt xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:frameRate="30" ttp:frameRateMultiplier="1000"/>`,
		"bad rate":        `<tt xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:frameRate="-3"/>`,
		"binary":          "\x00\x01\x02garbage",
		"empty":           "",
	} {
		if tt, err := ParseTimedText("ttml", strings.NewReader(doc)); !errors.Is(err, ErrUnreadable) {
			t.Errorf("%s: ParseTimedText = %+v, %v; want ErrUnreadable", name, tt, err)
		}
	}
	if _, err := ParseTimedText("xml", strings.NewReader(`<CompositionPlaylist/>`)); !errors.Is(err, errNotTTML) {
		t.Errorf("an XML that is not TTML: %v, want errNotTTML", err)
	}
}

func TestCueTiming(t *testing.T) {
	srt := "1\n00:00:01,000 --> 00:00:02,000\nOne\n\n2\n00:00:05,000 --> 00:00:04,000\nTwo\n\n3\n00:00:03,000 --> 00:00:03,500\nThree\n"
	tt, err := ParseTimedText("srt", strings.NewReader(srt))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"cue 2 (line 6) ends at 0:00:04.000, before it starts at 0:00:05.000", "cue 3 (line 10) starts at 0:00:03.000, before cue 2 (line 6) at 0:00:05.000"}
	if tt.Cues != 3 || strings.Join(tt.Problems, "|") != strings.Join(want, "|") {
		t.Errorf("SRT problems = %q, want %q", tt.Problems, want)
	}
	vtt := "WEBVTT\n\nNOTE a comment --> not a cue? it is: skipped only when not a time\n\n00:01.000 --> 00:02.000 align:start\nHello\n\n01:00:03.000 --> 01:00:04.000\nLater\n"
	tt, err = ParseTimedText("vtt", strings.NewReader(vtt))
	if err == nil {
		// The NOTE line holds an arrow but no times: one problem, then two good cues.
		if tt.Cues != 3 || len(tt.Problems) != 1 {
			t.Errorf("VTT = %+v", tt)
		}
	} else {
		t.Fatal(err)
	}
	if _, err := ParseTimedText("vtt", strings.NewReader("1\n00:01.000 --> 00:02.000\n")); !errors.Is(err, ErrUnreadable) {
		t.Errorf("WebVTT without its header: %v", err)
	}
	if _, err := ParseTimedText("srt", strings.NewReader("just text\n")); !errors.Is(err, ErrUnreadable) {
		t.Errorf("SRT without cues: %v", err)
	}
	if _, err := ParseTimedText("srt", strings.NewReader("1\n-00:00:01,000 --> 00:00:02,000\n")); err != nil {
		t.Fatal(err)
	} else if tt, _ := ParseTimedText("srt", strings.NewReader("1\n-00:00:01,000 --> 00:00:02,000\n")); len(tt.Problems) != 1 {
		t.Errorf("a negative time is no problem: %+v", tt)
	}
}

func TestSCC(t *testing.T) {
	good := "Scenarist_SCC V1.0\n\n00:00:00:22\t9420 9420 94ae 94ae\n"
	if tt, err := ParseTimedText("scc", strings.NewReader(good)); err != nil || tt.Cues != 1 {
		t.Errorf("SCC = %+v, %v", tt, err)
	}
	if _, err := ParseTimedText("scc", strings.NewReader("00:00:00:22\t9420\n")); !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "Scenarist_SCC V1.0") {
		t.Errorf("SCC without header: %v", err)
	}
}

func TestCompareTimedText(t *testing.T) {
	tt, _ := ParseTimedText("ttml", strings.NewReader(ttml))
	p := BuiltinProfiles()["Subtitle"]
	bad := Mismatches(CompareTimedText(tt, md("frame_rate", "25", "language", "de-DE"), p))
	if len(bad) != 2 || bad[0].String() != "frame_rate: file 29.97, request 25 (request SR-1)" || bad[1].String() != "language: file fr-FR, request de-DE (request SR-1)" {
		t.Errorf("CompareTimedText = %v", bad)
	}
	if bad := Mismatches(CompareTimedText(tt, md("frame_rate", "29.97", "language", "fr-FR"), p)); len(bad) != 0 {
		t.Errorf("agreeing TTML: %v", bad)
	}
	srt, _ := ParseTimedText("srt", strings.NewReader("1\n00:00:05,000 --> 00:00:04,000\nx\n"))
	if bad := Mismatches(CompareTimedText(srt, md(), p)); len(bad) != 1 || !strings.HasPrefix(bad[0].String(), "timing: cue 1 (line 2) ends") {
		t.Errorf("SRT timing: %v", bad)
	}
}

// FuzzTimedText: no input makes a timed-text reader panic, hang or accept a document it
// then describes inconsistently.
func FuzzTimedText(f *testing.F) {
	seeds := []string{ttml, "1\n00:00:01,000 --> 00:00:02,000\nx\n", "WEBVTT\n\n00:01.000 --> 00:02.000\n", "Scenarist_SCC V1.0\n",
		"<tt>" + strings.Repeat("<p>", 5000), strings.Repeat("00:00:01,000 --> 00:00:00,000\n", 10000),
		"<?xml version=\"1.0\" encoding=\"UTF-16\"?><tt/>", "<tt xmlns:ttp=\"http://www.w3.org/ns/ttml#parameter\" ttp:frameRate=\"99999999999999999999\"/>",
		"\xef\xbb\xbf<tt xml:lang=\"\xff\"/>", "<!DOCTYPE tt [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]><tt>&b;</tt>"}
	for _, s := range seeds {
		for _, format := range []string{"ttml", "srt", "vtt", "scc"} {
			f.Add(format, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, format string, data []byte) {
		tt, err := ParseTimedText(format, strings.NewReader(string(data)))
		if err == nil && tt == nil {
			t.Fatal("no result and no error")
		}
		if err == nil && tt.FrameRate.Den < 0 {
			t.Fatalf("negative rate %v", tt.FrameRate)
		}
	})
}
