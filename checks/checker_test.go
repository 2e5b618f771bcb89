package checks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProbeRealMedia(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	mov := video(t, dir, "a.mov", "25", "1280x720", 6, 48000, "fra")
	wav := audio(t, dir, "b.wav", 2, 44100)
	for _, tt := range []struct {
		path string
		want map[string]string
	}{
		{mov, map[string]string{"frame_rate": "25", "resolution": "1280x720", "channels": "5.1", "sample_rate": "48000", "language": "fra"}},
		{wav, map[string]string{"channels": "2.0", "sample_rate": "44100"}},
	} {
		f, err := os.Open(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := Prober{}.Probe(context.Background(), f)
		f.Close()
		if err != nil {
			t.Fatalf("Probe(%s): %v", tt.path, err)
		}
		got := Properties(m)
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("Probe(%s) %s = %q, want %q (all: %v)", filepath.Base(tt.path), k, got[k], v, got)
			}
		}
		if m.Duration < 0.9 || m.Duration > 1.2 {
			t.Errorf("Probe(%s) duration = %v, want about 1s", filepath.Base(tt.path), m.Duration)
		}
	}
}

func TestProbeRefusesWhatIsNotMedia(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.wav")
	audio(t, dir, "secret.wav", 2, 48000)
	files := map[string]string{
		"garbage.mov": strings.Repeat("not a movie ", 1000),
		"empty.wav":   "",
		// A playlist would make ffprobe open other files: the format is not allowed.
		"list.mov": "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n" + secret + "\n#EXT-X-ENDLIST\n",
		"cat.mov":  "ffconcat version 1.0\nfile '" + secret + "'\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(p)
		m, err := Prober{}.Probe(context.Background(), f)
		f.Close()
		if !errors.Is(err, ErrUnreadable) {
			t.Errorf("Probe(%s) = %+v, %v; want ErrUnreadable", name, m, err)
		}
	}
}

func TestProbeMissingTool(t *testing.T) {
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Prober{Path: filepath.Join(t.TempDir(), "no-ffprobe")}.Probe(context.Background(), f)
	if !errors.Is(err, ErrNoTool) || !strings.Contains(err.Error(), "apt-get install ffmpeg") {
		t.Errorf("Probe with no ffprobe = %v; want ErrNoTool saying how to install it", err)
	}
}

func TestCheckFile(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	mov := video(t, dir, "conform.mov", "25", "1280x720", 2, 48000, "ger")
	m51 := video(t, dir, "mix51.mov", "24000/1001", "320x180", 6, 48000, "fra")
	wav44 := audio(t, dir, "stems.wav", 2, 44100)
	garbage := filepath.Join(dir, "broken.mov")
	os.WriteFile(garbage, []byte("this is no movie"), 0o644)
	origin := func(v, o string) Expected { return Expected{Value: v, Origin: o} }
	tests := []struct {
		name, path, st string
		md             Metadata
		hold           string
		msg            []string
	}{
		{"the 25 fps conform sent for a 24 fps request", mov, "AV (Muxed)",
			Metadata{"frame_rate": origin("24", "sidecar _metadata.toml:2"), "language": origin("fr-FR", "request SR-1")}, HoldMediaMismatch,
			[]string{"conform.mov does not match its metadata", "frame_rate: file 25, request 24 (sidecar _metadata.toml:2)", "language: file ger, request fr-FR (request SR-1)"}},
		{"a stereo mix where 5.1 was asked", mov, "AV (Muxed)", Metadata{"audio_config": origin("5.1", "request SR-2")}, HoldMediaMismatch,
			[]string{"channels: file 2.0, request 5.1 (audio_config in request SR-2)"}},
		{"23.976 5.1 French agrees", m51, "Secondary AV (Muxed)",
			Metadata{"frame_rate": origin("23.976", "request SR-3"), "audio_config": origin("5.1", "request SR-3"), "language": origin("fr-FR", "request SR-3"), "resolution": origin("320x180", "request SR-3")}, "", nil},
		{"44.1 kHz stems under a 48 kHz default", wav44, "Audio M&E", Metadata{"audio_config": origin("2.0", "request SR-4")}, HoldMediaMismatch,
			[]string{"sample_rate: file 44100, request 48000 (profile Audio M&E default)"}},
		{"44.1 kHz asked for", wav44, "Audio M&E", Metadata{"sample_rate": origin("44100", "request SR-4")}, "", nil},
		{"not media at all", garbage, "AV (Muxed)", Metadata{}, HoldUnreadableMedia, []string{"broken.mov cannot be read as media (ffprobe)"}},
	}
	c := New(Options{Probe: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.CheckFile(context.Background(), FileInput{Path: tt.path, Name: filepath.Base(tt.path), Open: opener(tt.path), SourceType: tt.st, Metadata: tt.md})
			if err != nil {
				t.Fatal(err)
			}
			if res.Hold != tt.hold {
				t.Fatalf("hold = %q (%s), want %q", res.Hold, res.Message, tt.hold)
			}
			for _, s := range tt.msg {
				if !strings.Contains(res.Message, s) {
					t.Errorf("message %q lacks %q", res.Message, s)
				}
			}
			if tt.hold == "" && (res.Kind != "media" || res.Properties["sample_rate"] == "" || !strings.Contains(res.Summary, "agrees on")) {
				t.Errorf("passing result = %+v", res)
			}
		})
	}
	// Once per version: with ffprobe gone, what it said is still known; a new version is not.
	c.opt.Prober.Path = filepath.Join(dir, "no-ffprobe")
	in := FileInput{Path: mov, Name: "conform.mov", Open: opener(mov), SourceType: "AV (Muxed)", Metadata: Metadata{"frame_rate": origin("25", "request SR-1")}}
	if res, err := c.CheckFile(context.Background(), in); err != nil || res.Hold != "" {
		t.Errorf("cached check = %+v, %v; want a pass from the cache", res, err)
	}
	video(t, dir, "conform.mov", "24", "1280x720", 2, 48000, "")
	if _, err := c.CheckFile(context.Background(), in); !errors.Is(err, ErrNoTool) {
		t.Errorf("check of a new version without ffprobe = %v, want ErrNoTool", err)
	}
}

