package report

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/store"
)

// RequestInfo is a request as the HTTP API, the dashboard and `hotdrop status --json` show it.
// The File Bin appears as a RequestInfo with Bin set and no ID.
type RequestInfo struct {
	ID            string            `json:"id"`
	Title         string            `json:"title,omitempty"`
	SourceType    string            `json:"source_type,omitempty"`
	Language      string            `json:"language,omitempty"`
	PackageID     string            `json:"package_id,omitempty"`
	Status        string            `json:"status,omitempty"`
	State         string            `json:"state"`
	FilesExpected int               `json:"files_expected"`
	Bin           bool              `json:"bin,omitempty"`
	Fields        map[string]string `json:"fields,omitempty"`
	Folder        string            `json:"folder,omitempty"`
	// Reason is the first held or failed file's reason: why the request does not move.
	Reason *Reason `json:"reason,omitempty"`
	// Why says in one line what the request waits for while it is not delivered.
	Why string `json:"why,omitempty"`
	// CanDeliver says whether deliver would do anything now (the dashboard offers it then).
	CanDeliver bool       `json:"can_deliver,omitempty"`
	Files      []FileInfo `json:"files"`
	// FilesOmitted files are not listed (past the first 500, those needing attention first).
	FilesOmitted int `json:"files_omitted,omitempty"`
	// Sequences are frame sequences, each one row instead of one per frame.
	Sequences []SequenceInfo `json:"sequences,omitempty"`
	// Counts is how many files, frames included, are in each state.
	Counts    map[string]int `json:"counts,omitempty"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// SequenceInfo is one frame sequence: shot_010.[1001-2400].exr — 1,400 frames, 8.2 GiB,
// 1,388 delivered.
type SequenceInfo struct {
	Name          string         `json:"name"`
	First         int64          `json:"first"`
	Last          int64          `json:"last"`
	Frames        int            `json:"frames"`
	Size          int64          `json:"size"`
	Delivered     int            `json:"delivered"`
	DeliveredSize int64          `json:"delivered_size"`
	Done          int64          `json:"done,omitempty"`
	State         string         `json:"state"`
	Counts        map[string]int `json:"counts"`
	Reason        *Reason        `json:"reason,omitempty"`
	ChangedAt     time.Time      `json:"changed_at"`
}

func sequenceInfos(seqs []delivery.SequenceView) []SequenceInfo {
	var out []SequenceInfo
	for _, s := range seqs {
		si := SequenceInfo{Name: s.Name, First: s.First, Last: s.Last, Frames: s.Frames, Size: s.Size, Delivered: s.Delivered,
			DeliveredSize: s.DeliveredSize, Done: s.Done, State: string(s.State), Counts: stateCounts(s.Counts), ChangedAt: s.ChangedAt.UTC()}
		if s.Reason != "" {
			si.Reason = &Reason{Code: s.Reason, Message: s.Message}
		}
		out = append(out, si)
	}
	return out
}

func stateCounts(c map[delivery.State]int) map[string]int {
	if len(c) == 0 {
		return nil
	}
	out := make(map[string]int, len(c))
	for s, n := range c {
		out[string(s)] = n
	}
	return out
}

// FileInfo is one file of a RequestInfo. Done, Rate and ETA follow the upload in progress.
type FileInfo struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Path       string    `json:"path,omitempty"`
	State      string    `json:"state"`
	Reason     *Reason   `json:"reason,omitempty"`
	Size       int64     `json:"size"`
	Done       int64     `json:"done,omitempty"`
	Rate       float64   `json:"rate,omitempty"` // bytes per second
	ETA        float64   `json:"eta,omitempty"`  // seconds
	SHA256     string    `json:"sha256,omitempty"`
	RemotePath string    `json:"remote_path,omitempty"`
	Verified   string    `json:"verified,omitempty"` // "hash", "readback" or "size"
	Retrying   *Retrying `json:"retrying,omitempty"`
	Why        string    `json:"why,omitempty"` // what a settling or retrying file waits for
	ChangedAt  time.Time `json:"changed_at"`

	// Media are the key properties the content check found (frame_rate, resolution...).
	Media map[string]string `json:"media,omitempty"`
}

// InfoFromView builds the API form of a request view.
func InfoFromView(v delivery.RequestView) RequestInfo {
	ri := RequestInfo{ID: v.ID, Status: v.Status, State: string(v.State), FilesExpected: v.FilesExpected,
		Bin: v.Bin, Fields: v.Fields, Folder: v.Folder, Files: []FileInfo{}, UpdatedAt: v.UpdatedAt.UTC(),
		FilesOmitted: v.FilesOmitted, Sequences: sequenceInfos(v.Sequences), Counts: stateCounts(v.Counts),
		Why: v.Why, CanDeliver: v.CanDeliver}
	ri.fillFields()
	for _, f := range v.Files {
		fi := FileInfo{ID: f.ID, Name: f.Name, Path: f.Path, State: string(f.State), Size: f.Size, Done: f.Done,
			SHA256: f.SHA256, RemotePath: f.RemotePath, Verified: f.Verified, ChangedAt: f.ChangedAt.UTC(), Media: f.Media, Why: f.Why}
		if f.Reason != "" {
			fi.Reason = &Reason{Code: f.Reason, Message: f.Message}
		}
		fi.Retrying = retryingOf(f)
		ri.Files = append(ri.Files, fi)
	}
	ri.fillReason()
	return ri
}

func (ri *RequestInfo) fillFields() {
	ri.Title, ri.SourceType = ri.Fields["title"], ri.Fields["source_type"]
	ri.Language, ri.PackageID = ri.Fields["language"], ri.Fields["package_id"]
}

func (ri *RequestInfo) fillReason() {
	ri.Reason = nil
	for _, s := range ri.Sequences {
		if s.Reason != nil && (s.State == string(delivery.Held) || s.State == string(delivery.Failed)) {
			ri.Reason = &Reason{Code: s.Reason.Code, Message: s.Reason.Message}
			return
		}
	}
	for _, f := range ri.Files {
		if f.Reason != nil && (f.State == string(delivery.Held) || f.State == string(delivery.Failed)) {
			ri.Reason = &Reason{Code: f.Reason.Code, Message: f.Name + ": " + f.Reason.Message}
			return
		}
	}
}

// InfoFromStore builds the API form of every request from the journal alone: what
// `hotdrop status` shows when the daemon is not running. Retries and progress in flight are
// not journaled, so they do not show.
func InfoFromStore(reqs []store.Request, files []store.File) []RequestInfo {
	byReq := map[string][]store.File{}
	for _, f := range files {
		byReq[f.RequestID] = append(byReq[f.RequestID], f)
	}
	out := make([]RequestInfo, 0, len(reqs))
	for _, r := range reqs {
		ri := RequestInfo{ID: r.ID, Status: r.Status, State: r.State, FilesExpected: r.Files, Folder: r.Folder,
			Files: []FileInfo{}, UpdatedAt: r.UpdatedAt.UTC()}
		if err := json.Unmarshal([]byte(r.Fields), &ri.Fields); err != nil {
			ri.Fields = nil
		}
		ri.fillFields()
		if r.State != string(delivery.Delivered) && !(delivery.Request{Status: r.Status}).Accepting() {
			ri.Why = "not open: " + r.Status
		}
		views := make([]delivery.FileView, 0, len(byReq[r.ID]))
		counts := map[delivery.State]int{}
		for _, f := range byReq[r.ID] {
			name := f.Path
			if rel, ok := relSlash(r.Folder, f.Path); ok {
				name = rel
			}
			views = append(views, delivery.FileView{ID: f.ID, Name: name, Path: f.Path, State: delivery.State(f.State), Size: f.Size,
				SHA256: f.SHA256, RemotePath: f.RemotePath, ChangedAt: f.UpdatedAt, Reason: f.Reason, Message: f.Message})
			counts[delivery.State(f.State)]++
		}
		_, framesGiven := ri.Fields["frames"]
		singles, seqs, omitted := delivery.Summarize(views, framesGiven)
		ri.Sequences, ri.FilesOmitted, ri.Counts = sequenceInfos(seqs), omitted, stateCounts(counts)
		for _, f := range singles {
			fi := FileInfo{ID: f.ID, Name: f.Name, Path: f.Path, State: string(f.State), Size: f.Size, SHA256: f.SHA256,
				RemotePath: f.RemotePath, ChangedAt: f.ChangedAt.UTC()}
			if f.Reason != "" {
				fi.Reason = &Reason{Code: f.Reason, Message: f.Message}
			}
			ri.Files = append(ri.Files, fi)
		}
		ri.fillReason()
		out = append(out, ri)
	}
	if bin := byReq[""]; len(bin) > 0 {
		ri := RequestInfo{Bin: true, State: string(delivery.Waiting), Files: []FileInfo{}}
		for _, f := range bin {
			fi := FileInfo{ID: f.ID, Name: f.Path, Path: f.Path, State: f.State, Size: f.Size, ChangedAt: f.UpdatedAt.UTC()}
			if f.Reason != "" {
				fi.Reason = &Reason{Code: f.Reason, Message: f.Message}
			}
			ri.Files = append(ri.Files, fi)
		}
		ri.fillReason()
		out = append(out, ri)
	}
	return out
}

// Progress sums a request's bytes done (delivered files count whole) and its total.
func (ri RequestInfo) Progress() (done, total int64) {
	for _, s := range ri.Sequences {
		total += s.Size
		done += s.DeliveredSize + s.Done
	}
	for _, f := range ri.Files {
		total += f.Size
		switch f.State {
		case string(delivery.Delivered):
			done += f.Size
		case string(delivery.Uploading):
			done += min(f.Done, f.Size)
		}
	}
	return done, total
}

// relSlash is p relative to dir with forward slashes, when p is inside dir.
func relSlash(dir, p string) (string, bool) {
	if dir == "" {
		return "", false
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}
