package delivery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hotdrop/hotdrop/internal/clock"
)

// Uploader sends one file to the destination. Implementations publish atomically (temporary
// name, size check, BeforeRename, rename) and return their errors as *TransferError. The
// Engine does the retrying; Upload is called from several goroutines at once.
type Uploader interface {
	Upload(ctx context.Context, j Job) (Result, error)
	// Stat reports the size of the remote file at rel (relative to the destination folder).
	Stat(ctx context.Context, rel string) (size int64, exists bool, err error)
}

// Reacher is an Uploader's optional ability to tell cheaply whether the destination answers
// at all (a TCP connect and the server's greeting, no login): the engine probes with it
// while a retry waits, so a server's return is noticed within seconds, not at the end of a
// backoff grown long during an outage.
type Reacher interface {
	Reachable(ctx context.Context) error
}

// Discarder is an Uploader's optional ability to remove the partial upload of a remote path
// that a cancelled or failed Upload kept on the server for a resume: the Engine calls it when
// it gives up on a file for good (its source was deleted mid-upload), so no partial is left
// behind that nothing will ever resume. No partial there is not an error.
type Discarder interface {
	Discard(ctx context.Context, rel string) error
}

// Finisher is an Uploader's optional ability to finish the publish of a file whose rename
// into place happened before hotdrop stopped: it hashes the local file (still j's identity),
// writes the checksum file beside the final one, replacing any temporary copy the crash left,
// and reports the sha256 for the manifest. An error classified as changed_during_upload says
// the source is no longer the file that was sent.
type Finisher interface {
	FinishPublish(ctx context.Context, j Job) (Result, error)
}

// Partialer is an Uploader's optional answer to where it writes rel before the rename: the
// temporary name destination.temp_name gives (".{name}.partial" when it has none to say).
type Partialer interface {
	PartialOf(rel string) string
}

// Job is one upload as the Engine asks for it.
type Job struct {
	LocalPath string
	// Open opens the source for one upload attempt: beneath watch.root, never through a link,
	// and only while the opened descriptor is still the file that settled (an error is a
	// *TransferError: unsafe_path, or changed_during_upload to settle again). The uploader
	// reads and hashes that descriptor, and calls Open once more after the last byte to
	// prove the path still names the same file. nil: the uploader opens LocalPath itself
	// (hotdrop's own temporary manifest).
	Open         func() (*os.File, error)
	RemoteRel    string
	Size         int64
	ModTime      time.Time
	Replace      bool // the remote file, if any, was delivered by hotdrop for this request
	BeforeRename func(ctx context.Context) error
	// IntendRename, when set, stands in for BeforeRename: called once the final name is
	// free, before the data is sent; the rename waits on the func it returns.
	IntendRename func(ctx context.Context) (wait func(ctx context.Context) error)
	Progress     func(done int64)
	// Connected, when set, is called once an attempt has a logged-in session to the
	// destination, before any byte is sent; from the uploading goroutine.
	Connected func()
	// Resume continues a partial upload from a journaled checkpoint (nil: from the start).
	Resume *Checkpoint
	// Checkpoint is called as the acknowledged offset advances, from an upload goroutine.
	Checkpoint func(Checkpoint)
	// NoChecksumFile: no NAME.sha256 beside this one (hotdrop's own manifest).
	NoChecksumFile bool
}

// Checkpoint is how far an interrupted upload got: the contiguous offset the server
// acknowledged in the partial file, and the local file it was for. Fields match
// uploader.Checkpoint and store.Checkpoint.
type Checkpoint struct {
	Partial string
	Offset  int64
	Size    int64
	ModTime time.Time
	Inode   uint64
}

