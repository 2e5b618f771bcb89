package checks

import (
	"strings"
	"testing"
)

func md(kv ...string) Metadata {
	m := Metadata{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = Expected{Value: kv[i+1], Origin: "request SR-1"}
	}
	return m
}

func TestCompareMedia(t *testing.T) {
	av := &Media{Duration: 600.2, Streams: []Stream{
		{Kind: "video", Width: 1920, Height: 1080, FrameRate: Rate{24000, 1001}},
		{Kind: "audio", Channels: 6, Layout: "5.1(side)", SampleRate: 48000, Language: "fre"},
	}}
	wav := &Media{Duration: 10, Streams: []Stream{{Kind: "audio", Channels: 2, Layout: "stereo", SampleRate: 44100}}}
	monos := &Media{Duration: 10, Streams: []Stream{
		{Kind: "audio", Channels: 1, SampleRate: 48000}, {Kind: "audio", Channels: 1, SampleRate: 48000},
		{Kind: "audio", Channels: 1, SampleRate: 48000}, {Kind: "audio", Channels: 1, SampleRate: 48000},
		{Kind: "audio", Channels: 1, SampleRate: 48000}, {Kind: "audio", Channels: 1, SampleRate: 48000}}}
	video := BuiltinProfiles()["AV (Muxed)"]
	sound := BuiltinProfiles()["Audio Print Master"]
	tests := []struct {
		name string
		m    *Media
		md   Metadata
		p    Profile
		bad  []string // the findings that disagree, as String() starts
		good []string // properties that must agree
	}{
		{"all agree, 23.976 spelled three ways", av, md("frame_rate", "23.976", "resolution", "1920x1080", "duration", "00:10:00", "audio_config", "5.1", "language", "fr-FR"), video,
			nil, []string{FrameRate, Resolution, Duration, Channels, SampleRate, Language}},
		{"24000/1001", av, md("frame_rate", "24000/1001"), video, nil, []string{FrameRate}},
		{"23.98", av, md("frame_rate", "23.98"), video, nil, []string{FrameRate}},
		{"24 is not 23.976", av, md("frame_rate", "24"), video, []string{"frame_rate: file 23.976, request 24 (request SR-1)"}, nil},
		{"25 is not 23.976", av, md("frame_rate", "25"), video, []string{"frame_rate: file 23.976, request 25"}, nil},
		{"resolution", av, md("resolution", "3840x2160"), video, []string{"resolution: file 1920x1080, request 3840x2160"}, nil},
		{"width and height", av, md("width", "1920", "height", "1080"), video, nil, []string{Resolution}},
		{"duration off by a minute", av, md("runtime", "00:11:00"), video, []string{"duration: file 0:10:00.200, request 00:11:00 (runtime in request SR-1)"}, nil},
		{"stereo where 5.1 was asked", wav, md("audio_config", "5.1"), sound, []string{"channels: file 2.0, request 5.1", "sample_rate: file 44100, request 48000 (profile Audio Print Master default)"}, nil},
		{"44.1 kHz asked", wav, md("audio_config", "2.0", "sample_rate", "44.1kHz"), sound, nil, []string{Channels, SampleRate}},
		{"six monos make 5.1", monos, md("channels", "5.1"), sound, nil, []string{Channels}},
		{"6 channels by count", av, md("channels", "6"), video, nil, []string{Channels}},
		{"7.1 asked", av, md("audio_config", "7.1"), video, []string{"channels: file 5.1, request 7.1"}, nil},
		{"atmos is not compared", av, md("audio_config", "atmos"), video, nil, nil},
		{"German audio in a French request", av, md("language", "de-DE"), video, []string{"language: file fre, request de-DE"}, nil},
		{"no video in AV", wav, md("sample_rate", "44100"), video, []string{"video: file no video stream"}, nil},
		{"profile relaxes frame rate", av, md("frame_rate", "25"), Profile{Name: "x", Probe: true, Apply: map[string]bool{Resolution: true}}, nil, nil},
		{"profile's sample rate", wav, md(), Profile{Name: "Hi-Res", Probe: true, SampleRate: 96000}, []string{"sample_rate: file 44100, request 96000 (profile Hi-Res default)"}, nil},
		{"unreadable expectation", av, md("frame_rate", "fast"), video, []string{`frame_rate: file 23.976, request fast (unreadable`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := CompareMedia(tt.m, tt.md, tt.p)
			bad := Mismatches(fs)
			if len(bad) != len(tt.bad) {
				t.Fatalf("CompareMedia = %v; want %d mismatches %q", fs, len(tt.bad), tt.bad)
			}
			for i, f := range bad {
				if !strings.HasPrefix(f.String(), tt.bad[i]) {
					t.Errorf("mismatch %d = %q, want it to start %q", i, f, tt.bad[i])
				}
			}
			for _, prop := range tt.good {
				found := false
				for _, f := range fs {
					found = found || (f.Property == prop && f.OK)
				}
				if !found {
					t.Errorf("%s not found agreeing in %v", prop, fs)
				}
			}
		})
	}
}

func TestProperties(t *testing.T) {
	m := &Media{Duration: 1.5, Streams: []Stream{
		{Kind: "video", Codec: "h264", Width: 1280, Height: 720, FrameRate: Rate{25, 1}},
		{Kind: "audio", Codec: "aac", Channels: 6, Layout: "5.1", SampleRate: 48000, Language: "eng"},
	}}
	got := Properties(m)
	want := map[string]string{"frame_rate": "25", "resolution": "1280x720", "duration": "1.500", "channels": "5.1", "sample_rate": "48000", "language": "eng", "codecs": "h264, aac"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Properties()[%s] = %q, want %q", k, got[k], v)
		}
	}
}
