package delivery

import (
	"fmt"
	"path"
	"strings"
)

// Request is one studio Source Request as hotdrop needs it: its id, the studio's status, how
// many files fulfil it, and every string field (title, source_type, language, extras) that
// folder names, remote paths and naming rules may use.
type Request struct {
	ID     string
	Status string
	Files  int // 0 = any number, complete when the ready marker appears
	Fields map[string]string
	// Folder is the request's absolute drop folder, set by the Engine from watch.folder.
	Folder string
}

// Accepting reports whether the studio's status takes deliveries.
func (r Request) Accepting() bool {
	return r.Status == StatusOpen || r.Status == StatusRedeliveryRequested
}

// The studio-side statuses that accept deliveries; any other status does not.
const (
	StatusOpen                = "open"
	StatusRedeliveryRequested = "redelivery_requested"
)

// State is hotdrop's delivery state of a file or a request (SPEC.md, Words).
type State string

// The delivery states, in the order a file normally moves through them.
const (
	Waiting   State = "waiting"
	Settling  State = "settling"
	Held      State = "held"
	Ready     State = "ready"
	Uploading State = "uploading"
	Delivered State = "delivered"
	Failed    State = "failed"
)

// Hold and failure reason codes (SPEC.md, Words). Each is shown with a human sentence.
const (
	ReasonNoMatchingRequest   = "no_matching_request"
	ReasonRequestNotOpen      = "request_not_open"
	ReasonAlreadyDelivered    = "already_delivered"
	ReasonTooManyFiles        = "too_many_files"
	ReasonUnsafePath          = "unsafe_path"
	ReasonInvalidName         = "invalid_name"
	ReasonRemoteExists        = "remote_exists"
	ReasonKeepsChanging       = "keeps_changing"
	ReasonChangedDuringUpload = "changed_during_upload"
	ReasonRemoteError         = "remote_error"
	ReasonIncompleteSequence  = "incomplete_sequence"
	ReasonSuspectFrame        = "suspect_frame"
	// ReasonPermissionDenied is a failure when the server refuses a write, and a hold on the
	// source side when hotdrop cannot enter the folder a file is in (denied.go).
	ReasonPermissionDenied = "permission_denied"
)

// holdCodes are the reasons that put a file in Held rather than Failed: they need a person to
// change the files or the request, not a retry.
var holdCodes = map[string]bool{
	"missing_metadata": true, "invalid_metadata": true, "invalid_sidecar": true,
	ReasonNoMatchingRequest: true, "ambiguous_match": true, ReasonRequestNotOpen: true,
	ReasonAlreadyDelivered: true, "unsupported_extension": true, ReasonTooManyFiles: true,
	ReasonUnsafePath: true, ReasonInvalidName: true, ReasonRemoteExists: true,
	"checksum_mismatch": true, ReasonKeepsChanging: true,
	ReasonIncompleteSequence: true, ReasonSuspectFrame: true,
}

// FolderName renders the watch.folder template for a request's fields. Each field value is
// made safe as one path element on Windows, macOS and Linux (so "SDH/CC" never becomes two
// folders and ".." never climbs), empty parts collapse ("Subtitle  [SR-1]" → "Subtitle [SR-1]",
// empty brackets and empty path elements dropped), and the result is a relative slash path.
// A folder hotdrop would itself hide or reserve is renamed rather than left silently dead: an
// element starting with "." (which watch.ignore's ".*" hides: ".hack//Sign" → "_hack__Sign")
// and a top folder named like the File Bin's default or the _delivered folder get a "_" first.
func FolderName(tmpl string, fields map[string]string) (string, error) {
	var b strings.Builder
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("folder template %q: unclosed {", tmpl)
		}
		name := rest[i+1 : i+j]
		b.WriteString(safeElement(fields[name]))
		rest = rest[i+j+1:]
	}
	var parts []string
	for _, p := range strings.Split(b.String(), "/") {
		p = collapse(p)
		if p == "" {
			continue
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("folder template %q gives an empty folder name", tmpl)
	}
	parts[0] = unreserved(parts[0], "_bin")
	return strings.Join(parts, "/"), nil
}

// DropFolder is FolderName for a root whose File Bin is watch.bin = bin: a request's drop
// folder is never the bin, whatever the bin is called. The Engine, explain and demo use it.
func DropFolder(tmpl string, fields map[string]string, bin string) (string, error) {
	rel, err := FolderName(tmpl, fields)
	if err != nil {
		return "", err
	}
	if top, below, _ := strings.Cut(rel, "/"); unreserved(top, bin) != top {
		rel = path.Join(unreserved(top, bin), below)
	}
	return rel, nil
}

// unreserved renames a top folder that would be the File Bin (bin) or the folder after =
// "move" fills, which the watcher never looks into: case is ignored, as macOS and Windows do.
func unreserved(top, bin string) string {
	if strings.EqualFold(top, DeliveredDir) || (bin != "" && strings.EqualFold(top, bin)) {
		return "_" + top
	}
	return top
}

// safeElement replaces what Windows, macOS or Linux refuse in a file name, and the path
// separators, so a field value stays inside one path element.
func safeElement(v string) string {
	v = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f:
			return -1
		case strings.ContainsRune(`<>:"/\|?*`, r):
			return '_'
		}
		return r
	}, v)
	if strings.Trim(v, ".") == "" && v != "" {
		return strings.Repeat("_", len(v))
	}
	return v
}

// collapse tidies one path element after substitution: empty brackets go, runs of spaces
// become one, and trailing dots and spaces (which Windows drops silently) are trimmed.
func collapse(p string) string {
	for _, empty := range []string{"[]", "()", "{}", "[ ]", "( )"} {
		p = strings.ReplaceAll(p, empty, "")
	}
	p = strings.Join(strings.Fields(p), " ")
	p = strings.TrimRight(p, ". ")
	p = strings.TrimLeft(p, " ")
	if p == "." || p == ".." {
		return ""
	}
	if strings.HasPrefix(p, ".") {
		p = "_" + strings.TrimLeft(p, ".") // hidden, and ignored by watch.ignore's ".*"
	}
	if isReservedWindowsName(p) {
		p = "_" + p
	}
	return p
}

func isReservedWindowsName(p string) bool {
	base := strings.ToUpper(p)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	switch base {
	case "CON", "PRN", "AUX", "NUL":
		return true
	}
	if len(base) == 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) && base[3] >= '1' && base[3] <= '9' {
		return true
	}
	return false
}
