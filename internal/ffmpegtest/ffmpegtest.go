// Package ffmpegtest helps tests make real media with FFmpeg: a test that needs it skips with
// a clear message where FFmpeg is not installed, except under CI=true, where it fails (CI
// installs ffmpeg, and a check that never ran must not pass).
package ffmpegtest

import (
	"os"
	"os/exec"
	"testing"
)

// Need skips (or, under CI=true, fails) t unless ffmpeg and ffprobe are on PATH.
func Need(t testing.TB) {
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

// Run runs ffmpeg quietly with args, writing out.
func Run(t testing.TB, out string, args ...string) {
	t.Helper()
	full := append(append([]string{"-v", "error", "-y", "-nostdin"}, args...), out)
	if msg, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, msg)
	}
}
