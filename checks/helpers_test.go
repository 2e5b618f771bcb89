package checks

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/hotdrop/hotdrop/internal/ffmpegtest"
)

func needFFmpeg(t testing.TB) { ffmpegtest.Need(t) }

// ffmpeg runs ffmpeg with args to write dir/name, and returns the path.
func ffmpeg(t testing.TB, dir, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	ffmpegtest.Run(t, out, args...)
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
