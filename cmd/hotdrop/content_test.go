package main

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/ffmpegtest"
	"github.com/hotdrop/hotdrop/report"
)

const contentRequests = `
[[request]]
id = "SR-10"
title = "Wednesday"
package_id = "PKG-9"
source_type = "AV (Muxed)"
language = "fr-FR"
frame_rate = "24"

[[request]]
id = "SR-11"
title = "Wednesday"
package_id = "PKG-9"
source_type = "Audio Print Master"
language = "fr-FR"
audio_config = "5.1"
files = 1

[[request]]
id = "SR-12"
title = "Wednesday"
package_id = "PKG-9"
source_type = "IMF"
language = "fr-FR"

[[request]]
id = "SR-13"
title = "Wednesday"
package_id = "PKG-9"
source_type = "Subtitle"
language = "fr-FR"
frame_rate = "23.976"

[[request]]
id = "SR-14"
title = "Wednesday"
package_id = "PKG-9"
source_type = "AV (Muxed)"
language = "fr-FR"
`

func needFFmpeg(t *testing.T) { ffmpegtest.Need(t) }

func runFFmpeg(t *testing.T, out string, args ...string) { ffmpegtest.Run(t, out, args...) }

// TestContentChecksEndToEnd runs the daemon with [checks] on against real media: the wrong
// file is held with both values named, the right one goes with its properties in the
// manifest and the file.delivered event, and an IMF package goes only when it agrees with
// its packing list.
func TestContentChecksEndToEnd(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, d := range []string{"requests.d", "root", "out"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "requests.d", "r.toml"), []byte(contentRequests), 0o644)
	// ffprobe through a wrapper that counts its runs: each file version is probed once. The
	// count and the wrapper live in /tmp, which the unprivileged child (nobody, when the test runs as root)
	// can reach.
	count, err := os.CreateTemp("", "hotdrop-ffprobe-runs-")
	if err != nil {
		t.Fatal(err)
	}
	count.Close()
	os.Chmod(count.Name(), 0o666)
	t.Cleanup(func() { os.Remove(count.Name()) })
	real, _ := exec.LookPath("ffprobe")
	wrapDir, err := os.MkdirTemp("", "hotdrop-ffprobe-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(wrapDir, 0o755)
	t.Cleanup(func() { os.RemoveAll(wrapDir) })
	wrapper := filepath.Join(wrapDir, "ffprobe")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\necho run >> %s\nexec %s \"$@\"\n", count.Name(), real)), 0o755)
	cfgText := fmt.Sprintf("state_dir = \"state\"\n[watch]\nroot = \"root\"\nsettle = \"400ms\"\npoll = \"100ms\"\n[requests]\nfiles = [\"requests.d/*.toml\"]\n"+
		"[destination]\nurl = \"file://%s\"\n[status]\nlisten = \"\"\n[checks]\nprobe = true\nffprobe = %q\n", out, wrapper)
	cfgPath := filepath.Join(dir, "hotdrop.toml")
	os.WriteFile(cfgPath, []byte(cfgText), 0o644)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	delivered := map[string]delivery.Event{}
	e := &e2e{t: t, dir: dir, cfg: cfg, reload: make(chan struct{}), reloads: make(chan error, 8)}
	e.hooks.events = func(ev delivery.Event) {
		if ev.Type == delivery.EventFileDelivered {
			mu.Lock()
			delivered[ev.File.Name] = ev
			mu.Unlock()
		}
	}
	e.start()
	folder := func(st, id string) string {
		return filepath.Join(cfg.Watch.Root, "Wednesday", st+" fr-FR ["+id+"]")
	}
	av, apm, imf, sub := folder("AV (Muxed)", "SR-10"), folder("Audio Print Master", "SR-11"), folder("IMF", "SR-12"), folder("Subtitle", "SR-13")

	// The 25 fps conform, in the 24 fps request's folder; written aside and renamed in, as
	// a render farm does, so the daemon never sees a half-written movie.
	tmp := filepath.Join(dir, "conform.mov")
	runFFmpeg(t, tmp, "-f", "lavfi", "-i", "testsrc2=rate=25:size=1280x720:duration=1", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=1",
		"-ac", "2", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest", "-metadata:s:a:0", "language=fra")
	os.Rename(tmp, filepath.Join(av, "conform.mov"))
	s := waitFolderStatus(t, av, "held")
	want := "frame_rate: file 25, request 24 (request SR-10)"
	if f := s.Files[0]; f.Reason == nil || f.Reason.Code != "media_mismatch" || !strings.Contains(f.Reason.Message, want) {
		t.Fatalf("conform.mov = %+v; want held media_mismatch naming %q", f, want)
	}
	// The studio changes the request to 25 (a sidecar may add to a request's metadata, not
	// contradict it): the same file goes, probed once.
	os.WriteFile(filepath.Join(dir, "requests.d", "r.toml"), []byte(strings.Replace(contentRequests, `frame_rate = "24"`, `frame_rate = "25"`, 1)), 0o644)
	waitFolderStatus(t, av, "delivered")

	// A stereo mix at 44.1 kHz where 5.1 at 48 kHz was asked.
	tmp = filepath.Join(dir, "mix.wav")
	runFFmpeg(t, tmp, "-f", "lavfi", "-i", "sine=sample_rate=44100:duration=1", "-ac", "2", "-c:a", "pcm_s24le")
	os.Rename(tmp, filepath.Join(apm, "mix.wav"))
	s = waitFolderStatus(t, apm, "held")
	for _, w := range []string{"channels: file 2.0, request 5.1 (audio_config in request SR-11)", "sample_rate: file 44100, request 48000 (profile Audio Print Master default)"} {
		if !strings.Contains(s.Files[0].Reason.Message, w) {
			t.Errorf("mix.wav held %q; want it to name %q", s.Files[0].Reason.Message, w)
		}
	}

	// The German subtitle in the French request's folder, at the wrong frame rate.
	ttml := `<?xml version="1.0" encoding="UTF-8"?><tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:frameRate="25" xml:lang="de-DE"><body><p begin="00:00:01.000" end="00:00:02.000">Hallo</p></body></tt>`
	os.WriteFile(filepath.Join(dir, "sub.ttml"), []byte(ttml), 0o644)
	os.Rename(filepath.Join(dir, "sub.ttml"), filepath.Join(sub, "ep1.ttml"))
	s = waitFolderStatus(t, sub, "held")
	if m := s.Files[0].Reason.Message; !strings.Contains(m, "frame_rate: file 25, request 23.976 (request SR-13)") || !strings.Contains(m, "language: file de-DE, request fr-FR (request SR-13)") {
		t.Errorf("ep1.ttml held %q", m)
	}

	// An IMF package with one MXF re-rendered after its packing list was made.
	video := []byte(strings.Repeat("an MXF essence ", 50000))
	cpl := `<CompositionPlaylist xmlns="http://www.smpte-ra.org/schemas/2067-3/2016"><Id>urn:uuid:c1</Id><ContentTitle>WEDNESDAY_S01_FR</ContentTitle>` +
		`<SegmentList><Segment><SequenceList><MainImageSequence><ResourceList><Resource><TrackFileId>urn:uuid:v1</TrackFileId></Resource></ResourceList></MainImageSequence></SequenceList></Segment></SegmentList></CompositionPlaylist>`
	pkl := func(mxf []byte) string {
		h := func(b []byte) string { s := sha1.Sum(b); return base64.StdEncoding.EncodeToString(s[:]) }
		return fmt.Sprintf(`<PackingList><Id>urn:uuid:p1</Id><AssetList>`+
			`<Asset><Id>urn:uuid:c1</Id><Hash>%s</Hash><Size>%d</Size><Type>text/xml</Type></Asset>`+
			`<Asset><Id>urn:uuid:v1</Id><Hash>%s</Hash><Size>%d</Size><Type>application/mxf</Type></Asset></AssetList></PackingList>`, h([]byte(cpl)), len(cpl), h(mxf), len(mxf))
	}
	am := `<AssetMap><AssetList>` +
		`<Asset><Id>urn:uuid:p1</Id><PackingList>true</PackingList><ChunkList><Chunk><Path>PKL.xml</Path></Chunk></ChunkList></Asset>` +
		`<Asset><Id>urn:uuid:c1</Id><ChunkList><Chunk><Path>CPL.xml</Path></Chunk></ChunkList></Asset>` +
		`<Asset><Id>urn:uuid:v1</Id><ChunkList><Chunk><Path>VIDEO.mxf</Path></Chunk></ChunkList></Asset></AssetList></AssetMap>`
	stage := filepath.Join(dir, "imf")
	os.MkdirAll(stage, 0o755)
	for name, content := range map[string]string{"ASSETMAP.xml": am, "PKL.xml": pkl([]byte("an older render")), "CPL.xml": cpl, "VIDEO.mxf": string(video)} {
		os.WriteFile(filepath.Join(stage, name), []byte(content), 0o644)
		os.Rename(filepath.Join(stage, name), filepath.Join(imf, name))
	}
	os.WriteFile(filepath.Join(imf, "_READY"), nil, 0o644)
	s = waitFolderStatus(t, imf, "held")
	var held report.FileStatus
	for _, f := range s.Files {
		if f.State == "held" {
			held = f
		}
	}
	if held.Name != "VIDEO.mxf" || held.Reason.Code != "imf_mismatch" || !strings.Contains(held.Reason.Message, "asset urn:uuid:v1 (VIDEO.mxf): size is 750000 bytes but PKL.xml says 15") {
		t.Fatalf("IMF held file = %+v", held)
	}
	if n := len(remoteFiles(t, filepath.Join(out, "PKG-9", "IMF"))); n != 0 {
		t.Fatalf("%d files of the package reached the server before it agreed with its packing list", n)
	}
	os.WriteFile(filepath.Join(stage, "PKL.xml"), []byte(pkl(video)), 0o644)
	os.Rename(filepath.Join(stage, "PKL.xml"), filepath.Join(imf, "PKL.xml"))
	waitFolderStatus(t, imf, "delivered")

	// What was delivered carries its properties: the manifest, and the file.delivered event.
	var m delivery.Manifest
	readJSON(t, filepath.Join(out, "PKG-9", "AV_Muxed_", "SR-10.hotdrop.json"), &m)
	if len(m.Files) != 1 || m.Files[0].Media["frame_rate"] != "25" || m.Files[0].Media["resolution"] != "1280x720" || m.Files[0].Media["sample_rate"] != "48000" || m.Files[0].Media["channels"] != "2.0" {
		t.Errorf("SR-10 manifest files = %+v", m.Files)
	}
	readJSON(t, filepath.Join(out, "PKG-9", "IMF", "SR-12.hotdrop.json"), &m)
	if len(m.Compositions) != 1 || m.Compositions[0].Title != "WEDNESDAY_S01_FR" || m.Compositions[0].ID != "urn:uuid:c1" {
		t.Errorf("SR-12 manifest compositions = %+v", m.Compositions)
	}
	if runs, _ := os.ReadFile(count.Name()); strings.Count(string(runs), "run") != 2 {
		t.Errorf("ffprobe ran %d times for two files (conform.mov judged twice, mix.wav once); want once per file", strings.Count(string(runs), "run"))
	}
	mu.Lock()
	ev := delivered["conform.mov"]
	mu.Unlock()
	if ev.File == nil || ev.File.Metadata["media.frame_rate"] != "25" || ev.File.Metadata["media.duration"] == "" {
		t.Errorf("file.delivered for conform.mov = %+v", ev.File)
	}
}

