package config

import "fmt"

// folderFields checks that every {field} of watch.folder is a request field: one no request
// has is the same empty part in every drop folder's name, and a template of such parts alone
// names no folder at all. A field only some requests lack is fine: its part collapses. Which
// request leaves its whole folder name empty is for the caller to tell (config does not name
// folders).
func (ck *fileCheck) folderFields(reqs []Request) {
	fields, known := templateFields(ck.c.Watch.Folder, reqs)
	if known == nil {
		return
	}
	for _, f := range []string{"id", "title", "package_id", "source_type", "language", "status"} {
		known[f] = true // the fields SPEC.md gives a request, even when none sets them yet
	}
	for _, f := range fields {
		if !known[f] {
			ck.unknownField("watch.folder", f, known, nil, "; a drop folder is named by its request's fields")
		}
	}
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