// Result is what a successful upload reports.
type Result struct {
	Remote string
	Size   int64
	SHA256 string
	// Resumed is the offset the upload continued from (0: from the start).
	Resumed int64
	// Verified says what proved the remote copy: "hash" (the server's hash), "readback" (a
	// resumed file's earlier part read back) or "size".
	Verified string
	// ChecksumFile is the checksum file written beside it, if any; ChecksumErr says why it
	// could not be written (the file itself is delivered). A transient one (a TransferError,
	// or any error nobody classified) is tried again like a failed upload (transfer).
	ChecksumFile string
	ChecksumErr  error
}

// TransferError is an upload failure as the code that saw it classified it: transient ones
// are retried with backoff while the file stays uploading, permanent ones fail the file with
// Code (a SPEC.md failure reason) and the server's words in Msg. Source says the failure is
// on this side of the link (reading the file to send, hotdrop's own journal), set by whoever
// saw it: such failures are retried or held like any other, but never count towards
// destination.unreachable.
type TransferError struct {
	Code      string
	Msg       string
	Transient bool
	Source    bool
	Err       error
}

func (e *TransferError) Error() string {
	if e.Msg != "" {
		return e.Code + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %v", e.Code, e.Err)
}

func (e *TransferError) Unwrap() error { return e.Err }

// asTransferError returns err as a TransferError: the one in its chain, or, for an error
// nobody classified, a transient one of the destination's (as the uploader treats an error
// it does not recognise): a wrongly permanent failure stops a delivery at 2 a.m. for nothing,
// while a wrongly transient one is retried and, if it lasts, raises destination.unreachable
// with its words.
func asTransferError(err error) *TransferError {
	var te *TransferError
	if errors.As(err, &te) {
		return te
	}
	return &TransferError{Code: "transient", Msg: err.Error(), Transient: true, Err: err}
}

// Store is the journal the Engine records into. It must be durable before it returns: the
// rename intent in particular guards against delivering a file twice after a crash.
type Store interface {
	// SaveRequests journals requests in one transaction.
	SaveRequests(ctx context.Context, rs []RequestRecord) error
	// SaveFiles journals files in one transaction and returns their ids, in order.
	SaveFiles(ctx context.Context, fs []FileRecord) ([]int64, error)
	DeleteFile(ctx context.Context, path string) error
	Files(ctx context.Context) ([]FileRecord, error)
	// MarkRenameIntents records, durably (one full sync for all), that each file is about to
	// be renamed into place at its remote path; errs[i] is intents[i]'s outcome.
	MarkRenameIntents(ctx context.Context, intents []RenameIntent) (errs []error)
	// WriteTx runs fn in one transaction, committed when fn returns nil and none of its
	// writes failed; durable commits with a full sync (rename intents need it). The journal
	// writer puts one batch of the loop in one: a commit costs more than the rows in it.
	WriteTx(ctx context.Context, durable bool, fn func(JournalTx) error) error
	// Checkpoint returns the journaled resume point of path's upload; ok is false when none.
	Checkpoint(ctx context.Context, path string) (c Checkpoint, ok bool, err error)
	SaveCheckpoint(ctx context.Context, path string, c Checkpoint) error
	DeleteCheckpoint(ctx context.Context, path string) error
	// ManifestAt says when request id's manifest reached the server (zero: not yet).
	ManifestAt(ctx context.Context, id string) (time.Time, error)
	MarkManifest(ctx context.Context, id string, at time.Time) error
}

// JournalTx is one transaction of the journal (Store.WriteTx). Its MarkRenameIntents
// guards a rename only in a durable one.
type JournalTx interface {
	SaveRequests(ctx context.Context, rs []RequestRecord) error
	DeleteFile(ctx context.Context, path string) error
	SaveFiles(ctx context.Context, fs []FileRecord) ([]int64, error)
	MarkRenameIntents(ctx context.Context, intents []RenameIntent) (errs []error)
}

// CheckpointLister is a Store that can list the files with a resume point at once; the Engine
// then asks for a file's only when it has one (or began an upload in this run).
type CheckpointLister interface {
	CheckpointPaths(ctx context.Context) (map[string]bool, error)
}

// RenameIntent is one file about to be renamed into place at Remote (store.RenameIntent).
type RenameIntent struct{ Path, Remote, SHA256 string }

// RequestRecord is a request as the journal stores it. Its fields match store.Request so the
// wiring can convert one to the other directly.
type RequestRecord struct {
	ID        string
	Fields    string
	Status    string
	Files     int
	Folder    string
	State     State
	UpdatedAt time.Time
	Delivered bool // delivered whole at least once (reqState.delivered)
}

// FileRecord is a file as the journal stores it. Its fields match store.File so the wiring can
// convert one to the other directly.
type FileRecord struct {
	ID           int64
	Path         string
	RequestID    string
	Size         int64
	ModTime      time.Time
	Inode        uint64
	State        State
	Reason       string
	Message      string
	SHA256       string
	RemotePath   string
	RenameIntent bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	DeliveredAt  time.Time
}

// Reporter hears of every change to a request's view: the status files, and later the
// events, API and dashboard, are built from it. It is called from the Engine's loop and must
// not block for long.
type Reporter interface {
	RequestChanged(v RequestView)
}

// Clock is the daemon's one time source (retry backoff, the journal check, the times in
// views and records), injected so tests never wait for real; cmd/hotdrop passes the same
// clock to the watcher, the uploader and the reports.
type Clock = clock.Clock

// RequestView is a snapshot of one request and its files, for reporting.
type RequestView struct {
	ID            string
	Fields        map[string]string
	Status        string // the studio's
	State         State  // hotdrop's
	Folder        string
	FilesExpected int
	Bin           bool // the File Bin's view: files not (yet) tied to a request
	// Files are the files that are not frames of a sequence, by name; past maxListedFiles,
	// only those that most need attention (FilesOmitted says how many more there are).
	Files        []FileView
	FilesOmitted int
	// Sequences shows each frame sequence as one row (SPEC.md, Frame sequences).
	Sequences []SequenceView
	// Counts is how many files (frames included) are in each state.
	Counts    map[State]int
	UpdatedAt time.Time
	// Why says in one line what the request waits for while it is not delivered (the ready
	// marker, more files, a retry's cause…); "" when delivered.
	Why string
	// CanDeliver says whether `hotdrop deliver` would change anything for it now.
	CanDeliver bool
}

// SequenceView is one frame sequence of a request: shot_010.[1001-2400].exr, 1,400 frames,
// 8.2 GiB, 1,388 delivered.
type SequenceView struct {
	Name          string // the frames' names with the number as a range
	First, Last   int64
	Frames        int
	Size          int64
	Delivered     int
	DeliveredSize int64
	Done          int64 // bytes sent of the frames being uploaded
	State         State // as a request's is derived from its files
	Counts        map[State]int
	// Reason and Message are the first held or failed frame's (by number).
	Reason, Message string
	ChangedAt       time.Time
}

// FileView is a snapshot of one file, for reporting.
type FileView struct {
	ID         int64
	Request    string // the request it belongs to; "" while undecided (File Bin)
	Metadata   map[string]string
	Name       string // slash path inside its drop folder
	Path       string
	State      State
	Reason     string
	Message    string
	Size       int64
	SHA256     string
	RemotePath string
	// Verified is what proved the delivered copy ("hash", "readback", "size"), as this run
	// saw it; "" for a file delivered before the start.
	Verified  string
	ChangedAt time.Time
	// Retrying is set while a transient error is being retried.
	Retrying bool
	Attempt  int
	NextTry  time.Time
	Done     int64
	// Media are the key properties the content check found (frame_rate, resolution...).
	Media map[string]string
	// Why says in one line what a settling or retrying file waits for ("" otherwise: a held or
	// failed file has its Reason).
	Why string
	// RetryReason is the transient error being retried, in words.
	RetryReason string
}
