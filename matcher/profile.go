package matcher

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
)

// Field is one metadata field a profile knows.
type Field struct {
	Required bool     `json:"required"`
	Values   []string `json:"values,omitempty"` // allowed (ignoring case, numbers by value); empty = any
}

// Profile is a source type profile: how files of one source type are named, which extensions
// they may have, whether a request of that type takes several files, and which metadata they
// need. Profiles returned by the package are shared: treat them as read-only.
type Profile struct {
	Name       string
	Aliases    []string // codes used in file names (SUB, ME, IMF...), besides Name itself
	Extensions []string // lower case, without the dot; empty = any extension
	// Multi is the default for a request that does not set files: true means any number of
	// files, complete when the ready marker appears (files = 0); false means one file.
	Multi    bool
	Metadata map[string]Field
	// RequireChecksum holds a file until a writer's NAME.md5/.sha256/.xxh64 is beside it;
	// RequireMarker waits for the ready marker. Both keep a crashed render's truncated but
	// stable file from being delivered.
	RequireChecksum, RequireMarker bool
	// SuspectFrames holds a frame of a sequence that is empty or much smaller than its
	// neighbours (suspect_frame): a render node that died mid-write leaves such a frame.
	SuspectFrames bool
}

// SourceType is a [[source_type]] from the config. When Name is a built-in profile's name
// (compared ignoring case, spaces and punctuation) it overrides that profile field by field:
//   - Aliases, Extensions: a non-nil list replaces the built-in list (so a clashing alias can
//     be removed); nil keeps it.
//   - Multi: non-nil replaces the default.
//   - Metadata: each field listed replaces or adds that field; fields not listed are kept.
//   - RequireChecksum, RequireMarker: true turns the requirement on; false keeps the built-in's.
//
// Any other Name adds a profile (any extension, single file unless Multi says otherwise).
type SourceType struct {
	Name                           string
	Aliases, Extensions            []string
	Multi                          *bool
	Metadata                       map[string]Field
	RequireChecksum, RequireMarker bool
	SuspectFrames                  *bool  // nil = keep the built-in's
	Pos                            string // where it is written (FILE:LINE:COL), for errors
}

var (
	audioExt    = []string{"wav", "bwf", "aif", "aiff", "mxf", "ac3", "ec3", "eac3"}
	timedText   = []string{"ttml", "dfxp", "xml", "srt", "vtt", "scc", "stl", "cap"}
	videoExt    = []string{"mov", "mp4", "m4v", "mxf"}
	frameRates  = []string{"23.976", "24", "25", "29.97", "30", "50", "59.94", "60"}
	audioConfig = []string{"1.0", "2.0", "5.1", "7.1", "7.1.4", "atmos"}
	// imageExt are the formats render farms write as frame sequences.
	imageExt = []string{"exr", "dpx", "cin", "tif", "tiff", "png", "jpg", "jpeg", "tga", "j2c", "j2k", "jp2", "ari", "bmp", "hdr", "sgi", "rgb", "psd", "webp"}
)

// BuiltinProfiles returns the built-in profiles: SPEC.md's thirteen and VFX (frame sequences), in a fixed order. Each
// call returns fresh copies.
func BuiltinProfiles() []Profile {
	lang := Field{Required: true}
	fr := Field{Values: frameRates}
	ac := Field{Values: audioConfig}
	return []Profile{
		{Name: "Audio Description", Aliases: []string{"AD", "DV", "DVS", "AUDIODESC"}, Extensions: audioExt,
			Metadata: map[string]Field{"language": lang, "audio_config": ac}},
		{Name: "Audio M&E", Aliases: []string{"ME", "M&E", "MNE", "MANDE", "MUSICEFFECTS"}, Extensions: audioExt, Multi: true,
			Metadata: map[string]Field{"audio_config": ac}},
		{Name: "Audio Print Master", Aliases: []string{"PM", "PRINTMASTER", "APM"}, Extensions: audioExt, Multi: true,
			Metadata: map[string]Field{"language": lang, "audio_config": ac}},
		{Name: "Final Script", Aliases: []string{"SCRIPT", "FSCRIPT", "CCSL", "DIALOGUELIST"}, Extensions: []string{"pdf", "docx", "doc", "xlsx", "rtf", "txt"},
			Metadata: map[string]Field{"language": {}}},
		{Name: "Forced Sub", Aliases: []string{"FS", "FN", "FORCED", "FORCEDNARRATIVE"}, Extensions: timedText,
			Metadata: map[string]Field{"language": lang, "frame_rate": fr}},
		{Name: "Production Locked Proxy", Aliases: []string{"PLP", "PROXY", "LOCKEDPROXY"}, Extensions: videoExt,
			Metadata: map[string]Field{"frame_rate": fr}},
		{Name: "SDH/CC", Aliases: []string{"SDH", "CC", "CAPTIONS", "CLOSEDCAPTIONS"}, Extensions: timedText,
			Metadata: map[string]Field{"language": lang, "frame_rate": fr}},
		{Name: "Secondary Audio", Aliases: []string{"SA", "SAP", "SECAUDIO", "DUB"}, Extensions: audioExt,
			Metadata: map[string]Field{"language": lang, "audio_config": ac}},
		{Name: "Subtitle", Aliases: []string{"SUB", "SUBS", "SUBTITLES", "ST"}, Extensions: timedText,
			Metadata: map[string]Field{"language": lang, "frame_rate": fr}},
		{Name: "AV (Muxed)", Aliases: []string{"AV", "MUX", "MUXED"}, Extensions: videoExt,
			Metadata: map[string]Field{"language": {}, "frame_rate": fr}},
		{Name: "Non-IMF delivery", Aliases: []string{"NONIMF", "NON-IMF", "NIMF"}, Multi: true,
			Extensions: []string{"mov", "mxf", "mp4", "wav", "aif", "aiff", "xml", "ttml", "scc", "srt", "pdf"},
			Metadata:   map[string]Field{"frame_rate": fr}},
		{Name: "Secondary AV (Muxed)", Aliases: []string{"SAV", "SECAV", "SECONDARYAV"}, Extensions: videoExt,
			Metadata: map[string]Field{"language": lang, "frame_rate": fr}},
		{Name: "IMF", Aliases: []string{"IMP"}, Extensions: []string{"mxf", "xml"}, Multi: true,
			Metadata: map[string]Field{"frame_rate": fr}},
		// Not in SPEC's list of thirteen ("at least"): render farms' frame sequences (plates,
		// VFX pulls, renders), which hotdrop shows and checks as sequences.
		{Name: "VFX", Aliases: []string{"PLATES", "VFXPULL", "PULL", "RENDER", "FRAMES", "IMAGESEQUENCE", "EXR", "DPX"}, Extensions: imageExt, Multi: true,
			Metadata: map[string]Field{"frame_rate": fr}, SuspectFrames: true},
	}
}

