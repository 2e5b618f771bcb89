package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/store"
)

// newMatcher builds the matcher from the config's rules and profiles and the requests. The
// daemon builds a new one on every reload (config or requests); explain builds one per run.
func newMatcher(cfg *config.Config, reqs []config.Request) (*matcher.Matcher, error) {
	opt := matcher.Options{
		Requests:    matcherRequests(reqs),
		ReadyMarker: cfg.Watch.ReadyMarker,
		Names:       cfg.Destination.Names,
		Root:        cfg.Watch.Root,
	}
	for _, r := range cfg.Rules {
		opt.Rules = append(opt.Rules, matcher.Rule{Name: r.Name, Pattern: r.Pattern, Where: r.Where, Pos: r.Pos.String()})
	}
	for _, st := range cfg.SourceTypes {
		md := make(map[string]matcher.Field, len(st.Metadata))
		for k, f := range st.Metadata {
			md[k] = matcher.Field{Required: f.Required, Values: f.Values}
		}
		opt.SourceTypes = append(opt.SourceTypes, matcher.SourceType{
			Name: st.Name, Aliases: st.Aliases, Extensions: st.Extensions, Multi: st.Multi, Metadata: md,
			RequireChecksum: st.RequireChecksum, RequireMarker: st.RequireMarker, SuspectFrames: st.SuspectFrames, Pos: st.Pos.String(),
		})
	}
	m, err := matcher.New(opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	return m, nil
}

// matcherRequests converts requests as the config decodes them.
func matcherRequests(reqs []config.Request) []matcher.Request {
	out := make([]matcher.Request, len(reqs))
	for i, r := range reqs {
		out[i] = matcher.Request{ID: r.ID, Status: r.Status, Files: r.Files, FilesSet: r.FilesSet, Fields: r.Fields}
	}
	return out
}

// knownRequests returns the requests as the daemon last knew them: from the requests files, or
// with requests.source = "http" from the state database (read only; nothing is fetched).
func knownRequests(ctx context.Context, cfg *config.Config) ([]config.Request, error) {
	if cfg.Requests.Source != "http" {
		return config.LoadRequests(cfg)
	}
	db := filepath.Join(cfg.StateDir, "state.db")
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("requests.source is \"http\" and the state database %s does not exist yet: run hotdrop once so it saves the tracker's requests", db)
	}
	st, err := store.Open(db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stored, err := st.Requests(ctx)
	if err != nil {
		return nil, fmt.Errorf("requests from %s: %w", db, err)
	}
	out := make([]config.Request, 0, len(stored))
	for _, s := range stored {
		r := config.Request{ID: s.ID, Status: s.Status, Files: s.Files, Fields: map[string]string{}}
		if s.Fields != "" {
			if err := json.Unmarshal([]byte(s.Fields), &r.Fields); err != nil {
				return nil, fmt.Errorf("request %s in %s: its fields are not a JSON object: %w", s.ID, db, err)
			}
		}
		// The journal does not say whether the tracker set files; 1 is the default, so any
		// other number was set.
		r.FilesSet = s.Files != 1
		r.Title, r.PackageID, r.SourceType, r.Language = r.Fields["title"], r.Fields["package_id"], r.Fields["source_type"], r.Fields["language"]
		out = append(out, r)
	}
	return out, nil
}
