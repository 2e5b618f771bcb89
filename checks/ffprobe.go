package checks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/internal/bounded"
)

// Media is what ffprobe found in one file.
type Media struct {
	Format   string  // the demuxer's name ("mov,mp4,m4a,3gp,3g2,mj2", "wav")
	Duration float64 // seconds; 0 = unknown
	Streams  []Stream
}

// Stream is one stream of a Media file.
type Stream struct {
	Index      int
	Kind       string // "video", "audio", "subtitle", "data"
	Codec      string
	Width      int
	Height     int
	FrameRate  Rate // video; zero when unknown
	SampleRate int  // audio, Hz
	Channels   int
	Layout     string // ffprobe's channel_layout ("5.1(side)", "stereo"); "" = unknown
	Language   string // the stream's language tag as written ("fre", "eng"); "" = none
}

// ErrUnreadable is wrapped when ffprobe ran and could not make sense of the file: it is not
// media (or not a format hotdrop lets ffprobe read). Other errors are about running the tool.
var ErrUnreadable = errors.New("unreadable media")

// ErrNoTool is wrapped when the ffprobe binary cannot be found or started.
var ErrNoTool = errors.New("ffprobe is not available")

// Prober runs ffprobe. The zero value uses "ffprobe" from PATH with the default bounds.
type Prober struct {
	Path      string        // the ffprobe binary; "" = "ffprobe" from PATH
	Timeout   time.Duration // per file; 0 = config.DefaultProbeTimeout (checks.timeout)
	MaxOutput int64         // bytes of JSON read; 0 = DefaultMaxOutput
}

// DefaultMaxOutput bounds the JSON one probe may print: for a file with a few dozen streams
// it is a few tens of KB. (Its time bound is checks.timeout: ffprobe reads headers, not the
// whole file, so a 2 GiB file is probed in a fraction of a second and a minute means a hang.)
const DefaultMaxOutput = 4 << 20

// formats are the demuxers ffprobe may use: the containers media deliveries come in. Others
// are refused as unreadable, among them playlists (hls, concat) that would make ffprobe open
// other files or the network.
const formats = "mov,mp4,m4a,3gp,3g2,mj2,mxf,wav,w64,aiff,ac3,eac3,matroska,webm,mpegts,flac,mp3,avi"

// Available says whether the ffprobe binary can be found, with its path.
func (p Prober) Available() (string, error) {
	bin := p.Path
	if bin == "" {
		bin = "ffprobe"
	}
	abs, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("%w: %v (install FFmpeg, e.g. apt-get install ffmpeg, or set checks.ffprobe)", ErrNoTool, err)
	}
	return abs, nil
}

// Probe runs ffprobe on the open file f (a regular file the caller opened safely) and
// decodes what it reports. On Linux ffprobe reads the very descriptor given (through
// /proc/self/fd), so a path swapped meanwhile changes nothing; elsewhere it opens f's name.
// When hotdrop runs as root, ffprobe runs as the file's owner (or nobody for root's files).
func (p Prober) Probe(ctx context.Context, f *os.File) (*Media, error) {
	bin, err := p.Available()
	if err != nil {
		return nil, err
	}
	timeout, maxOut := p.Timeout, p.MaxOutput
	if timeout <= 0 {
		timeout = config.DefaultProbeTimeout
	}
	if maxOut <= 0 {
		maxOut = DefaultMaxOutput
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	input := "file:" + f.Name()
	if runtime.GOOS == "linux" {
		input = "file:/proc/self/fd/3"
	}
	cmd := exec.CommandContext(ctx, bin, "-v", "error", "-hide_banner",
		"-protocol_whitelist", "file", "-format_whitelist", formats,
		"-show_streams", "-show_format", "-of", "json", input)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.ExtraFiles = []*os.File{f}
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = sysProcAttr(f)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: 8 << 10}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoTool, err)
	}
	out, rerr := io.ReadAll(io.LimitReader(stdout, maxOut+1))
	if int64(len(out)) > maxOut {
		_ = cmd.Process.Kill()
	}
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	words := strings.TrimSpace(stderr.String())
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("ffprobe did not finish within %v", timeout)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case int64(len(out)) > maxOut:
		return nil, fmt.Errorf("ffprobe wrote more than %d bytes about one file", maxOut)
	case rerr != nil:
		return nil, fmt.Errorf("reading ffprobe's output: %w", rerr)
	case werr != nil:
		if strings.Contains(words, "Permission denied") {
			return nil, fmt.Errorf("ffprobe could not open the file: %s", oneLine(words))
		}
		if strings.Contains(words, "Option not found") || strings.Contains(words, "Unrecognized option") {
			// This ffprobe does not take hotdrop's options: the tool, not the file.
			return nil, fmt.Errorf("%w: %s does not accept hotdrop's options: %s", ErrNoTool, bin, oneLine(words))
		}
		var ee *exec.ExitError
		if errors.As(werr, &ee) && ee.Exited() {
			if words == "" {
				words = werr.Error()
			}
			return nil, fmt.Errorf("%w: ffprobe says: %s", ErrUnreadable, oneLine(words))
		}
		return nil, fmt.Errorf("ffprobe: %v %s", werr, oneLine(words))
	}
	return ParseFFprobe(out)
}

