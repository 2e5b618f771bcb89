package checks

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/hotdrop/hotdrop/internal/safefs"
)

// Hold reasons (SPEC.md, Words).
const (
	HoldMediaMismatch   = "media_mismatch"
	HoldUnreadableMedia = "unreadable_media"
	HoldIMFMismatch     = "imf_mismatch"
)

// Options configure a Checker. cmd/hotdrop assembles them from [checks] and the profiles.
type Options struct {
	// Probe is [checks] probe: false turns the media probe and timed-text checks off (IMF
	// packages are still checked against their packing lists).
	Probe  bool
	Prober Prober
	// Profiles give the checks by source type name (as the matcher spells it); a source type
	// without one is not checked. BuiltinProfiles is the default.
	Profiles map[string]Profile
}

// Checker looks inside files and packages. It is safe for concurrent use. It keeps what
// ffprobe said about each file version (path, size, mtime, inode) so that a file is probed
// once however often its metadata is compared again.
type Checker struct {
	opt Options

	mu    sync.Mutex
	cache map[fileKey]probed
}

type fileKey struct {
	path  string
	size  int64
	mtime time.Time
	inode uint64
}

type probed struct {
	media *Media
	tt    *TimedText
	err   error
}

// maxCache bounds the probe cache; past it the cache starts again (a daemon sees each
// version once, and a full rescan re-probes nothing it still holds).
const maxCache = 20_000

// New makes a Checker.
func New(opt Options) *Checker {
	if opt.Profiles == nil {
		opt.Profiles = BuiltinProfiles()
	}
	return &Checker{opt: opt, cache: map[fileKey]probed{}}
}

// Profile returns the checks for a source type, and whether there are any.
func (c *Checker) Profile(sourceType string) (Profile, bool) {
	p, ok := c.opt.Profiles[sourceType]
	return p, ok
}

// NeedsProbe says whether some profile asks for the media probe while it is on: then a
// missing ffprobe is an error, not a reason to skip.
func (c *Checker) NeedsProbe() bool {
	if !c.opt.Probe {
		return false
	}
	for _, p := range c.opt.Profiles {
		if p.Probe {
			return true
		}
	}
	return false
}

// Inspects says whether CheckFile would look at a file of this source type and name.
func (c *Checker) Inspects(sourceType, name string) bool {
	p, ok := c.opt.Profiles[sourceType]
	return ok && c.opt.Probe && p.Kind(name) != ""
}

// IsPackage says whether requests of this source type are packages checked as a whole.
func (c *Checker) IsPackage(sourceType string) bool {
	p, ok := c.opt.Profiles[sourceType]
	return ok && p.IMF
}

// FileInput is one settled file to look inside.
type FileInput struct {
	Path string // absolute, for messages and the cache
	Name string // the file's name inside its drop folder
	// Open opens the file safely (beneath watch.root, no link, still the settled version).
	Open       func() (*os.File, error)
	SourceType string
	Metadata   Metadata
}

// FileResult is what CheckFile found.
type FileResult struct {
	Kind       string // "media", "timed_text"; "" when nothing applies to this file
	Findings   []Finding
	Properties map[string]string // key properties (frame_rate, resolution, duration...)
	Hold       string            // "", HoldMediaMismatch or HoldUnreadableMedia
	Message    string            // the hold's sentence
	Summary    string            // one line for people, pass or not
}

