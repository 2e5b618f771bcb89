package checks

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// TimedText is what a timed-text file declares and how its cues are timed.
type TimedText struct {
	Format    string // "ttml", "srt", "webvtt", "scc"
	FrameRate Rate   // TTML ttp:frameRate × ttp:frameRateMultiplier; zero = not declared
	Lang      string // TTML xml:lang; "" = not declared
	Cues      int
	// Problems are timing faults (a cue before the one preceding it, a cue ending before it
	// starts, a missing SCC header), each a sentence naming the cue and its line.
	Problems []string
}

// Bounds of a timed-text file. A feature's subtitles are a few MB; these are far above that
// and far below what hurts.
const (
	MaxTimedText  = 64 << 20
	maxXMLDepth   = 256
	maxXMLTokens  = 20_000_000
	maxProblems   = 5
	ttmlNS        = "http://www.w3.org/ns/ttml"
	ttmlParamNS   = "http://www.w3.org/ns/ttml#parameter"
	xmlNS         = "http://www.w3.org/XML/1998/namespace"
	sccHeader     = "Scenarist_SCC V1.0"
	webvttMagic   = "WEBVTT"
	timingArrow   = "-->"
	errNotTTMLMsg = "not a TTML document"
)

// errNotTTML is returned by ParseTTML for well-formed XML whose root is not <tt>.
var errNotTTML = errors.New(errNotTTMLMsg)

// ParseTimedText reads a timed-text file of the given format ("ttml", "dfxp", "xml", "srt",
// "vtt", "scc") from r, at most MaxTimedText bytes. An error wraps ErrUnreadable when the file
// is not what its name says (not well-formed, no cues, too large).
func ParseTimedText(format string, r io.Reader) (*TimedText, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTimedText+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTimedText {
		return nil, fmt.Errorf("%w: larger than %d MiB, which no timed-text file is", ErrUnreadable, MaxTimedText>>20)
	}
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		return nil, fmt.Errorf("%w: the file is UTF-16; hotdrop reads timed text in UTF-8 (save it as UTF-8)", ErrUnreadable)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	switch format {
	case "ttml", "dfxp", "xml":
		return ParseTTML(data)
	case "srt":
		return parseCues("srt", data)
	case "vtt":
		return parseCues("webvtt", data)
	case "scc":
		return parseSCC(data)
	}
	return nil, fmt.Errorf("no timed-text reader for %q", format)
}

