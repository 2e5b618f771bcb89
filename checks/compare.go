package checks

import (
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
)

// The properties compared, by the metadata field that states them.
const (
	FrameRate  = "frame_rate"
	Resolution = "resolution"
	Duration   = "duration"
	Channels   = "channels"
	SampleRate = "sample_rate"
	Language   = "language"
	Timing     = "timing" // timed text: cue order and lengths, SCC header
)

// AllProperties lists every property a profile can apply, in report order.
var AllProperties = []string{FrameRate, Resolution, Duration, Channels, SampleRate, Language, Timing}

// Expected is one metadata value and where it came from, for people ("sidecar
// _metadata.toml:2", "request SR-1042").
type Expected struct {
	Value  string
	Origin string
}

// Metadata is a file's merged metadata, by field.
type Metadata map[string]Expected

// Profile says which checks apply to a source type and how strict they are.
type Profile struct {
	Name      string
	Probe     bool // media files are probed with ffprobe
	TimedText bool // timed-text files are parsed
	IMF       bool // the request's folder is an IMF package
	// Video: the file must hold a picture (muxed AV, proxies); audio-only types have none.
	Video bool
	// Apply lists the properties compared; nil = all.
	Apply map[string]bool
	// SampleRate is the sample rate expected when the metadata gives none (0: 48000).
	SampleRate int
	// Channels is the channel configuration expected when the metadata gives none ("": any).
	Channels string
	// DurationTolerance is how far the running time may be from duration/runtime (0: 1s).
	DurationTolerance time.Duration
}

// Applies says whether property prop is compared under p.
func (p Profile) Applies(prop string) bool { return p.Apply == nil || p.Apply[prop] }

// Finding is one property compared: what the file holds against what was asked for.
type Finding struct {
	Property string
	File     string // as found in the file
	Want     string // as the metadata (or profile) gives it
	Origin   string // where Want came from
	OK       bool
	// Note, when set, is the whole sentence (a cue out of order has no single value to ask for).
	Note string
}

// String reads "frame_rate: file 25, request 24 (sidecar _metadata.toml:2)".
func (f Finding) String() string {
	if f.Note != "" {
		return f.Property + ": " + f.Note
	}
	s := fmt.Sprintf("%s: file %s, request %s", f.Property, f.File, f.Want)
	if f.Origin != "" {
		s += " (" + f.Origin + ")"
	}
	return s
}

// Mismatches returns the findings that disagree.
func Mismatches(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if !f.OK {
			out = append(out, f)
		}
	}
	return out
}

// BuiltinProfiles are the checks SPEC.md's built-in source types get, by profile name.
func BuiltinProfiles() map[string]Profile {
	video := Profile{Probe: true, Video: true}
	audio := Profile{Probe: true}
	tt := Profile{TimedText: true}
	out := map[string]Profile{
		"AV (Muxed)": video, "Secondary AV (Muxed)": video, "Production Locked Proxy": video,
		"Non-IMF delivery":  {Probe: true, TimedText: true},
		"Audio Description": audio, "Audio M&E": audio, "Audio Print Master": audio, "Secondary Audio": audio,
		"Subtitle": tt, "Forced Sub": tt, "SDH/CC": tt,
		"IMF": {IMF: true},
	}
	for n, p := range out {
		p.Name = n
		out[n] = p
	}
	return out
}

// mediaExt are the extensions probed; timedTextExt are parsed as timed text.
var (
	mediaExt     = map[string]bool{"mov": true, "mp4": true, "m4v": true, "mxf": true, "wav": true, "bwf": true, "aif": true, "aiff": true, "ac3": true, "ec3": true, "eac3": true, "mkv": true, "ts": true, "m4a": true, "flac": true, "mp3": true}
	timedTextExt = map[string]bool{"ttml": true, "dfxp": true, "xml": true, "srt": true, "vtt": true, "scc": true}
)

// Kind says how a file of this name is checked under p: "media", "timed_text" or "" (not).
func (p Profile) Kind(name string) string {
	ext := strings.ToLower(strings.TrimPrefix(path.Ext(name), "."))
	switch {
	case p.Probe && mediaExt[ext]:
		return "media"
	case p.TimedText && timedTextExt[ext]:
		return "timed_text"
	}
	return ""
}

