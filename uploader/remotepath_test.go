package uploader

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestRemotePath(t *testing.T) {
	fields := map[string]string{
		"package_id":  "PKG-77812",
		"source_type": "Subtitle",
		"sdh":         "SDH/CC",
		"me":          "Audio M&E",
		"dots":        "..",
		"dotdir":      "../../etc",
		"hidden":      ".secret",
		"spaces":      "  A  &  B  ",
		"empty":       "",
		"unicode":     "Café",
	}
	const std = "{package_id}/{source_type}/{name}"
	tests := []struct {
		tmpl, name string
		want       string
		wantErr    string
	}{
		{std, "ep103_fr-FR.ttml", "PKG-77812/Subtitle/ep103_fr-FR.ttml", ""},
		{"{sdh}/{name}", "a.scc", "SDH_CC/a.scc", ""},
		{"{me}/{name}", "a.wav", "Audio_M_E/a.wav", ""},
		{"{dots}/{name}", "a.wav", "_/a.wav", ""},
		{"{dotdir}/{name}", "a.wav", "_etc/a.wav", ""},
		{"{hidden}/{name}", "a.wav", "_secret/a.wav", ""},
		{"{spaces}/{name}", "a.wav", "A_B/a.wav", ""},
		{"{empty}/{source_type}/{name}", "a.wav", "Subtitle/a.wav", ""},
		{"{unicode}/{name}", "a.wav", "Caf_/a.wav", ""},
		{std, "reel 1/Audio M&E.wav", "PKG-77812/Subtitle/reel 1/Audio M&E.wav", ""},
		{"in/{package_id}_{source_type}/{name}", "a", "in/PKG-77812_Subtitle/a", ""},
		{std, "../x", "", "not a clean relative path"},
		{std, "a/../../x", "", "not a clean relative path"},
		{std, "/etc/passwd", "", "absolute"},
		{std, "a//b", "", "not a clean relative path"},
		{std, "", "", "empty"},
		{"{episode}/{name}", "a", "", "unknown field {episode}"},
		{"/abs/{name}", "a", "", "relative"},
		{"../{name}", "a", "", "leaves the destination folder"},
		{"{package_id}/../../{name}", "a", "", "leaves the destination folder"},
		{"{package_id}", "a", "", "{name}"},
		{"{package_id/{name}", "a", "", "without"},
		{"x}/{name}", "a", "", "without"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl+"|"+tt.name, func(t *testing.T) {
			got, err := RemotePath(tt.tmpl, fields, tt.name)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RemotePath(%q, %q) = %q, %v; want error containing %q", tt.tmpl, tt.name, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("RemotePath(%q, %q) = %q, %v; want %q", tt.tmpl, tt.name, got, err, tt.want)
			}
		})
	}
}

func TestSafeElementNeverEscapes(t *testing.T) {
	for _, v := range []string{"..", "...", "../..", "./.", "a/../b", "/", "\\..\\", ". .", "..\x00.."} {
		got := safeElement(v)
		if strings.Contains(got, "/") || strings.Contains(got, "..") || strings.HasPrefix(got, ".") {
			t.Errorf("safeElement(%q) = %q, still unsafe", v, got)
		}
	}
}

// The uploader refuses what no names policy may send (issue 10), also for `hotdrop send`.
func TestCheckNameRefusesControlAndBackslash(t *testing.T) {
	for _, name := range []string{"a\nb.ttml", "a\rb", "..\\evil.ttml", "sub\\x", "del\x7f", "../x", "a//b"} {
		if err := checkName(name); err == nil {
			t.Errorf("checkName(%q) = nil, want a refusal", name)
		}
	}
	for _, name := range []string{"a.ttml", "sub/Audio M&E.wav", "été/ep1.ttml"} {
		if err := checkName(name); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", name, err)
		}
	}
}

// TestPartialOfIsWhereTheUploaderWrites: PartialOf (what recovery stats to tell whether a
// rename happened) names the file the target writes, for each temp_name.
func TestPartialOfIsWhereTheUploaderWrites(t *testing.T) {
	for _, tmpl := range []string{"", ".{name}.partial", "{name}.partial", "_partial/{name}"} {
		root := t.TempDir()
		u := newUploader(t, Options{URL: "file://" + root, TempName: tmpl})
		tg := localTargetAt(t, root, u.tempName)
		rel := "SR-1/Audio/a.wav"
		want := tg.partial(tg.abs(rel))
		if got := filepath.Join(root, filepath.FromSlash(u.PartialOf(rel))); got != want {
			t.Errorf("temp_name %q: PartialOf(%s) = %s, the target writes %s", tmpl, rel, got, want)
		}
	}
}
