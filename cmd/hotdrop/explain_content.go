package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hotdrop/hotdrop/checks"
	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/safefs"
	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

// explainedContent is what looking inside the file found, as the daemon would before sending.
type explainedContent struct {
	Kind       string            `json:"kind"` // "media", "timed_text", "imf_package"
	Summary    string            `json:"summary"`
	Findings   []explainedFind   `json:"findings,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	Warnings   []string          `json:"warnings,omitempty"`
	Error      string            `json:"error,omitempty"` // the check could not be made
	hold       string            // a package's hold sentence
}

type explainedFind struct {
	Property string `json:"property"`
	OK       bool   `json:"ok"`
	Detail   string `json:"detail"`
}

// explainContent runs the content checks for explain, each IMF package once.
type explainContent struct {
	cfg  *config.Config
	c    *checks.Checker
	pkgs map[string]*explainedContent
}

func newExplainContent(cfg *config.Config) *explainContent {
	return &explainContent{cfg: cfg, c: newChecker(cfg), pkgs: map[string]*explainedContent{}}
}

// explain adds the content check to a file that nothing else holds, and a content hold to
// its verdict.
func (x *explainContent) explain(ctx context.Context, e *explained) {
	if !e.Exists || e.Hold != nil || e.Delivered != nil || e.Auxiliary != "" || e.Trace == nil || e.Request == "" {
		return
	}
	st := e.Metadata["source_type"].Value
	folder := e.Root
	if x.c.IsPackage(st) {
		e.Content = x.pkg(ctx, folder)
		if e.Content.hold != "" {
			e.Hold = &matcher.Hold{Code: checks.HoldIMFMismatch, Message: e.Content.hold}
			e.Verdict = "held " + e.Hold.Code
		}
		return
	}
	name := filepath.ToSlash(relOr(folder, e.Path))
	md := checks.Metadata{}
	for k, v := range delivery.MetaValues(matcher.Metadata(e.Metadata), folder) {
		md[k] = checks.Expected{Value: v.Value, Origin: v.Origin}
	}
	base := x.cfg.Watch.Root
	res, err := x.c.CheckFile(ctx, checks.FileInput{Path: e.Path, Name: name, SourceType: st, Metadata: md,
		Open: func() (*os.File, error) { return safefs.OpenUnder(base, e.Path) }})
	if err != nil {
		e.Content = &explainedContent{Kind: "media", Error: err.Error()}
		e.Hold = &matcher.Hold{Code: delivery.ReasonUnreadableMedia, Message: fmt.Sprintf("%s could not be checked before sending: %v", name, err)}
		e.Verdict = "held " + e.Hold.Code
		return
	}
	if res.Kind == "" {
		return
	}
	c := &explainedContent{Kind: res.Kind, Summary: res.Summary, Properties: res.Properties}
	for _, f := range res.Findings {
		c.Findings = append(c.Findings, explainedFind{Property: f.Property, OK: f.OK, Detail: f.String()})
	}
	e.Content = c
	if res.Hold != "" {
		e.Hold = &matcher.Hold{Code: res.Hold, Message: res.Message}
		e.Verdict = "held " + res.Hold
	}
}

func (x *explainContent) pkg(ctx context.Context, folder string) *explainedContent {
	if c, ok := x.pkgs[folder]; ok {
		return c
	}
	c := &explainedContent{Kind: "imf_package"}
	x.pkgs[folder] = c
	var files []string
	_ = filepath.WalkDir(folder, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if aux, _ := (matcherAux{x.cfg}).is(p); !aux {
				files = append(files, filepath.ToSlash(relOr(folder, p)))
			}
		}
		return nil
	})
	res, err := checks.CheckPackage(ctx, checks.PackageInput{Folder: folder, Root: x.cfg.Watch.Root, Files: files})
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Summary, c.Warnings, c.hold = res.Summary(), res.Warnings, res.Message()
	for _, p := range res.Problems {
		c.Findings = append(c.Findings, explainedFind{Property: "imf", Detail: p.String()})
	}
	for _, cp := range res.Compositions {
		c.Findings = append(c.Findings, explainedFind{Property: "cpl", OK: true, Detail: fmt.Sprintf("%s %q", cp.ID, cp.Title)})
	}
	return c
}

// matcherAux tells hotdrop's own and the writers' auxiliary files (never part of a package
// delivery) by name, as the watcher's ignore list and the matcher do.
type matcherAux struct{ cfg *config.Config }

func (a matcherAux) is(p string) (bool, string) {
	base := filepath.Base(p)
	if watcher.Ignored(a.cfg.Watch.Ignore, base) || base == a.cfg.Watch.ReadyMarker || base == "_metadata.toml" || base == "_metadata.json" {
		return true, ""
	}
	for _, ext := range []string{".toml", ".json", ".md5", ".sha256", ".xxh64"} {
		if filepath.Ext(base) == ext {
			if _, err := os.Lstat(p[:len(p)-len(ext)]); err == nil {
				return true, ""
			}
		}
	}
	return false, ""
}

func relOr(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return filepath.Base(p)
}

// writeContent prints the content check.
func writeContent(w io.Writer, c *explainedContent) {
	if c == nil {
		return
	}
	what := map[string]string{"media": "media (ffprobe)", "timed_text": "timed text", "imf_package": "IMF package"}[c.Kind]
	if c.Error != "" {
		fmt.Fprintf(w, "  content %s: could not be checked: %s\n", what, c.Error)
		return
	}
	fmt.Fprintf(w, "  content %s: %s\n", what, c.Summary)
	for _, f := range c.Findings {
		mark := "ok  "
		if !f.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  check %s %s\n", mark, f.Detail)
	}
	for _, warn := range c.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
}
