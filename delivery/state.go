// What the Engine knows about each request and file, and the small helpers that change it.

package delivery

import (
	"path/filepath"
	"time"
	"unique"

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
	// delivered: it was delivered as a whole at least once (journaled with its record, so a
	// start knows it). A request of any number of files (files = 0) is "already delivered" by
	// it, not by its first file delivered: one of its files that failed must still go when it
	// is retried.
	delivered   bool
	quiet       bool // first refresh after start: establish the state without events
	refreshedAt time.Time
	// settlingLeft counts down, from the files its last refresh saw settling (fileState.counted),
	// as each of those stops settling or leaves it; mayStart is set when it reaches none or the
	// ready marker comes. Nothing of a request starts while a file of it settles, so that is
	// the moment its refresh may start it, and the one time a big request's refresh is not put
	// off (refreshStale). Files that began settling since are not counted: a file of the File
	// Bin judged into it, or a render's next frame, must not set it off every batch.
	settlingLeft int
	mayStart     bool
	reportedAt   time.Time         // when its view was last sent
	milestones   map[string]string // sequence key → its last milestone event (sequence.go)
	lastMeta     map[string]string // the metadata of its last file judged, shared by equal ones (shareMeta)
	evReq        *EventRequest     // eventRequest's, while it says the request as it is
}

// eventRequest is r as its files' events name it, one for all the events made while its state
// and status stay the same (receivers never change it): the marker of a request of 100,000
// frames starts them all in one batch, and made as many copies.
func (r *reqState) eventRequest() *EventRequest {
	if er := r.evReq; er != nil && er.ID == r.ID && er.State == string(r.state) && er.Status == r.Status {
		return er
	}
	r.evReq = &EventRequest{ID: r.ID, State: string(r.state), Status: r.Status}
	return r.evReq
}

// fileState is what the Engine knows of one file. A request of 100,000 frames holds 100,000
// of them for as long as the daemon runs, so it stays small (issue 11): what only some files
// need at some time lives in more, made when first set; caches are invalidated where what
// they depend on changes (setName, assign) rather than by keeping a copy of it.
type fileState struct {
	rec  FileRecord // rec.RequestID is its request's id; "" for none (the File Bin)
	name string     // path inside its drop folder
	// latest is the newest identity the watcher reported, and whether it was Ready; it may be
	// newer than rec while an upload of an older identity is in flight.
	latest   watcher.FileInfo
	done     int64
	dev      uint64            // device of the settled identity (0: unknown, e.g. after a restart)
	meta     map[string]string // shared by files with equal metadata (shareMeta)
	verified string            // what proved the last delivery (Result.Verified)
	more     *fileMore         // nil until one of its fields is set
	up       *uploadRun        // its upload in flight; nil when none runs
	// nameProblem's cached answer, valid while nameOK and nameGen is the Engine's gen.
	nameMsg string
	nameGen int32
	// frameOf's cached answer (sequence.go), valid while frameKnown: the frame's key, its
	// number, and where its digits start in name and how many there are.
	frameAt    int32
	frameKey   unique.Handle[string]
	frameNum   int64
	frameWidth uint8
	changes    uint8    // consecutive changed_during_upload (3 holds it)
	emitted    stateIdx // the state the last file event was made for
	// Flags.
	latestReady  bool
	retrying     bool
	inBin        bool // dropped in the File Bin: its request comes from the naming rules
	nameOK       bool
	isFrame      bool
	frameKnown   bool
	began        bool // an upload of it began in this run (it may have a resume point)
	seqSplit     bool // held because its File Bin sequence went to several requests
	gone         bool // removed while uploading
	sourceGone   bool // delivered, then its source was moved away or deleted
	replace      bool // the upload may replace the remote file (hotdrop's earlier delivery there)
	replaceAsked bool // `hotdrop retry --replace`: the next upload replaces what is there (control.go)
	// counted: settling when its request was last re-derived, and counted in the request's
	// settlingLeft until it stops settling, leaves the request or is forgotten.
	counted bool
}

// fileMore is the part of a file's state that most files never need, or need only for a
// while: a retry in progress, writers' checksums, a File Bin sequence, a content check.
type fileMore struct {
	retryWhy       string // the transient error being retried, in words (whyRetrying)
	parkedBehind   string // the file whose upload to the same remote path this one waits for (claimRemote)
	attempt        int
	nextTry        time.Time
	note           *EventReason // said with the file's next event, once (control.go)
	verify         []Checksum   // writers' checksum files to check before uploading
	resume         *Checkpoint  // the journaled resume point, read when the upload is queued
	binKey, binReq string       // how binSequence counted it ("": not counted)
	insp           *fileInspection
	was            *deliveredContent // its last delivered version, once it changed (samecontent.go)
	same           *contentCheck     // its version now against was
}

// uploadRun is what a file needs only while an upload of it runs.
type uploadRun struct {
	abandon                 func()    // stops it for good (abandon.go)
	progressAt, progressAt0 time.Time // progress pacing (outcome.go)
}

// x is a copy of fs's more, for reading: the zero fileMore when it has none. A copy, so that
// nothing can write through it (setMore is for writing).
func (fs *fileState) x() fileMore {
	if fs.more == nil {
		return fileMore{}
	}
	return *fs.more
}

// setMore is fs's more for writing, made when needed.
func (fs *fileState) setMore() *fileMore {
	if fs.more == nil {
		fs.more = &fileMore{}
	}
	return fs.more
}

// req is the id of fs's request ("" for none).
func (fs *fileState) req() string { return fs.rec.RequestID }

// setName sets fs's path inside its drop folder, dropping what was derived from the old one.
// An equal name keeps the string fs holds.
func (fs *fileState) setName(name string) {
	if name == fs.name {
		return
	}
	fs.name = name
	fs.frameKnown, fs.nameOK = false, false
}

// stateIdx is a State in one byte (stateIndex, allStates), for what every file keeps.
type stateIdx uint8

func idxOf(s State) stateIdx { return stateIdx(stateIndex(s)) }

func (i stateIdx) state() State { return allStates[i] }

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
		// What was delivered is kept, to know the same content written again (samecontent.go).
		if fs.rec.SHA256 != "" {
			fs.setMore().was = &deliveredContent{sha256: fs.rec.SHA256, size: fs.rec.Size}
		}
		fs.rec.SHA256 = ""
	}
	fs.rec.Size, fs.rec.ModTime, fs.rec.Inode = fi.Size, fi.ModTime, fi.Inode
	fs.dev = fi.Dev
}

func (e *Engine) hold(fs *fileState, code, message string) {
	fs.rec.State, fs.rec.Reason, fs.rec.Message = Held, code, message
}
