package config

import (
	"fmt"
	"regexp"
	"strings"
)

// decodeRules reads the [[rule]] tables: the File Bin's file name patterns.
func decodeRules(tables []*table) []Rule {
	var out []Rule
	names := map[string]Position{}
	for i, t := range tables {
		r := Rule{Name: fmt.Sprintf("rule %d", i+1), Pos: t.pos, Where: map[string]*regexp.Regexp{}}
		if s, ok := t.str("name", "a string"); ok && s != "" {
			if p, dup := names[s]; dup {
				t.errorf(t.valPos("name"), "rule.name: %q is also the name of the rule at line %d; names must be unique", s, p.Line)
			}
			names[s] = t.valPos("name")
			r.Name = s
		}
		var fields []string
		patternOK := false
		if s, ok := t.str("pattern", `a pattern like "{title}_{language}.{ext}"`); ok {
			var off int
			var problem string
			fields, off, problem = templateProblem(s)
			switch {
			case problem != "":
				t.errorf(t.within("pattern", s, off), "rule.pattern: %s", problem)
			case len(fields) == 0:
				t.errorf(t.valPos("pattern"), "rule.pattern: %q captures no {field}, so it cannot tell requests apart", s)
			default:
				patternOK = true
			}
			r.Pattern = s
		} else if !t.has("pattern") {
			t.errorf(t.pos, `rule.pattern is required in every [[rule]]; expected e.g. pattern = "{title}_{episode}_{source_type}_{language}.{ext}"`)
		}
		if t.has("where") {
			where := t.sub("where")
			where.open = true
			for _, k := range where.keys() {
				expr, ok := where.str(k, "a regular expression string")
				if !ok {
					continue
				}
				if patternOK && !contains(fields, k) {
					hint := ""
					if s := suggest(k, fields); s != "" {
						hint = fmt.Sprintf(" (did you mean %q?)", s)
					}
					where.errorf(where.keyPos(k), "%s: the pattern has no {%s} capture to constrain%s", where.label(k), k, hint)
					continue
				}
				if _, err := regexp.Compile(expr); err != nil {
					where.errorf(where.valPos(k), "%s: %q is not a valid regular expression: %v", where.label(k), expr, err)
					continue
				}
				r.Where[k] = regexp.MustCompile(`^(?:` + expr + `)$`)
			}
		} else {
			t.get("where") // part of the schema, for hints
		}
		out = append(out, r)
	}
	return out
}

// decodeSourceTypes reads the [[source_type]] tables: profiles, their metadata fields and
// their checks (decodeField, decodeProfileChecks).
func decodeSourceTypes(tables []*table) []SourceType {
	var out []SourceType
	names := map[string]int{}
	for _, t := range tables {
		st := SourceType{Pos: t.pos, Metadata: map[string]Field{}}
		if s, ok := t.str("name", "a string"); ok && strings.TrimSpace(s) != "" {
			key := strings.ToLower(s)
			if line, dup := names[key]; dup {
				t.errorf(t.valPos("name"), "source_type.name: %q is also the name of the [[source_type]] at line %d", s, line)
			}
			names[key] = t.pos.Line
			st.Name = s
		} else if ok || !t.has("name") {
			p := t.pos
			if ok {
				p = t.valPos("name")
			}
			t.errorf(p, `source_type.name is required in every [[source_type]]; expected e.g. name = "Subtitle"`)
		}
		if list, ok := t.strList("aliases"); ok {
			st.Aliases = list
		}
		if list, ok := t.strList("extensions"); ok {
			for i, e := range list {
				e = strings.TrimPrefix(e, ".")
				if !oneName(e) {
					t.errorf(t.itemPos("extensions", i), `source_type.extensions: %q is not a file extension; expected e.g. "ttml"`, list[i])
					continue
				}
				st.Extensions = append(st.Extensions, e)
			}
		}
		if t.has("multi") {
			var b bool
			t.setBool("multi", &b)
			st.Multi = &b
		} else {
			t.get("multi")
		}
		t.setBool("require_checksum", &st.RequireChecksum)
		t.setBool("require_marker", &st.RequireMarker)
		if t.has("suspect_frames") {
			var b bool
			t.setBool("suspect_frames", &b)
			st.SuspectFrames = &b
		}
		if t.has("checks") {
			st.Checks = decodeProfileChecks(t.sub("checks"))
		} else {
			t.get("checks")
		}
		if t.has("metadata") {
			md := t.sub("metadata")
			md.open = true
			for _, k := range md.keys() {
				if f, ok := decodeField(md, k); ok {
					st.Metadata[k] = f
				}
			}
		} else {
			t.get("metadata")
		}
		out = append(out, st)
	}
	return out
}

func decodeField(md *table, k string) (Field, bool) {
	var f Field
	if !fieldName.MatchString(k) {
		md.errorf(md.keyPos(k), "%s: %q is not a field name; expected lower-case letters, digits and _ like frame_rate", md.label(k), k)
		return f, false
	}
	v, _ := md.get(k)
	if _, ok := v.(map[string]any); !ok {
		md.typeError(md.valPos(k), md.label(k), "a table like { required = true, values = [\"25\"] }", v)
		return f, false
	}
	ft := md.sub(k)
	ft.setBool("required", &f.Required)
	if list, ok := ft.strList("values"); ok {
		f.Values = list
	}
	return f, true
}

// checkProperties are the properties a profile's checks.apply may list.
var checkProperties = []string{"frame_rate", "resolution", "duration", "channels", "sample_rate", "language", "timing"}

// channelConfigs are the channel configurations checks.channels accepts besides a count.
var channelConfigs = []string{"1.0", "mono", "2.0", "stereo", "2.1", "3.0", "4.0", "quad", "5.0", "5.1", "6.1", "7.1", "5.1.2", "5.1.4", "7.1.2", "7.1.4"}

func decodeProfileChecks(t *table) *ProfileChecks {
	pc := &ProfileChecks{Pos: t.pos}
	for k, dst := range map[string]**bool{"probe": &pc.Probe, "timed_text": &pc.TimedText, "imf": &pc.IMF, "video": &pc.Video} {
		if t.has(k) {
			var b bool
			t.setBool(k, &b)
			*dst = &b
		} else {
			t.get(k)
		}
	}
	if list, ok := t.strList("apply"); ok {
		pc.Apply = []string{}
		for i, p := range list {
			if !contains(checkProperties, p) {
				hint := ""
				if s := suggest(p, checkProperties); s != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", s)
				}
				t.errorf(t.itemPos("apply", i), "%s: %q is not a property hotdrop checks%s; expected some of %s", t.label("apply"), p, hint, quoteAll(checkProperties))
				continue
			}
			pc.Apply = append(pc.Apply, p)
		}
	}
	if n, ok := t.integer("sample_rate", 1); ok {
		if n < 8000 || n > 768000 {
			t.errorf(t.valPos("sample_rate"), "%s: %d is not a sample rate in Hz; expected e.g. 48000", t.label("sample_rate"), n)
		} else {
			pc.SampleRate = int(n)
		}
	}
	if s, ok := t.str("channels", `a channel configuration like "5.1"`); ok {
		if !contains(channelConfigs, strings.ToLower(s)) {
			t.errorf(t.valPos("channels"), "%s: %q is not a channel configuration; expected one of %s", t.label("channels"), s, quoteAll(channelConfigs))
		} else {
			pc.Channels = s
		}
	}
	t.setDuration("duration_tolerance", &pc.DurationTolerance)
	return pc
}