// ParseTTML reads a TTML/DFXP/IMSC document: its root <tt> element's xml:lang, ttp:frameRate and
// ttp:frameRateMultiplier. The whole document must be well-formed; nesting deeper than
// maxXMLDepth is refused.
func ParseTTML(data []byte) (*TimedText, error) {
	tt := &TimedText{Format: "ttml"}
	err := walkXML(data, func(tok xml.Token, depth int) error {
		t, ok := tok.(xml.StartElement)
		if !ok {
			return nil
		}
		switch {
		case depth == 1 && t.Name.Local != "tt":
			return fmt.Errorf("%w (the root element is <%s>, not <tt>)", errNotTTML, t.Name.Local)
		case depth == 1:
			if err := ttRoot(tt, t); err != nil {
				return err
			}
		case tt.Lang == "" && (t.Name.Local == "body" || t.Name.Local == "div"):
			tt.Lang = attr(t, "xml", "lang")
		}
		if t.Name.Local == "p" {
			tt.Cues++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tt, nil
}

// attr finds an attribute by prefix (as written, since RawToken does not resolve namespaces)
// and local name.
func attr(e xml.StartElement, prefix, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local && (a.Name.Space == prefix || (prefix == "xml" && a.Name.Space == xmlNS)) {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

// ttRoot reads the root's parameters. ttp may be bound to any prefix: find the one bound to
// the TTML parameter namespace.
func ttRoot(tt *TimedText, e xml.StartElement) error {
	tt.Lang = attr(e, "xml", "lang")
	ttp := "ttp"
	for _, a := range e.Attr {
		if a.Name.Space == "xmlns" && a.Value == ttmlParamNS {
			ttp = a.Name.Local
		}
	}
	fr := attr(e, ttp, "frameRate")
	if fr == "" {
		return nil
	}
	n, err := strconv.Atoi(fr)
	if err != nil || n <= 0 || n > 1000 {
		return fmt.Errorf("%w: ttp:frameRate=%q is not a positive whole number", ErrUnreadable, fr)
	}
	tt.FrameRate = Rate{int64(n), 1}
	if m := attr(e, ttp, "frameRateMultiplier"); m != "" {
		f := strings.Fields(m)
		num, err1 := strconv.Atoi(safeIndex(f, 0))
		den, err2 := strconv.Atoi(safeIndex(f, 1))
		if len(f) != 2 || err1 != nil || err2 != nil || num <= 0 || den <= 0 || num > 1<<20 || den > 1<<20 {
			return fmt.Errorf("%w: ttp:frameRateMultiplier=%q is not two positive whole numbers like \"1000 1001\"", ErrUnreadable, m)
		}
		tt.FrameRate = Rate{int64(n) * int64(num), int64(den)}
	}
	return nil
}

func safeIndex(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

func trimXMLErr(err error) string {
	return strings.TrimPrefix(err.Error(), "XML syntax error on ")
}

// charsetReader accepts the encodings besides UTF-8 that TTML files declare in practice.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return in, nil
	case "iso-8859-1", "latin1", "latin-1", "windows-1252":
		return latin1{bufio.NewReader(in)}, nil
	}
	return nil, fmt.Errorf("the encoding %q is not read; save the file as UTF-8", label)
}

type latin1 struct{ r *bufio.Reader }

func (l latin1) Read(p []byte) (int, error) {
	n := 0
	for n+utf8.UTFMax <= len(p) {
		b, err := l.r.ReadByte()
		if err != nil {
			return n, err
		}
		n += utf8.EncodeRune(p[n:], rune(b))
	}
	return n, nil
}

// parseCues reads SRT or WebVTT cue timings and checks them: each cue starts no earlier than
// the one before it, and none ends before it starts.
func parseCues(format string, data []byte) (*TimedText, error) {
	tt := &TimedText{Format: format}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var prev time.Duration
	prevLine := 0
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 && format == "webvtt" {
			if !strings.HasPrefix(line, webvttMagic) {
				return nil, fmt.Errorf("%w: a WebVTT file starts with %q on its first line", ErrUnreadable, webvttMagic)
			}
			continue
		}
		from, to, ok := strings.Cut(line, timingArrow)
		if !ok {
			continue
		}
		tt.Cues++
		start, err1 := parseCueTime(strings.TrimSpace(from))
		endField := strings.Fields(to)
		var end time.Duration
		var err2 error = errors.New("no end time")
		if len(endField) > 0 {
			end, err2 = parseCueTime(endField[0])
		}
		switch {
		case err1 != nil || err2 != nil:
			tt.problem("cue %d (line %d): %q is not a timing line like 00:01:02,500 --> 00:01:04,000", tt.Cues, n, line)
			continue
		case end < start:
			tt.problem("cue %d (line %d) ends at %s, before it starts at %s", tt.Cues, n, fmtCue(end), fmtCue(start))
		}
		if tt.Cues > 1 && start < prev {
			tt.problem("cue %d (line %d) starts at %s, before cue %d (line %d) at %s", tt.Cues, n, fmtCue(start), tt.Cues-1, prevLine, fmtCue(prev))
		}
		prev, prevLine = start, n
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrUnreadable, n+1, err)
	}
	if tt.Cues == 0 {
		return nil, fmt.Errorf("%w: no cue timing line (00:00:01,000 --> 00:00:02,000) found", ErrUnreadable)
	}
	return tt, nil
}

func (tt *TimedText) problem(format string, args ...any) {
	if len(tt.Problems) < maxProblems {
		tt.Problems = append(tt.Problems, fmt.Sprintf(format, args...))
	} else if len(tt.Problems) == maxProblems {
		tt.Problems = append(tt.Problems, "and more")
	}
}

// parseCueTime reads "01:02:03,456" (SRT), "01:02:03.456" or "02:03.456" (WebVTT).
func parseCueTime(s string) (time.Duration, error) {
	s = strings.Replace(s, ",", ".", 1)
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	var total float64
	for i, p := range parts {
		if p == "" || strings.HasPrefix(p, "-") || strings.HasPrefix(p, "+") {
			return 0, fmt.Errorf("bad time %q", s)
		}
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || (i > 0 && f >= 60) || f > 1e6 {
			return 0, fmt.Errorf("bad time %q", s)
		}
		total = total*60 + f
	}
	return time.Duration(total * float64(time.Second)), nil
}

func fmtCue(d time.Duration) string {
	return FormatDuration(d.Seconds())
}

// parseSCC checks the Scenarist header and counts caption lines.
func parseSCC(data []byte) (*TimedText, error) {
	tt := &TimedText{Format: "scc"}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	header := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if !header {
			if line != sccHeader {
				return nil, fmt.Errorf("%w: an SCC file starts with the header %q; this one starts with %q", ErrUnreadable, sccHeader, clip(line))
			}
			header = true
			continue
		}
		tt.Cues++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if !header {
		return nil, fmt.Errorf("%w: the file is empty; an SCC file starts with %q", ErrUnreadable, sccHeader)
	}
	return tt, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// CompareTimedText compares a timed-text file with the metadata under p: the declared frame
// rate against frame_rate, xml:lang against language, and the cue timing problems found.
func CompareTimedText(tt *TimedText, md Metadata, p Profile) []Finding {
	var out []Finding
	if e, ok := md[FrameRate]; ok && p.Applies(FrameRate) && tt.FrameRate.Den != 0 {
		out = append(out, compareRate([]Stream{{FrameRate: tt.FrameRate}}, e))
	}
	if e, ok := md[Language]; ok && p.Applies(Language) && tt.Lang != "" {
		if f, ok := compareLanguage([]Stream{{Language: tt.Lang}}, e); ok {
			f.File = tt.Lang
			out = append(out, f)
		}
	}
	if p.Applies(Timing) {
		for _, pr := range tt.Problems {
			out = append(out, Finding{Property: Timing, Note: pr})
		}
	}
	return out
}
