// What the Engine knows about each request and file, and the small helpers that change it.

package delivery

import (
	"path/filepath"
	"time"

	"github.com/hotdrop/hotdrop/matcher"
	"github.com/hotdrop/hotdrop/watcher"
)

type reqState struct {
	Request
	needsMarker bool   // its profile requires the ready marker even with files > 0
	suspect     bool   // its profile holds suspect frames (suspect_frames)
	rel         string // drop folder relative to Root, slash-separated
	marker      bool   // the ready marker is present
	deliver     bool   // `hotdrop deliver` was given: counts as the marker, and as auto_deliver
	setupErr    string // why its drop folder could not be made (whyRequest says it)
	state       State
	emitted     State // the state the last request event was made for
	quiet       bool  // first refresh after start: establish the state without events
	refreshedAt time.Time
	reportedAt  time.Time         // when its view was last sent
	milestones  map[string]string // sequence key → its last milestone event (sequence.go)
	lastMeta    map[string]string // the metadata of its last file judged, shared by equal ones (shareMeta)
}

type fileState struct {
	rec  FileRecord
	name string // path inside its drop folder
	req  string // request id; "" for the File Bin
	// latest is the newest identity the watcher reported, and whether it was Ready; it may be
	// newer than rec while an upload of an older identity is in flight.
	latest      watcher.FileInfo
	latestReady bool
	changes     int // consecutive changed_during_upload
	retrying    bool
	retryWhy    string // the transient error being retried, in words (whyRetrying)
	attempt     int
	nextTry     time.Time
	done        int64
	emitted     State // the state the last file event was made for
	inBin       bool  // dropped in the File Bin: its request comes from the naming rules
	// nameProblem's cached answer, valid for (nameGen, nameReq, nameFor).
	nameOK           bool
	nameGen          int
	nameReq, nameFor string
	nameMsg          string
	// frameOf's cached answer (sequence.go), valid while frameFor is the name.
	frame               matcher.Frame
	isFrame, frameKnown bool
	frameFor            string
	began               bool         // an upload of it began in this run (it may have a resume point)
	seqSplit            bool         // held because its File Bin sequence went to several requests
	binKey, binReq      string       // how binSequence counted it ("": not counted)
	gone                bool         // removed while uploading
	abandon             func()       // stops its upload in flight for good (abandon.go); nil when none runs
	sourceGone          bool         // delivered, then its source was moved away or deleted
	replace             bool         // the upload may replace the remote file (hotdrop's earlier delivery there)
	replaceAsked        bool         // `hotdrop retry --replace`: the next upload replaces what is there (control.go)
	note                *EventReason // said with the file's next event, once (control.go)
	meta                map[string]string
	verify              []Checksum // writers' checksum files to check before uploading
	progressAt          time.Time
	progressAt0         time.Time   // when this upload started, for the rate
	verified            string      // what proved the last delivery (Result.Verified)
	resume              *Checkpoint // the journaled resume point, read when the upload is queued
	dev                 uint64      // device of the settled identity (0: unknown, e.g. after a restart)
	insp                *fileInspection
}

func relName(folder, p string) string {
	rel, err := filepath.Rel(folder, p)
	if err != nil {
		return filepath.Base(p)
	}
	return filepath.ToSlash(rel)
}

func sameIdentity(rec FileRecord, fi watcher.FileInfo) bool {
	// A journaled inode of 0 is unknown, not different: the watcher reported none for a while
	// (its stats came from safefs, whose Sys() it did not read), and records of then remain.
	return rec.Size == fi.Size && rec.ModTime.Equal(fi.ModTime) && (rec.Inode == fi.Inode || rec.Inode == 0)
}

func (e *Engine) setIdentity(fs *fileState, fi watcher.FileInfo) {
	if fs.rec.State == Delivered && !sameIdentity(fs.rec, fi) {
		// A new version of a delivered file: its checksum no longer describes it. DeliveredAt
		// stays: it says the remote file at RemotePath is ours (a redelivery may replace it).
		fs.rec.SHA256 = ""
	}
	fs.rec.Size, fs.rec.ModTime, fs.rec.Inode = fi.Size, fi.ModTime, fi.Inode
	fs.dev = fi.Dev
}

func (e *Engine) hold(fs *fileState, code, message string) {
	fs.rec.State, fs.rec.Reason, fs.rec.Message = Held, code, message
}
