package checks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// needFFmpeg skips a test without FFmpeg, except under CI=true, where CI installs it and a
// missing tool is a failure.
func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed, and CI=true: .ci/run installs ffmpeg", tool)
			}
			t.Skipf("%s is not installed (apt-get install ffmpeg); skipping", tool)
		}
	}
}

// ffmpeg runs ffmpeg with args to write dir/name, and returns the path.
func ffmpeg(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	full := append([]string{"-v", "error", "-y", "-nostdin"}, args...)
	full = append(full, out)
	if msg, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
	}
	return out
}

// video writes a one-second clip: testsrc2 at rate and size, with sine audio of ch channels
// at sr Hz, tagged lang ("" = no tag).
func video(t testing.TB, dir, name, rate, size string, ch, sr int, lang string) string {
	t.Helper()
	args := []string{"-f", "lavfi", "-i", "testsrc2=rate=" + rate + ":size=" + size + ":duration=1",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=" + itoa(sr) + ":duration=1",
		"-ac", itoa(ch), "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"}
	if lang != "" {
		args = append(args, "-metadata:s:a:0", "language="+lang)
	}
	return ffmpeg(t, dir, name, args...)
}

// audio writes a one-second PCM WAV of ch channels at sr Hz.
func audio(t testing.TB, dir, name string, ch, sr int) string {
	t.Helper()
	return ffmpeg(t, dir, name, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate="+itoa(sr)+":duration=1",
		"-ac", itoa(ch), "-c:a", "pcm_s24le")
}

func itoa(n int) string { return strconv.Itoa(n) }

func opener(p string) func() (*os.File, error) {
	return func() (*os.File, error) { return os.Open(p) }
}
