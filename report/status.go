package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/safefs"
)

// StatusFileName is the status file hotdrop keeps in every drop folder and in the File Bin.
// The watcher never reports it (nor any name starting ".hotdrop").
const StatusFileName = ".hotdrop-status.json"

// StatusFiles writes a request's view into its drop folder's status file each time it
// changes, atomically (temporary name + rename), so a reader never sees half a file.
type StatusFiles struct {
	Logger *slog.Logger
	// Root is watch.root: status files are written beneath it, into the drop folder opened
	// without following a link at any level (a render-farm user may swap a drop folder for a
	// link to a folder they cannot write). Empty: the folder is opened by path, only its last
	// element guarded.
	Root string
}

var _ delivery.Reporter = (*StatusFiles)(nil)

// Status is the content of a status file.
type Status struct {
	Request *RequestStatus `json:"request,omitempty"`
	Bin     bool           `json:"bin,omitempty"`
	Files   []FileStatus   `json:"files"`
	// FilesOmitted files are not listed: past the first 500, those needing attention first.
	FilesOmitted int `json:"files_omitted,omitempty"`
	// Sequences are frame sequences, one entry each instead of one per frame.
	Sequences []SequenceInfo `json:"sequences,omitempty"`
	// Counts is how many files, frames included, are in each state.
	Counts    map[string]int `json:"counts,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// RequestStatus is the request part of a status file.
type RequestStatus struct {
	ID            string `json:"id"`
	Title         string `json:"title,omitempty"`
	SourceType    string `json:"source_type,omitempty"`
	Language      string `json:"language,omitempty"`
	PackageID     string `json:"package_id,omitempty"`
	Status        string `json:"status"`
	State         string `json:"state"`
	FilesExpected int    `json:"files_expected"`
	// Why says in one line what the request waits for while it is not delivered.
	Why string `json:"why,omitempty"`
}

// FileStatus is one file in a status file.
type FileStatus struct {
	Name       string  `json:"name"`
	Request    string  `json:"request,omitempty"` // File Bin: the request the naming rules chose
	State      string  `json:"state"`
	Reason     *Reason `json:"reason,omitempty"`
	Size       int64   `json:"size"`
	SHA256     string  `json:"sha256,omitempty"`
	RemotePath string  `json:"remote_path,omitempty"`
	// Verified is what proved the delivered copy: "hash", "readback" or "size".
	Verified string    `json:"verified,omitempty"`
	Retrying *Retrying `json:"retrying,omitempty"`
	Why      string    `json:"why,omitempty"` // what a settling or retrying file waits for
	// Metadata is the file's merged metadata: the request's fields, name captures and sidecars.
	Metadata  map[string]string `json:"metadata,omitempty"`
	ChangedAt time.Time         `json:"changed_at"`
}

// Reason is a machine-readable code with the sentence a person reads.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Retrying says a transient error is being retried.
type Retrying struct {
	Attempt int       `json:"attempt"`
	NextTry time.Time `json:"next_try"`
	// Reason is the transient error being retried, in words (the server's own included).
	Reason string `json:"reason,omitempty"`
}

func retryingOf(f delivery.FileView) *Retrying {
	if !f.Retrying {
		return nil
	}
	return &Retrying{Attempt: f.Attempt, NextTry: f.NextTry.UTC(), Reason: f.RetryReason}
}

// FromView builds the status-file content of a request view.
func FromView(v delivery.RequestView) Status {
	s := Status{Bin: v.Bin, Files: []FileStatus{}, UpdatedAt: v.UpdatedAt.UTC(), FilesOmitted: v.FilesOmitted, Sequences: sequenceInfos(v.Sequences),
		Counts: stateCounts(v.Counts)}
	if !v.Bin {
		s.Request = &RequestStatus{ID: v.ID, Title: v.Fields["title"], SourceType: v.Fields["source_type"],
			Language: v.Fields["language"], PackageID: v.Fields["package_id"], Status: v.Status,
			State: string(v.State), FilesExpected: v.FilesExpected, Why: v.Why}
	}
	for _, f := range v.Files {
		fs := FileStatus{Name: f.Name, State: string(f.State), Size: f.Size, SHA256: f.SHA256,
			RemotePath: f.RemotePath, Verified: f.Verified, ChangedAt: f.ChangedAt.UTC(), Why: f.Why, Metadata: f.Metadata}
		if v.Bin {
			fs.Request = f.Request
		}
		if f.Reason != "" {
			fs.Reason = &Reason{Code: f.Reason, Message: f.Message}
		}
		fs.Retrying = retryingOf(f)
		s.Files = append(s.Files, fs)
	}
	return s
}

// RequestChanged rewrites the status file of the view's folder. A folder that does not exist
// (a request that takes no deliveries) gets none.
func (w *StatusFiles) RequestChanged(v delivery.RequestView) {
	if v.Folder == "" {
		return
	}
	err := w.write(v)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && w.Logger != nil {
		w.Logger.Error("status file not written", "folder", v.Folder, "err", err)
	}
}

func (w *StatusFiles) write(v delivery.RequestView) error {
	base, rel := w.Root, "."
	if base == "" {
		base = v.Folder
	} else {
		var err error
		if rel, err = safefs.Rel(base, v.Folder); err != nil {
			return err
		}
	}
	root, err := safefs.OpenRoot(base)
	if err != nil {
		return err
	}
	defer root.Close()
	d, err := root.OpenDir(rel)
	if err != nil {
		return err
	}
	defer d.Close()
	data, err := marshalStatus(FromView(v))
	if err != nil {
		return fmt.Errorf("status file in %s: %w", v.Folder, err)
	}
	data = append(data, '\n')
	if unchanged(d, data) {
		return nil
	}
	return d.WriteFile(StatusFileName, data, 0o644)
}

// unchanged reports whether the status file in d already says what data says, updated_at
// aside: a view is stamped when it is made, so a restart's views of 10,000 requests that
// nothing happened to differ from their files only there, and rewriting them all (temporary
// file, write, chmod, rename) cost seconds of CPU. Reading one back is far cheaper. The file
// is read as safefs opens it (a regular file, no link); anything unexpected says "changed",
// and the file is written.
func unchanged(d *safefs.Dir, data []byte) bool {
	f, err := d.Open(StatusFileName)
	if err != nil {
		return false
	}
	defer f.Close()
	// The stamp's length varies a little (RFC 3339, trailing zeros of the fraction dropped).
	old, err := io.ReadAll(io.LimitReader(f, int64(len(data))+64))
	if err != nil {
		return false
	}
	return sameButUpdatedAt(old, data)
}

// updatedAtKey starts the top-level updated_at line of a status file: Status's last field, and
// the only key indented by exactly two spaces that is named so (file metadata is deeper).
var updatedAtKey = []byte("\n  \"updated_at\": ")

// sameButUpdatedAt compares two status files with the value of their top-level updated_at
// left out.
func sameButUpdatedAt(a, b []byte) bool {
	i, j := bytes.LastIndex(a, updatedAtKey), bytes.LastIndex(b, updatedAtKey)
	if i < 0 || j < 0 || !bytes.Equal(a[:i], b[:j]) {
		return false
	}
	ra, rb := a[i+len(updatedAtKey):], b[j+len(updatedAtKey):]
	ea, eb := bytes.IndexByte(ra, '\n'), bytes.IndexByte(rb, '\n')
	return ea >= 0 && eb >= 0 && bytes.Equal(ra[ea:], rb[eb:])
}

// ReadStatus reads a status file, for `hotdrop status` and tests.
func ReadStatus(dir string) (Status, error) {
	var s Status
	data, err := os.ReadFile(filepath.Join(dir, StatusFileName))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, StatusFileName), err)
	}
	return s, nil
}

// marshalStatus is indented JSON without HTML escaping: names like "Audio M&E" stay readable.
func marshalStatus(s Status) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