// SourceTypeKey is how source type names and aliases are compared (see aliasKey), for
// callers that key their own per-source-type settings by name.
func SourceTypeKey(s string) string { return aliasKey(s) }

// aliasKey is how source types are compared: case, spaces and punctuation do not count, so
// "SDH/CC", "sdh-cc" and "SDHCC" are the same code and "Audio M&E" is "audiome".
func aliasKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// profiles is the merged set with its alias table.
type profiles struct {
	list    []*Profile
	byAlias map[string]*Profile // aliasKey → profile
	// langCache maps a language as written to its comparison key (see langKey).
	langCache sync.Map
	langCount atomic.Int64
}

// buildProfiles merges the overrides into the built-ins and checks that no alias names two
// profiles.
func buildProfiles(overrides []SourceType) (*profiles, error) {
	base := BuiltinProfiles()
	ps := &profiles{byAlias: map[string]*Profile{}}
	byName := map[string]*Profile{}
	for i := range base {
		p := &base[i]
		ps.list = append(ps.list, p)
		byName[aliasKey(p.Name)] = p
	}
	for _, o := range overrides {
		k := aliasKey(o.Name)
		if k == "" {
			return nil, fmt.Errorf("%s: source_type %q: the name needs at least one letter or digit", o.Pos, o.Name)
		}
		p := byName[k]
		if p == nil {
			p = &Profile{Name: o.Name, Metadata: map[string]Field{}}
			ps.list = append(ps.list, p)
			byName[k] = p
		}
		if o.Aliases != nil {
			p.Aliases = append([]string(nil), o.Aliases...)
		}
		if o.Extensions != nil {
			p.Extensions = nil
			for _, e := range o.Extensions {
				p.Extensions = append(p.Extensions, strings.ToLower(strings.TrimPrefix(e, ".")))
			}
		}
		if o.Multi != nil {
			p.Multi = *o.Multi
		}
		md := make(map[string]Field, len(p.Metadata)+len(o.Metadata))
		for f, v := range p.Metadata {
			md[f] = v
		}
		for f, v := range o.Metadata {
			md[f] = v
		}
		p.Metadata = md
		p.RequireChecksum = p.RequireChecksum || o.RequireChecksum
		p.RequireMarker = p.RequireMarker || o.RequireMarker
		if o.SuspectFrames != nil {
			p.SuspectFrames = *o.SuspectFrames
		}
	}
	for _, p := range ps.list {
		for _, a := range append([]string{p.Name}, p.Aliases...) {
			k := aliasKey(a)
			if k == "" {
				continue
			}
			if q, dup := ps.byAlias[k]; dup && q != p {
				return nil, fmt.Errorf("source type alias %q names both %q and %q; remove it from one of them with [[source_type]] aliases", a, q.Name, p.Name)
			}
			ps.byAlias[k] = p
		}
	}
	return ps, nil
}

// lookup returns the profile a source type name or alias stands for, or nil.
func (ps *profiles) lookup(s string) *Profile {
	if p, ok := ps.byAlias[s]; ok {
		return p // already a key: lower-case letters and digits
	}
	return ps.byAlias[aliasKey(s)]
}

// sortedFields lists a profile's metadata fields by name, for stable messages.
func sortedFields(md map[string]Field) []string {
	out := make([]string, 0, len(md))
	for f := range md {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}