func waitFolderStatus(t *testing.T, folder, want string) report.Status {
	t.Helper()
	return waitFolderStatusWithin(t, folder, want, 60*time.Second)
}

// waitFolderStatusWithin polls a drop folder's status file until its request reaches want.
func waitFolderStatusWithin(t *testing.T, folder, want string, within time.Duration) report.Status {
	t.Helper()
	var last report.Status
	if !eventually(within, func() bool {
		s, err := report.ReadStatus(folder)
		if err != nil || s.Request == nil {
			return false
		}
		last = s
		return s.Request.State == want
	}) {
		t.Fatalf("%s: state %s, want %s; files %+v", filepath.Base(folder), stateOf(last), want, last.Files)
	}
	return last
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// contentConfig writes a config with a file:// destination and the content-check lines
// given, and the content test's requests; it returns the config's path.
func contentConfig(t *testing.T, checksLines string) (dir, cfgPath string) {
	t.Helper()
	dir = t.TempDir()
	for _, d := range []string{"requests.d", "root", "out"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "requests.d", "r.toml"), []byte(contentRequests), 0o644)
	cfgPath = filepath.Join(dir, "hotdrop.toml")
	text := fmt.Sprintf("state_dir = \"state\"\n[watch]\nroot = \"root\"\n[requests]\nfiles = [\"requests.d/*.toml\"]\n[destination]\nurl = \"file://%s\"\n[status]\nlisten = \"\"\n[checks]\n%s\n",
		filepath.Join(dir, "out"), checksLines)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfgPath
}

