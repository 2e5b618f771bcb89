package checks

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Rate is a frame rate as a fraction: 24000/1001 for 23.976.
type Rate struct{ Num, Den int64 }

// Float returns the rate in frames per second (0 for an unknown rate).
func (r Rate) Float() float64 {
	if r.Den == 0 {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

// String spells the rate the way people write it: "25", "23.976", "29.97".
func (r Rate) String() string {
	if r.Den == 0 || r.Num == 0 {
		return "unknown"
	}
	if r.Num%r.Den == 0 {
		return strconv.FormatInt(r.Num/r.Den, 10)
	}
	if r.Den == 1001 {
		// 24000/1001 is written 23.976, 30000/1001 29.97, 60000/1001 59.94.
		s := strconv.FormatFloat(math.Floor(r.Float()*1000)/1000, 'f', -1, 64)
		if strings.HasSuffix(s, "0") && strings.Contains(s, ".") {
			s = strings.TrimRight(s, "0")
		}
		return s
	}
	return strconv.FormatFloat(r.Float(), 'f', 3, 64)
}

// Equal compares two rates by value: 24000/1001 equals 23.976 as written.
func (r Rate) Equal(o Rate) bool {
	if r.Den == 0 || o.Den == 0 {
		return false
	}
	return math.Abs(r.Float()-o.Float()) < 0.0015
}

// ParseRate reads a frame rate as people and tools write it: "24", "25.0", "24000/1001",
// "23.976", "23.98", "29.97", "59.94", "24p", "25 fps". The NTSC spellings (x.976, x.98,
// x.97, x.94) are the exact 1000/1001 rates.
func ParseRate(s string) (Rate, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(t, "fps"), "p"))
	if num, den, ok := strings.Cut(t, "/"); ok {
		n, err1 := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		d, err2 := strconv.ParseInt(strings.TrimSpace(den), 10, 64)
		if err1 != nil || err2 != nil || n < 0 || d < 0 {
			return Rate{}, fmt.Errorf("%q is not a frame rate like 24, 23.976 or 24000/1001", s)
		}
		return Rate{n, d}, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 || f > 1000 || math.IsNaN(f) {
		return Rate{}, fmt.Errorf("%q is not a frame rate like 24, 23.976 or 24000/1001", s)
	}
	if whole := math.Round(f); math.Abs(f-whole) < 1e-9 {
		return Rate{int64(whole), 1}, nil
	}
	// 23.976, 23.98, 29.97, 59.94, 47.952, 119.88: just under a whole number by 1/1001.
	if n := math.Round(f * 1.001); math.Abs(f-n/1.001) < 0.006 {
		return Rate{int64(n) * 1000, 1001}, nil
	}
	return Rate{int64(math.Round(f * 1000)), 1000}, nil
}

// ParseResolution reads "1920x1080" (also "1920 x 1080", "1920×1080"); names like "UHD" and
// "HD" are read as 3840x2160 and 1920x1080.
func ParseResolution(s string) (w, h int, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch t {
	case "hd", "1080p", "fhd":
		return 1920, 1080, nil
	case "uhd", "4k uhd", "2160p":
		return 3840, 2160, nil
	case "720p":
		return 1280, 720, nil
	}
	t = strings.ReplaceAll(t, "×", "x")
	ws, hs, ok := strings.Cut(t, "x")
	w, err1 := strconv.Atoi(strings.TrimSpace(ws))
	h, err2 := strconv.Atoi(strings.TrimSpace(hs))
	if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("%q is not a resolution like 1920x1080", s)
	}
	return w, h, nil
}

// ParseDuration reads a running time: seconds ("5025.5"), a Go duration ("1h23m45s"),
// "HH:MM:SS(.fff)", or a timecode "HH:MM:SS:FF" (frames at rate; rate 0 takes 24).
func ParseDuration(s string, rate Rate) (time.Duration, error) {
	t := strings.TrimSpace(s)
	bad := fmt.Errorf("%q is not a running time like 01:23:45, 01:23:45:12, 5025s or 83m", s)
	if f, err := strconv.ParseFloat(t, 64); err == nil {
		if f < 0 || f > 1e7 {
			return 0, bad
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(t); err == nil {
		if d < 0 {
			return 0, bad
		}
		return d, nil
	}
	parts := strings.Split(strings.ReplaceAll(t, ";", ":"), ":")
	if len(parts) < 2 || len(parts) > 4 {
		return 0, bad
	}
	var total float64
	frames := 0.0
	if len(parts) == 4 {
		n, err := strconv.Atoi(parts[3])
		if err != nil || n < 0 {
			return 0, bad
		}
		fps := rate.Float()
		if fps == 0 {
			fps = 24
		}
		frames = float64(n) / fps
		parts = parts[:3]
	}
	for i, p := range parts {
		f, err := strconv.ParseFloat(p, 64)
		if err != nil || f < 0 || (i > 0 && f >= 60) {
			return 0, bad
		}
		total = total*60 + f
	}
	return time.Duration((total + frames) * float64(time.Second)), nil
}

// FormatDuration shows seconds as "1:23:45.500".
func FormatDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second)).Round(time.Millisecond)
	h := int(d / time.Hour)
	m := int(d % time.Hour / time.Minute)
	s := float64(d%time.Minute) / float64(time.Second)
	return fmt.Sprintf("%d:%02d:%06.3f", h, m, s)
}

// layouts maps audio configurations to their channel counts.
var layouts = map[string]int{
	"1.0": 1, "mono": 1, "2.0": 2, "stereo": 2, "2.1": 3, "3.0": 3, "4.0": 4, "quad": 4, "5.0": 5,
	"5.1": 6, "6.1": 7, "7.1": 8, "5.1.2": 8, "5.1.4": 10, "7.1.2": 10, "7.1.4": 12,
}

// ParseChannels reads a channel expectation: a count ("6") or a configuration ("5.1", "2.0",
// "7.1", "stereo"). It returns the count and the configuration's spelling ("" for a bare
// count). ok is false for a configuration with no fixed channel count ("atmos").
func ParseChannels(s string) (n int, layout string, ok bool, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "atmos" || t == "object" || t == "objects" {
		return 0, t, false, nil
	}
	if c, ok := layouts[t]; ok {
		return c, normLayout(t), true, nil
	}
	if c, err := strconv.Atoi(t); err == nil && c > 0 && c <= 128 {
		return c, "", true, nil
	}
	return 0, "", false, fmt.Errorf("%q is not a channel configuration like 2.0, 5.1, 7.1 or a channel count", s)
}

// normLayout spells ffprobe's layouts as delivery specs do: "5.1(side)" → "5.1", "stereo" →
// "2.0", "mono" → "1.0".
func normLayout(l string) string {
	l = strings.ToLower(strings.TrimSpace(l))
	if i := strings.IndexByte(l, '('); i > 0 {
		l = l[:i]
	}
	switch l {
	case "mono":
		return "1.0"
	case "stereo":
		return "2.0"
	case "quad":
		return "4.0"
	}
	return l
}

// ParseSampleRate reads "48000", "48k", "48 kHz", "48", "44.1", "44.1kHz", "96000 Hz".
func ParseSampleRate(s string) (int, error) {
	t := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
	t = strings.TrimSuffix(t, "hz")
	k := strings.HasSuffix(t, "k")
	t = strings.TrimSuffix(t, "k")
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%q is not a sample rate like 48000 or 48kHz", s)
	}
	if k || f < 1000 {
		f *= 1000
	}
	return int(math.Round(f)), nil
}