// CheckFile looks inside one file as its source type's profile says. The error is for a
// check that could not be made (ffprobe missing, timed out, the file could not be opened):
// the file is neither passed nor held for its content then.
func (c *Checker) CheckFile(ctx context.Context, in FileInput) (FileResult, error) {
	p, ok := c.opt.Profiles[in.SourceType]
	if !ok || !c.opt.Probe {
		return FileResult{}, nil
	}
	kind := p.Kind(in.Name)
	if kind == "" {
		return FileResult{}, nil
	}
	pr, err := c.look(ctx, in, kind)
	if err != nil {
		return FileResult{}, err
	}
	res := FileResult{Kind: kind}
	switch {
	case pr.err != nil && errors.Is(pr.err, errNotTTML):
		return FileResult{}, nil // an .xml that is not timed text (Non-IMF delivery's other XML)
	case pr.err != nil:
		res.Hold = HoldUnreadableMedia
		res.Message = fmt.Sprintf("%s cannot be read as %s: %v", in.Name, kindWords(kind), strings.TrimPrefix(pr.err.Error(), ErrUnreadable.Error()+": "))
		res.Summary = res.Message
		return res, nil
	case pr.media != nil:
		res.Findings = CompareMedia(pr.media, in.Metadata, p)
		res.Properties = Properties(pr.media)
	default:
		res.Findings = CompareTimedText(pr.tt, in.Metadata, p)
		res.Properties = map[string]string{"format": pr.tt.Format, "cues": fmt.Sprint(pr.tt.Cues)}
		if pr.tt.FrameRate.Den != 0 {
			res.Properties[FrameRate] = pr.tt.FrameRate.String()
		}
		if pr.tt.Lang != "" {
			res.Properties[Language] = pr.tt.Lang
		}
	}
	if bad := Mismatches(res.Findings); len(bad) > 0 {
		parts := make([]string, len(bad))
		for i, f := range bad {
			parts[i] = f.String()
		}
		res.Hold = HoldMediaMismatch
		res.Message = fmt.Sprintf("%s does not match its metadata: %s", in.Name, strings.Join(parts, "; "))
	}
	res.Summary = summary(res)
	return res, nil
}

func kindWords(kind string) string {
	if kind == "timed_text" {
		return "timed text"
	}
	return "media (ffprobe)"
}

func summary(r FileResult) string {
	var parts []string
	for _, k := range []string{FrameRate, Resolution, Duration, Channels, SampleRate, Language, "format", "cues"} {
		if v, ok := r.Properties[k]; ok {
			parts = append(parts, k+" "+v)
		}
	}
	var agrees, differs []string
	for _, f := range r.Findings {
		if f.OK {
			agrees = appendNew(agrees, f.Property)
		} else {
			differs = appendNew(differs, f.Property)
		}
	}
	s := strings.Join(parts, ", ")
	if len(differs) > 0 {
		s += "; disagrees on " + strings.Join(differs, ", ")
	}
	if len(agrees) > 0 {
		s += "; agrees on " + strings.Join(agrees, ", ")
	}
	if len(r.Findings) == 0 {
		s += "; no property that both the file and the metadata state"
	}
	return s
}

// look opens the file, probes or parses it, and caches the outcome by the file's version.
func (c *Checker) look(ctx context.Context, in FileInput, kind string) (probed, error) {
	if in.Open == nil {
		return probed{}, fmt.Errorf("%s: no safe way to open it was given", in.Path)
	}
	f, err := in.Open()
	if err != nil {
		return probed{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return probed{}, err
	}
	key := fileKey{path: in.Path + "\x00" + kind, size: fi.Size(), mtime: fi.ModTime(), inode: safefs.Inode(fi)}
	c.mu.Lock()
	pr, ok := c.cache[key]
	c.mu.Unlock()
	if ok {
		return pr, nil
	}
	if kind == "media" {
		m, err := c.opt.Prober.Probe(ctx, f)
		if err != nil && !errors.Is(err, ErrUnreadable) {
			return probed{}, err // the tool, not the file: not cached, tried again
		}
		pr = probed{media: m, err: err}
	} else {
		format := strings.ToLower(strings.TrimPrefix(path.Ext(in.Name), "."))
		tt, err := ParseTimedText(format, f)
		if err != nil && !errors.Is(err, ErrUnreadable) && !errors.Is(err, errNotTTML) {
			return probed{}, err
		}
		pr = probed{tt: tt, err: err}
	}
	c.mu.Lock()
	if len(c.cache) >= maxCache {
		clear(c.cache)
	}
	c.cache[key] = pr
	c.mu.Unlock()
	return pr, nil
}
