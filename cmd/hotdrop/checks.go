package main

import (
	"context"
	"reflect"

	"github.com/hotdrop/hotdrop/checks"
	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/matcher"
)

// newChecker builds the content checker from [checks] and the profiles' checks: the
// built-in source types' checks, each [source_type.checks] applied over them.
func newChecker(cfg *config.Config) *checks.Checker {
	profiles := checks.BuiltinProfiles()
	for _, st := range cfg.SourceTypes {
		name := st.Name
		for n := range profiles {
			if matcher.SourceTypeKey(n) == matcher.SourceTypeKey(st.Name) {
				name = n // a built-in: the matcher spells it the built-in's way
			}
		}
		if st.Checks == nil {
			continue
		}
		p := profiles[name]
		p.Name = name
		c := st.Checks
		set := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&p.Probe, c.Probe)
		set(&p.TimedText, c.TimedText)
		set(&p.IMF, c.IMF)
		set(&p.Video, c.Video)
		if c.Apply != nil {
			p.Apply = map[string]bool{}
			for _, a := range c.Apply {
				p.Apply[a] = true
			}
		}
		if c.SampleRate != 0 {
			p.SampleRate = c.SampleRate
		}
		if c.Channels != "" {
			p.Channels = c.Channels
		}
		if c.DurationTolerance != 0 {
			p.DurationTolerance = c.DurationTolerance
		}
		profiles[name] = p
	}
	return checks.New(checks.Options{
		Probe:    cfg.Checks.Probe,
		Prober:   checks.Prober{Path: cfg.Checks.FFprobe, Timeout: cfg.Checks.Timeout},
		Profiles: profiles,
	})
}

// checksConfig is what the checker is built from: a reload that leaves it alone keeps the
// checker, and with it what ffprobe already said about each file.
func checksConfig(cfg *config.Config) []any {
	out := []any{cfg.Checks}
	for _, st := range cfg.SourceTypes {
		out = append(out, st.Name, st.Checks)
	}
	return out
}

// probeProblem says why probing cannot work when a profile asks for it ("" when it can).
func probeProblem(c *checks.Checker, cfg *config.Config) string {
	if !c.NeedsProbe() {
		return ""
	}
	if _, err := (checks.Prober{Path: cfg.Checks.FFprobe}).Available(); err != nil {
		return "checks.probe is on and source type profiles ask for the media probe, but " + err.Error() +
			"; or set probe = false under [checks] to deliver media unchecked"
	}
	return ""
}

// inspector adapts a *checks.Checker to the engine's Inspector port.
type inspector struct{ c *checks.Checker }

var _ delivery.Inspector = inspector{}

func (i inspector) InspectFile(ctx context.Context, in delivery.FileInspection) (delivery.Inspection, error) {
	md := make(checks.Metadata, len(in.Metadata))
	for k, v := range in.Metadata {
		md[k] = checks.Expected{Value: v.Value, Origin: v.Origin}
	}
	res, err := i.c.CheckFile(ctx, checks.FileInput{Path: in.Path, Name: in.Name, Open: in.Open, SourceType: in.SourceType, Metadata: md})
	if err != nil {
		return delivery.Inspection{}, err
	}
	return delivery.Inspection{Applies: res.Kind != "", Hold: res.Hold, Message: res.Message, Summary: res.Summary,
		Properties: res.Properties}, nil
}

func (i inspector) Inspects(sourceType, name string) bool { return i.c.Inspects(sourceType, name) }

func (i inspector) IsPackage(sourceType string) bool { return i.c.IsPackage(sourceType) }

func (i inspector) InspectPackage(ctx context.Context, in delivery.PackageInspection) (delivery.Inspection, error) {
	res, err := checks.CheckPackage(ctx, checks.PackageInput{Folder: in.Folder, Root: in.Root, Files: in.Files})
	if err != nil {
		return delivery.Inspection{}, err
	}
	out := delivery.Inspection{Applies: true, Summary: res.Summary(), Warnings: res.Warnings, HoldFile: res.HoldFile}
	if msg := res.Message(); msg != "" {
		out.Hold, out.Message = checks.HoldIMFMismatch, msg
	}
	for _, c := range res.Compositions {
		out.Compositions = append(out.Compositions, delivery.Composition{ID: c.ID, Title: c.Title})
	}
	return out, nil
}

// checkerFor returns the daemon's checker for cfg, built anew only when the checks' config
// changed; the first time, a probe that cannot work is logged as an error.
func (d *daemon) checkerFor(cfg *config.Config) *checks.Checker {
	key := checksConfig(cfg)
	if d.checker != nil && reflect.DeepEqual(key, d.checkerKey) {
		return d.checker
	}
	d.checker, d.checkerKey = newChecker(cfg), key
	if msg := probeProblem(d.checker, cfg); msg != "" {
		d.log.Error("content checks", "problem", msg)
	}
	return d.checker
}
