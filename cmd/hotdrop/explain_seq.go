package main

import (
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/matcher"
)

// explainedSequence says a row of `hotdrop explain` stands for a whole frame sequence.
type explainedSequence struct {
	Frames int    `json:"frames"`
	First  int64  `json:"first"`
	Last   int64  `json:"last"`
	Size   int64  `json:"size"`
	Hold   string `json:"hold,omitempty"` // the sequence as a whole: incomplete_sequence, suspect_frame
	Reason string `json:"reason,omitempty"`
}

// groupSequences shows the frames of one sequence that were judged alike as one explanation
// (shot_010.[1001-2400].exr, 1,400 frames) instead of 1,400, and judges the sequence as the
// daemon would once its request is complete: gaps, frames outside the request's range,
// suspect frames. Frames judged differently from the rest keep rows of their own.
func groupSequences(reqs []config.Request, out []explained) []explained {
	type group struct {
		first   int // index in out of the row kept
		frames  []delivery.FrameFile
		numbers []int64
		frame   matcher.Frame
	}
	groups := map[string]*group{}
	keep := make([]bool, len(out))
	for i, e := range out {
		keep[i] = true
		if !e.Exists || e.Auxiliary != "" {
			continue
		}
		rel, err := filepath.Rel(e.Root, e.Path)
		if err != nil {
			continue
		}
		f, ok := matcher.SplitFrame(filepath.ToSlash(rel))
		if !ok {
			continue
		}
		k := e.Root + "\x00" + f.Key + "\x00" + e.Verdict
		var size int64
		if fi, err := os.Lstat(e.Path); err == nil {
			size = fi.Size()
		}
		g := groups[k]
		if g == nil {
			g = &group{first: i, frame: f}
			groups[k] = g
		} else {
			keep[i] = false
		}
		g.frames = append(g.frames, delivery.FrameFile{Name: filepath.ToSlash(rel), Size: size})
		g.numbers = append(g.numbers, f.Number)
		g.frame.Width = min(g.frame.Width, f.Width)
	}
	for _, g := range groups {
		if len(g.frames) < 2 {
			continue
		}
		e := &out[g.first]
		ns := matcher.SortFrames(g.numbers)
		s := &explainedSequence{Frames: len(g.frames), First: ns[0], Last: ns[len(ns)-1]}
		for _, f := range g.frames {
			s.Size += f.Size
		}
		var fields map[string]string
		for _, r := range reqs {
			if r.ID == e.Request {
				fields = r.Fields
			}
		}
		suspect := e.verdict.Profile != nil && e.verdict.Profile.SuspectFrames
		if e.Delivered == nil { // delivered frames are not judged again, as a sequence neither
			s.Hold, s.Reason = delivery.CheckSequence(g.frames, fields, suspect)
		}
		e.Path = filepath.Join(e.Root, filepath.FromSlash(matcher.SequenceName(g.frame, s.First, s.Last, g.frame.Width)))
		e.Sequence = s
		if d := e.Delivered; d != nil {
			copied := *d
			copied.RemotePath = path.Join(path.Dir(d.RemotePath), filepath.Base(e.Path))
			e.Delivered = &copied
		}
		if s.Hold != "" && e.Hold == nil {
			e.Verdict = "held " + s.Hold + " (once the request is complete)"
		}
	}
	var kept []explained
	for i, e := range out {
		if keep[i] {
			kept = append(kept, e)
		}
	}
	return kept
}

func sequenceLine(s *explainedSequence) string {
	line := fmt.Sprintf("  sequence: %d frames (%d-%d), %s, judged alike: shown once", s.Frames, s.First, s.Last, humanBytes(s.Size))
	if s.Hold != "" {
		line += fmt.Sprintf("\n  sequence verdict: held %s: %s", s.Hold, s.Reason)
	}
	return line
}