// CompareMedia compares what ffprobe found with the metadata, under profile p. Only the
// properties p applies and the metadata (or p) gives a value for are compared; a value the
// metadata gives that cannot be read is a finding too (it cannot be shown to agree).
func CompareMedia(m *Media, md Metadata, p Profile) []Finding {
	var out []Finding
	var video, audio []Stream
	for _, s := range m.Streams {
		switch s.Kind {
		case "video":
			video = append(video, s)
		case "audio":
			audio = append(audio, s)
		}
	}
	if p.Video && len(video) == 0 {
		out = append(out, Finding{Property: "video", File: "no video stream", Want: "a picture", Origin: "profile " + p.Name})
	}
	if e, ok := md[FrameRate]; ok && p.Applies(FrameRate) && len(video) > 0 {
		out = append(out, compareRate(video, e))
	}
	if p.Applies(Resolution) && len(video) > 0 {
		if f, ok := compareResolution(video, md); ok {
			out = append(out, f)
		}
	}
	if e, ok := firstOf(md, Duration, "runtime"); ok && p.Applies(Duration) {
		out = append(out, compareDuration(m.Duration, e, md, p))
	}
	if p.Applies(Channels) {
		e, ok := firstOf(md, Channels, "audio_config")
		if !ok && p.Channels != "" {
			e, ok = Expected{p.Channels, "profile " + p.Name}, true
		}
		if ok {
			if f, ok := compareChannels(audio, e); ok {
				out = append(out, f)
			}
		}
	}
	if p.Applies(SampleRate) && len(audio) > 0 {
		e, ok := md[SampleRate]
		if !ok {
			sr := p.SampleRate
			if sr == 0 {
				sr = 48000
			}
			e = Expected{strconv.Itoa(sr), "profile " + p.Name + " default"}
		}
		out = append(out, compareSampleRate(audio, e))
	}
	if e, ok := md[Language]; ok && p.Applies(Language) {
		if f, ok := compareLanguage(audio, e); ok {
			out = append(out, f)
		}
	}
	return out
}

func firstOf(md Metadata, keys ...string) (Expected, bool) {
	for _, k := range keys {
		if e, ok := md[k]; ok && strings.TrimSpace(e.Value) != "" {
			if k != keys[0] {
				e.Origin = k + " in " + e.Origin
			}
			return e, true
		}
	}
	return Expected{}, false
}

func compareRate(video []Stream, e Expected) Finding {
	f := Finding{Property: FrameRate, Want: e.Value, Origin: e.Origin, File: video[0].FrameRate.String()}
	want, err := ParseRate(e.Value)
	if err != nil {
		f.Want = e.Value + " (unreadable: " + err.Error() + ")"
		return f
	}
	f.OK = true
	for _, s := range video {
		if !s.FrameRate.Equal(want) {
			f.OK, f.File = false, s.FrameRate.String()
		}
	}
	return f
}

func compareResolution(video []Stream, md Metadata) (Finding, bool) {
	file := fmt.Sprintf("%dx%d", video[0].Width, video[0].Height)
	if e, ok := md[Resolution]; ok {
		f := Finding{Property: Resolution, File: file, Want: e.Value, Origin: e.Origin}
		w, h, err := ParseResolution(e.Value)
		if err != nil {
			f.Want += " (unreadable: " + err.Error() + ")"
			return f, true
		}
		f.OK = video[0].Width == w && video[0].Height == h
		return f, true
	}
	ew, okw := md["width"]
	eh, okh := md["height"]
	if !okw || !okh {
		return Finding{}, false
	}
	w, err1 := strconv.Atoi(strings.TrimSpace(ew.Value))
	h, err2 := strconv.Atoi(strings.TrimSpace(eh.Value))
	f := Finding{Property: Resolution, File: file, Want: ew.Value + "x" + eh.Value, Origin: ew.Origin}
	f.OK = err1 == nil && err2 == nil && video[0].Width == w && video[0].Height == h
	return f, true
}

func compareDuration(sec float64, e Expected, md Metadata, p Profile) Finding {
	f := Finding{Property: Duration, File: FormatDuration(sec), Want: e.Value, Origin: e.Origin}
	var rate Rate
	if fr, ok := md[FrameRate]; ok {
		rate, _ = ParseRate(fr.Value)
	}
	want, err := ParseDuration(e.Value, rate)
	if err != nil {
		f.Want += " (unreadable: " + err.Error() + ")"
		return f
	}
	tol := p.DurationTolerance
	if tol <= 0 {
		tol = time.Second
	}
	if sec <= 0 {
		f.File = "unknown"
		return f
	}
	f.OK = math.Abs(sec-want.Seconds()) <= tol.Seconds()
	return f
}