func TestCheckFileNotApplicable(t *testing.T) {
	c := New(Options{Probe: true})
	for _, in := range []FileInput{
		{Name: "script.pdf", SourceType: "Final Script"},
		{Name: "notes.pdf", SourceType: "Non-IMF delivery"},
		{Name: "x.mov", SourceType: "Unknown Type"},
	} {
		res, err := c.CheckFile(context.Background(), in)
		if err != nil || res.Kind != "" || res.Hold != "" {
			t.Errorf("CheckFile(%s, %s) = %+v, %v; want nothing checked", in.Name, in.SourceType, res, err)
		}
	}
	off := New(Options{Probe: false})
	if res, _ := off.CheckFile(context.Background(), FileInput{Name: "x.mov", SourceType: "AV (Muxed)"}); res.Kind != "" {
		t.Errorf("probe = false still checked: %+v", res)
	}
	if off.NeedsProbe() || !New(Options{Probe: true}).NeedsProbe() {
		t.Error("NeedsProbe does not follow probe")
	}
}

func TestInspects(t *testing.T) {
	c := New(Options{Probe: true})
	for _, tt := range []struct {
		st, name string
		want     bool
	}{
		{"AV (Muxed)", "a.mov", true}, {"Audio M&E", "L.wav", true}, {"Subtitle", "ep1.ttml", true}, {"SDH/CC", "ep1.scc", true},
		{"Non-IMF delivery", "notes.pdf", false}, {"Non-IMF delivery", "conform.mxf", true}, {"Final Script", "s.pdf", false},
		{"AV (Muxed)", "shot.1001.exr", false}, {"IMF", "VIDEO.mxf", false}, {"Unknown", "a.mov", false},
	} {
		if got := c.Inspects(tt.st, tt.name); got != tt.want {
			t.Errorf("Inspects(%q, %q) = %v, want %v", tt.st, tt.name, got, tt.want)
		}
	}
	if New(Options{Probe: false}).Inspects("AV (Muxed)", "a.mov") {
		t.Error("probe = false still inspects")
	}
}

// fakeTool writes an executable script standing in for ffprobe, in a folder anyone may enter
// (the child runs as nobody when the test runs as root).
func fakeTool(t *testing.T, body string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hotdrop-tool-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "ffprobe")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProbeBounds(t *testing.T) {
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hang := fakeTool(t, "exec sleep 30")
	start := time.Now()
	_, err = Prober{Path: hang, Timeout: 300 * time.Millisecond}.Probe(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "did not finish within 300ms") || errors.Is(err, ErrUnreadable) || time.Since(start) > 10*time.Second {
		t.Errorf("a hanging ffprobe: %v after %v; want a timeout error, soon, not unreadable media", err, time.Since(start))
	}
	chatty := fakeTool(t, "exec yes '{\"streams\": []}'")
	_, err = Prober{Path: chatty, MaxOutput: 1 << 20}.Probe(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Errorf("an endless ffprobe: %v; want the output bound", err)
	}
}

func TestProbeRunsUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root drops privileges for ffprobe")
	}
	out, err := os.CreateTemp("", "hotdrop-uid-")
	if err != nil {
		t.Fatal(err)
	}
	out.Close()
	os.Chmod(out.Name(), 0o666)
	defer os.Remove(out.Name())
	tool := fakeTool(t, "id -u > "+out.Name()+"; ls /proc/self/fd/3 >/dev/null && echo '{\"format\": {}, \"streams\": [{\"codec_type\": \"audio\", \"channels\": 2}]}'")
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := (Prober{Path: tool}).Probe(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	uid, _ := os.ReadFile(out.Name())
	if strings.TrimSpace(string(uid)) == "0" || len(uid) == 0 {
		t.Errorf("ffprobe ran as uid %q; want an unprivileged one", uid)
	}
}

// FuzzParseFFprobe: ffprobe echoes what a file's tags say; no output makes the decoder panic.
func FuzzParseFFprobe(f *testing.F) {
	f.Add([]byte(`{"streams":[{"codec_type":"video","width":1920,"height":1080,"avg_frame_rate":"24000/1001"},{"codec_type":"audio","sample_rate":"48000","channels":6,"channel_layout":"5.1(side)","tags":{"language":"fra"}}],"format":{"duration":"600.0"}}`))
	f.Add([]byte(`{"streams":[{"codec_type":"video","avg_frame_rate":"0/0","r_frame_rate":"1/0"}]}`))
	f.Add([]byte(`{"streams":[` + strings.Repeat(`{"tags":{"language":"`+strings.Repeat("x", 100)+`"}},`, 1000) + `{}]}`))
	f.Add([]byte(strings.Repeat("[", 100)))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseFFprobe(data)
		if err == nil {
			Properties(m)
			CompareMedia(m, Metadata{"frame_rate": {Value: "24"}, "channels": {Value: "5.1"}, "duration": {Value: "10"}, "language": {Value: "fr"}}, BuiltinProfiles()["AV (Muxed)"])
		}
	})
}
