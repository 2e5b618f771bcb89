package checks

import (
	"testing"
	"time"

	"golang.org/x/text/language"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		show string
	}{
		{"24", Rate{24, 1}, "24"},
		{"24.0", Rate{24, 1}, "24"},
		{"25 fps", Rate{25, 1}, "25"},
		{"24p", Rate{24, 1}, "24"},
		{"24000/1001", Rate{24000, 1001}, "23.976"},
		{"23.976", Rate{24000, 1001}, "23.976"},
		{"23.98", Rate{24000, 1001}, "23.976"},
		{"29.97", Rate{30000, 1001}, "29.97"},
		{"59.94", Rate{60000, 1001}, "59.94"},
		{"30000/1001", Rate{30000, 1001}, "29.97"},
		{"12.5", Rate{12500, 1000}, "12.500"},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if err != nil || !got.Equal(tt.want) || got.String() != tt.show {
			t.Errorf("ParseRate(%q) = %v (%s), %v; want %v (%s)", tt.in, got, got, err, tt.want, tt.show)
		}
	}
	for _, bad := range []string{"", "fast", "-24", "0", "NaN", "24/x", "1e9"} {
		if r, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %v, want an error", bad, r)
		}
	}
}

func TestRatesThatDiffer(t *testing.T) {
	rates := []string{"23.976", "24", "25", "29.97", "30"}
	for i, a := range rates {
		for j, b := range rates {
			ra, _ := ParseRate(a)
			rb, _ := ParseRate(b)
			if got := ra.Equal(rb); got != (i == j) {
				t.Errorf("%s.Equal(%s) = %v", a, b, got)
			}
		}
	}
}

func TestParseChannels(t *testing.T) {
	tests := []struct {
		in     string
		n      int
		layout string
		fixed  bool
	}{
		{"5.1", 6, "5.1", true}, {"2.0", 2, "2.0", true}, {"stereo", 2, "2.0", true}, {"7.1", 8, "7.1", true},
		{"7.1.4", 12, "7.1.4", true}, {"6", 6, "", true}, {"Atmos", 0, "atmos", false},
	}
	for _, tt := range tests {
		n, layout, fixed, err := ParseChannels(tt.in)
		if err != nil || n != tt.n || layout != tt.layout || fixed != tt.fixed {
			t.Errorf("ParseChannels(%q) = %d, %q, %v, %v; want %d, %q, %v", tt.in, n, layout, fixed, err, tt.n, tt.layout, tt.fixed)
		}
	}
	if _, _, _, err := ParseChannels("5.2"); err == nil {
		t.Error("ParseChannels(5.2): no error")
	}
}

func TestParseSampleRate(t *testing.T) {
	for in, want := range map[string]int{"48000": 48000, "48k": 48000, "48 kHz": 48000, "48": 48000, "44.1": 44100, "44.1kHz": 44100, "96000 Hz": 96000} {
		if got, err := ParseSampleRate(in); err != nil || got != want {
			t.Errorf("ParseSampleRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseSampleRate("loud"); err == nil {
		t.Error("ParseSampleRate(loud): no error")
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		rate Rate
		want time.Duration
	}{
		{"5025.5", Rate{}, 5025500 * time.Millisecond},
		{"1h23m45s", Rate{}, time.Hour + 23*time.Minute + 45*time.Second},
		{"01:23:45", Rate{}, time.Hour + 23*time.Minute + 45*time.Second},
		{"00:00:10.500", Rate{}, 10500 * time.Millisecond},
		{"00:00:10:12", Rate{24, 1}, 10500 * time.Millisecond},
		{"00:00:10:12", Rate{25, 1}, 10480 * time.Millisecond},
	}
	for _, tt := range tests {
		if got, err := ParseDuration(tt.in, tt.rate); err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q, %v) = %v, %v; want %v", tt.in, tt.rate, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "soon", "-5", "01:61:00", "1:2:3:4:5"} {
		if d, err := ParseDuration(bad, Rate{}); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", bad, d)
		}
	}
}

func TestParseResolution(t *testing.T) {
	for in, want := range map[string][2]int{"1920x1080": {1920, 1080}, "1920 x 1080": {1920, 1080}, "3840×2160": {3840, 2160}, "UHD": {3840, 2160}, "HD": {1920, 1080}} {
		w, h, err := ParseResolution(in)
		if err != nil || w != want[0] || h != want[1] {
			t.Errorf("ParseResolution(%q) = %dx%d, %v; want %v", in, w, h, err, want)
		}
	}
	if _, _, err := ParseResolution("big"); err == nil {
		t.Error("ParseResolution(big): no error")
	}
}

func TestSameLanguage(t *testing.T) {
	tests := []struct {
		file, want string
		same       bool
	}{
		{"fre", "fr-FR", true}, {"fra", "fr-FR", true}, {"fr", "fr-FR", true}, {"ger", "fr-FR", false},
		{"deu", "de-DE", true}, {"fr-CA", "fr-FR", false}, {"fr-CA", "fr", true}, {"und", "fr-FR", false},
		{"eng", "en-US", true}, {"spa", "es-419", true},
	}
	for _, tt := range tests {
		if got := SameLanguage(tt.file, language.MustParse(tt.want)); got != tt.same {
			t.Errorf("SameLanguage(%q, %s) = %v, want %v", tt.file, tt.want, got, tt.same)
		}
	}
}