// limitedBuffer keeps the first max bytes written to it and drops the rest, so a chatty
// child can neither block nor grow memory.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(b []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func sysProcAttr(f *os.File) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	setUnprivileged(a, f)
	return a
}

// ffprobeLimits bound ffprobe's JSON before it is decoded: it is small and shallow.
var ffprobeLimits = bounded.Limits{MaxBytes: DefaultMaxOutput, MaxDepth: 8, MaxKeys: 200_000}

// ParseFFprobe decodes the JSON of `ffprobe -show_streams -show_format -of json`.
func ParseFFprobe(data []byte) (*Media, error) {
	if err := bounded.JSON(data, ffprobeLimits); err != nil {
		return nil, fmt.Errorf("ffprobe's output: %w", err)
	}
	var raw struct {
		Streams []struct {
			Index         int               `json:"index"`
			CodecType     string            `json:"codec_type"`
			CodecName     string            `json:"codec_name"`
			Width         int               `json:"width"`
			Height        int               `json:"height"`
			RFrameRate    string            `json:"r_frame_rate"`
			AvgFrameRate  string            `json:"avg_frame_rate"`
			SampleRate    string            `json:"sample_rate"`
			Channels      int               `json:"channels"`
			ChannelLayout string            `json:"channel_layout"`
			Duration      string            `json:"duration"`
			Tags          map[string]string `json:"tags"`
			Disposition   map[string]int    `json:"disposition"`
		} `json:"streams"`
		Format struct {
			FormatName string `json:"format_name"`
			Duration   string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("ffprobe's output is not the JSON expected: %w", err)
	}
	m := &Media{Format: raw.Format.FormatName}
	m.Duration, _ = strconv.ParseFloat(raw.Format.Duration, 64)
	for _, s := range raw.Streams {
		if s.Disposition["attached_pic"] == 1 {
			continue // cover art, not a picture stream
		}
		st := Stream{Index: s.Index, Kind: s.CodecType, Codec: s.CodecName, Width: s.Width, Height: s.Height,
			Channels: s.Channels, Layout: s.ChannelLayout}
		st.SampleRate, _ = strconv.Atoi(s.SampleRate)
		if s.CodecType == "video" {
			if r, err := ParseRate(s.AvgFrameRate); err == nil && r.Num > 0 {
				st.FrameRate = r
			} else if r, err := ParseRate(s.RFrameRate); err == nil && r.Num > 0 {
				st.FrameRate = r
			}
		}
		for k, v := range s.Tags {
			if strings.EqualFold(k, "language") {
				st.Language = v
			}
		}
		if m.Duration == 0 {
			if d, err := strconv.ParseFloat(s.Duration, 64); err == nil && d > m.Duration {
				m.Duration = d
			}
		}
		m.Streams = append(m.Streams, st)
	}
	if len(m.Streams) == 0 {
		return nil, fmt.Errorf("%w: ffprobe found no audio or video stream", ErrUnreadable)
	}
	return m, nil
}