// TestCheckSaysFFprobeIsMissing: with probing on and profiles asking for it, a missing
// ffprobe is a problem `hotdrop check` reports, never a silent skip; probe = false is fine.
func TestCheckSaysFFprobeIsMissing(t *testing.T) {
	_, cfg := contentConfig(t, "probe = true\nffprobe = \"/nonexistent/ffprobe\"")
	var stdout, stderr strings.Builder
	if code := run([]string{"check", "--config", cfg}, &stdout, &stderr); code != exitFail ||
		!strings.Contains(stdout.String(), "checks.probe is on and source type profiles ask for the media probe, but ffprobe is not available") ||
		!strings.Contains(stdout.String(), "apt-get install ffmpeg") {
		t.Errorf("check with no ffprobe: exit %d\nstdout: %s\nstderr: %s", code, stdout.String(), stderr.String())
	}
	_, cfg = contentConfig(t, "probe = false\nffprobe = \"/nonexistent/ffprobe\"")
	stdout.Reset()
	if code := run([]string{"check", "--config", cfg}, &stdout, &stderr); code != 0 {
		t.Errorf("check with probe = false: exit %d\n%s", code, stdout.String())
	}
}

// TestExplainShowsTheProbe: explain looks inside the file as the daemon would.
func TestExplainShowsTheProbe(t *testing.T) {
	needFFmpeg(t)
	dir, cfg := contentConfig(t, "probe = true")
	// SR-14 names no frame rate: the folder sidecar adds one.
	folder := filepath.Join(dir, "root", "Wednesday", "AV (Muxed) fr-FR [SR-14]")
	os.MkdirAll(folder, 0o755)
	mov := filepath.Join(folder, "conform.mov")
	runFFmpeg(t, mov, "-f", "lavfi", "-i", "testsrc2=rate=25:size=320x180:duration=1", "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=1",
		"-ac", "6", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest")
	os.WriteFile(filepath.Join(folder, "_metadata.toml"), []byte("# from the studio\n\nframe_rate = \"23.976\"\n"), 0o644)
	var stdout, stderr strings.Builder
	run([]string{"explain", "--config", cfg, mov}, &stdout, &stderr)
	for _, want := range []string{
		"content media (ffprobe): frame_rate 25, resolution 320x180, duration ",
		"channels 5.1, sample_rate 48000; disagrees on frame_rate; agrees on sample_rate",
		"check FAIL frame_rate: file 25, request 23.976 (sidecar _metadata.toml:3)",
		"check ok   sample_rate: file 48000, request 48000 (profile AV (Muxed) default)",
		"verdict: held media_mismatch: conform.mov does not match its metadata: frame_rate: file 25, request 23.976 (sidecar _metadata.toml:3)",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("explain output lacks %q:\n%s%s", want, stdout.String(), stderr.String())
		}
	}
	stdout.Reset()
	run([]string{"explain", "--json", "--config", cfg, mov}, &stdout, &stderr)
	var out []struct {
		Verdict string
		Content struct {
			Kind       string
			Properties map[string]string
		}
	}
	if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil || len(out) != 1 || out[0].Verdict != "held media_mismatch" ||
		out[0].Content.Kind != "media" || out[0].Content.Properties["channels"] != "5.1" {
		t.Errorf("explain --json = %+v, %v\n%s", out, err, stdout.String())
	}
}
