package checks

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestMeasureProbe measures what the content check adds per file: one ffprobe on a 2 GiB
// movie, and 1,000 small WAVs through the Checker two at a time (as the engine runs them).
// It writes about 2 GiB, so it runs only with HOTDROP_MEASURE=1 (make bench-probe):
//
//	HOTDROP_MEASURE=1 go test -run TestMeasureProbe -v ./checks/
func TestMeasureProbe(t *testing.T) {
	if os.Getenv("HOTDROP_MEASURE") != "1" {
		t.Skip("set HOTDROP_MEASURE=1 to measure probe times (writes 2 GiB)")
	}
	needFFmpeg(t)
	dir := t.TempDir()

	// 2 GiB: 518 frames of uncompressed 1080p UYVY and six channels of PCM, in a MOV whose
	// index sits at the end, as a camera or a conform writes it.
	start := time.Now()
	big := ffmpeg(t, dir, "big.mov", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000",
		"-frames:v", "518", "-ac", "6", "-c:v", "rawvideo", "-pix_fmt", "uyvy422", "-c:a", "pcm_s24le", "-shortest")
	fi, _ := os.Stat(big)
	t.Logf("wrote %s (%.2f GiB) in %v", filepath.Base(big), float64(fi.Size())/(1<<30), time.Since(start).Round(time.Millisecond))
	c := New(Options{Probe: true})
	md := Metadata{"frame_rate": {Value: "25", Origin: "request"}, "audio_config": {Value: "5.1", Origin: "request"}}
	for i := 0; i < 3; i++ {
		c = New(Options{Probe: true}) // no cache: a probe each time
		t0 := time.Now()
		res, err := c.CheckFile(context.Background(), FileInput{Path: big, Name: "big.mov", Open: opener(big), SourceType: "AV (Muxed)", Metadata: md})
		if err != nil || res.Hold != "" {
			t.Fatalf("CheckFile(big.mov) = %+v, %v", res, err)
		}
		t.Logf("probe of the 2 GiB movie, run %d: %v (%s)", i+1, time.Since(t0).Round(time.Millisecond), res.Summary)
	}
	t0 := time.Now()
	if _, err := c.CheckFile(context.Background(), FileInput{Path: big, Name: "big.mov", Open: opener(big), SourceType: "AV (Muxed)", Metadata: md}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the same version again (cached): %v", time.Since(t0).Round(time.Microsecond))

	// 1,000 small WAVs (one second, stereo, 48 kHz), each its own file.
	one := audio(t, dir, "one.wav", 2, 48000)
	data, _ := os.ReadFile(one)
	wavs := filepath.Join(dir, "wavs")
	os.Mkdir(wavs, 0o755)
	var paths []string
	for i := 0; i < 1000; i++ {
		p := filepath.Join(wavs, "stem_"+strconv.Itoa(i)+".wav")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for _, workers := range []int{1, 2} {
		c := New(Options{Probe: true})
		jobs := make(chan string)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed int
		t0 := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range jobs {
					res, err := c.CheckFile(context.Background(), FileInput{Path: p, Name: filepath.Base(p), Open: opener(p), SourceType: "Audio M&E",
						Metadata: Metadata{"audio_config": {Value: "2.0", Origin: "request"}}})
					if err != nil || res.Hold != "" {
						mu.Lock()
						failed++
						mu.Unlock()
					}
				}
			}()
		}
		for _, p := range paths {
			jobs <- p
		}
		close(jobs)
		wg.Wait()
		el := time.Since(t0)
		if failed > 0 {
			t.Errorf("%d of 1000 WAVs failed the check", failed)
		}
		t.Logf("1,000 small WAVs, %d at a time: %v in all, %v per file", workers, el.Round(time.Millisecond), (el / 1000).Round(time.Microsecond))
	}
}