// compareChannels passes when one audio stream has the channels asked for, or all audio
// streams together do (a 5.1 mix delivered as six mono tracks); with a configuration asked
// for and a layout in the file, the layouts must agree too (5.0 + LFE is not 6.0).
func compareChannels(audio []Stream, e Expected) (Finding, bool) {
	n, layout, fixed, err := ParseChannels(e.Value)
	f := Finding{Property: Channels, Want: e.Value, Origin: e.Origin, File: describeAudio(audio)}
	if err != nil {
		f.Want += " (unreadable: " + err.Error() + ")"
		return f, true
	}
	if !fixed {
		return Finding{}, false // atmos: no fixed bed to compare
	}
	total := 0
	for _, s := range audio {
		total += s.Channels
		if s.Channels == n && (layout == "" || s.Layout == "" || normLayout(s.Layout) == layout) {
			f.OK = true
		}
	}
	if !f.OK && len(audio) > 1 && total == n {
		f.OK = true
	}
	return f, true
}

func describeAudio(audio []Stream) string {
	if len(audio) == 0 {
		return "no audio stream"
	}
	var parts []string
	for _, s := range audio {
		d := strconv.Itoa(s.Channels)
		if s.Layout != "" {
			d = normLayout(s.Layout)
			if _, known := layouts[d]; !known || layouts[d] != s.Channels {
				d = fmt.Sprintf("%d channels (%s)", s.Channels, s.Layout)
			}
		}
		parts = append(parts, d)
	}
	return strings.Join(parts, " + ")
}

func compareSampleRate(audio []Stream, e Expected) Finding {
	f := Finding{Property: SampleRate, Want: e.Value, Origin: e.Origin}
	want, err := ParseSampleRate(e.Value)
	if err != nil {
		f.Want += " (unreadable: " + err.Error() + ")"
		return f
	}
	f.OK = true
	var seen []string
	for _, s := range audio {
		seen = appendNew(seen, strconv.Itoa(s.SampleRate))
		if s.SampleRate != want {
			f.OK = false
		}
	}
	f.File = strings.Join(seen, ", ")
	return f
}

// compareLanguage passes when an audio stream's language tag names the same language as the
// metadata (fr-FR and "fre" agree: files carry ISO 639-2 codes without a region). Streams
// without a tag, or tagged "und", say nothing: no finding when none says anything.
func compareLanguage(audio []Stream, e Expected) (Finding, bool) {
	want, err := language.Parse(e.Value)
	f := Finding{Property: Language, Want: e.Value, Origin: e.Origin}
	if err != nil {
		f.Want += " (not a BCP 47 tag)"
		return f, true
	}
	var tags []string
	for _, s := range audio {
		if s.Language == "" || strings.EqualFold(s.Language, "und") {
			continue
		}
		tags = appendNew(tags, s.Language)
		if SameLanguage(s.Language, want) {
			f.OK = true
		}
	}
	if len(tags) == 0 {
		return Finding{}, false
	}
	f.File = strings.Join(tags, ", ")
	return f, true
}

// SameLanguage compares a tag as files write it (fre, fra, fr, fr-CA) with a BCP 47 tag by
// base language; when both name a region or script, those must agree too.
func SameLanguage(tag string, want language.Tag) bool {
	got, err := language.Parse(strings.TrimSpace(tag))
	if err != nil || got == language.Und {
		return false
	}
	gb, _ := got.Base()
	wb, _ := want.Base()
	if gb != wb {
		return false
	}
	if gr, c := got.Region(); c == language.Exact {
		if wr, c := want.Region(); c == language.Exact && gr != wr {
			return false
		}
	}
	return true
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Properties are a file's key properties for the manifest, events and explain: frame_rate,
// resolution, duration (seconds), channels, sample_rate, language, codecs.
func Properties(m *Media) map[string]string {
	out := map[string]string{}
	var audio []Stream
	var codecs, langs, rates []string
	for _, s := range m.Streams {
		if s.Codec != "" {
			codecs = appendNew(codecs, s.Codec)
		}
		switch s.Kind {
		case "video":
			if _, ok := out[FrameRate]; !ok {
				out[FrameRate] = s.FrameRate.String()
				out[Resolution] = fmt.Sprintf("%dx%d", s.Width, s.Height)
			}
		case "audio":
			audio = append(audio, s)
			rates = appendNew(rates, strconv.Itoa(s.SampleRate))
			if s.Language != "" {
				langs = appendNew(langs, s.Language)
			}
		}
	}
	if m.Duration > 0 {
		out[Duration] = strconv.FormatFloat(m.Duration, 'f', 3, 64)
	}
	if len(audio) > 0 {
		out[Channels] = describeAudio(audio)
		out[SampleRate] = strings.Join(rates, ", ")
	}
	if len(langs) > 0 {
		sort.Strings(langs)
		out[Language] = strings.Join(langs, ", ")
	}
	if len(codecs) > 0 {
		out["codecs"] = strings.Join(codecs, ", ")
	}
	return out
}
