package config

import (
	"fmt"
	"maps"
)

// FolderFieldWarnings names each {field} of watch.folder that no request has (nor SPEC.md
// gives every request): a misspelt field is the same empty part in every drop folder's name,
// and a template of such parts alone names no folder at all. A warning, for check, never a
// refusal: a field of the studio's own that no open request has now (the last episodic one
// closed) would otherwise refuse every later change to the requests. A field only some
// requests lack is fine: its part collapses. Which request leaves its whole folder name empty
// is CheckFolderNames's to tell.
func FolderFieldWarnings(c *Config, reqs []Request) ErrorList {
	ck := &fileCheck{c: c, loc: relocate(c.File)}
	fields, have := templateFields(c.Watch.Folder, reqs)
	if have == nil {
		return nil
	}
	known := maps.Clone(have)
	for _, f := range []string{"id", "title", "package_id", "source_type", "language", "status"} {
		known[f] = true // the fields SPEC.md gives a request, even when none sets them yet
	}
	for _, f := range fields {
		if !known[f] {
			ck.unknownFieldOf("watch.folder", f, known, have, "; a drop folder is named by its request's fields")
		}
	}
	return ck.errs
}

// CheckFolderNames returns, at each request's [[request]] table, the requests that watch.folder
// names no drop folder for: name renders the template for a request's fields (config does not
// name folders; the caller passes the function the daemon uses). Such a request is never
// delivered to, and the daemon only logs it, so check names each one. The error, when not
// nil, is an ErrorList.
func CheckFolderNames(c *Config, reqs []Request, name func(fields map[string]string) error) error {
	var errs ErrorList
	where := ""
	for _, r := range reqs {
		err := name(r.Fields)
		if err == nil {
			continue
		}
		if where == "" { // found once, and only when needed: the config keeps no positions
			where = "watch.folder"
			if loc := relocate(c.File); loc != nil {
				where = "watch.folder's default"
				if p, ok := loc.value("watch.folder"); ok {
					where = "watch.folder, " + p.String()
				}
			}
		}
		errs = append(errs, &Error{Pos: r.Pos, Err: err, Msg: fmt.Sprintf(
			"request %s gets no drop folder: %v (%s); expected a template whose fields the request has: add them to the request, or put {id}, which every request has, in watch.folder",
			r.ID, err, where)})
	}
	return errs.err()
}
