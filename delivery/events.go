package delivery

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Event types (SPEC.md, Reporting). Each state change of a file or a request is one event.
const (
	EventRequestReady         = "request.ready"
	EventRequestHeld          = "request.held"
	EventRequestReleased      = "request.released"
	EventRequestDelivered     = "request.delivered"
	EventRequestFailed        = "request.failed"
	EventRequestStatusChanged = "request.status_changed"
	EventFileHeld             = "file.held"
	EventFileReleased         = "file.released"
	EventFileUploading        = "file.uploading"
	EventFileDelivered        = "file.delivered"
	EventFileFailed           = "file.failed"
	EventDestinationDown      = "destination.unreachable"
	EventDestinationBack      = "destination.back"
	// EventJournalLost: the state database was deleted, replaced or made read-only; hotdrop
	// stops taking work and exits for the service manager to restart it.
	EventJournalLost = "state_dir.unavailable"
	// EventFileProgress goes to live views only (SSE), at most once a second per file; it is
	// never journaled, sent by webhook or sent to the tracker.
	EventFileProgress = "file.progress"
	// Sequence milestones: webhooks and the tracker get these instead of one event per frame
	// (the frames' own events are journaled and shown live, not sent).
	EventSequenceStarted   = "sequence.started"
	EventSequenceDelivered = "sequence.delivered"
	EventSequenceHeld      = "sequence.held"
)

// Event is one thing that happened, in the shape SPEC.md gives for the webhook, the tracker,
// SSE and the journal alike. ID is stable, so receivers can drop duplicates of an
// at-least-once delivery.
type Event struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	At       time.Time      `json:"at"`
	Request  *EventRequest  `json:"request,omitempty"`
	File     *EventFile     `json:"file,omitempty"`
	Reason   *EventReason   `json:"reason,omitempty"`
	Progress *Progress      `json:"progress,omitempty"`
	Sequence *EventSequence `json:"sequence,omitempty"`
}

// EventSequence is the frame sequence a sequence.* event concerns.
type EventSequence struct {
	Key       string `json:"key"`  // stable: the frames' names with the number as #
	Name      string `json:"name"` // shot_010.[1001-2400].exr
	Frames    int    `json:"frames"`
	Delivered int    `json:"delivered"`
	Size      int64  `json:"size"`
}

// EventRequest is the request an event concerns.
type EventRequest struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Status string `json:"status,omitempty"`
}

// EventFile is the file an event concerns.
type EventFile struct {
	ID         int64             `json:"id,omitempty"`
	Name       string            `json:"name"`
	Size       int64             `json:"size"`
	SHA256     string            `json:"sha256,omitempty"`
	RemotePath string            `json:"remote_path,omitempty"`
	Verified   string            `json:"verified,omitempty"` // file.delivered: "hash", "readback" or "size"
	Metadata   map[string]string `json:"metadata,omitempty"`
	// Sequence is the key of the frame sequence the file is a frame of: its events are
	// journaled and shown live; receivers get the sequence's milestones instead.
	Sequence string `json:"sequence,omitempty"`
}

// EventReason is a hold or failure code with its sentence.
type EventReason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Progress is a file.progress event's figures.
type Progress struct {
	Bytes int64   `json:"bytes"`
	Total int64   `json:"total"`
	Rate  float64 `json:"rate"`          // bytes per second
	ETA   float64 `json:"eta,omitempty"` // seconds
}

// BatchSink is an EventSink that takes the events of one batch of the Engine's loop at once
// (journaled in one transaction).
type BatchSink interface {
	EmitBatch(evs []Event)
}

// TxSink is an EventSink that journals the events of one batch in the batch's own
// transaction, so that a batch's records and its events land together or not at all.
// announce passes them on (live views, outbox senders); the writer calls it once the
// transaction is committed, never when it was rolled back.
type TxSink interface {
	JournalBatch(tx JournalTx, evs []Event) (announce func(), err error)
}

// EventSink hears every event. Emit is called from the Engine's loop: it must not block for
// long (journal and hand off; send from elsewhere).
type EventSink interface {
	Emit(ev Event)
}

// newEventID is "ev_" and 24 hex digits: the time in milliseconds (48 bits), then 48
// random bits. Ids made later sort later, so the journal's unique index on them grows at its
// end: wholly random ids put each event on a page of their own, and every batch's commit
// wrote one page of that index per event (issue 11).
func newEventID() string {
	var b [12]byte
	ms := uint64(time.Now().UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (40 - 8*i))
	}
	rand.Read(b[6:])
	var id [3 + 2*len(b)]byte // one allocation, the string's
	copy(id[:], "ev_")
	hex.Encode(id[3:], b[:])
	return string(id[:])
}

// fileEventType maps a file's move from one state to another to the event it makes, or "".
func fileEventType(from, to State) string {
	switch {
	case from == to:
		return ""
	case to == Held:
		return EventFileHeld
	case to == Uploading:
		return EventFileUploading
	case to == Delivered:
		return EventFileDelivered
	case to == Failed:
		return EventFileFailed
	case from == Held:
		return EventFileReleased
	}
	return ""
}

// requestEventType maps a request's move from one state to another to the event it makes.
func requestEventType(from, to State) string {
	switch {
	case from == to:
		return ""
	case to == Ready:
		return EventRequestReady
	case to == Held:
		return EventRequestHeld
	case to == Delivered:
		return EventRequestDelivered
	case to == Failed:
		return EventRequestFailed
	case from == Held:
		return EventRequestReleased
	}
	return ""
}

// save marks fs's record for the journal and announces its new state; both go out at the end
// of the batch (flushJournal), the record first.
func (e *Engine) save(_ context.Context, fs *fileState) {
	fs.rec.UpdatedAt = e.opt.Clock.Now()
	if e.unsaved == nil {
		e.unsaved = map[*fileState]struct{}{}
	}
	e.unsaved[fs] = struct{}{}
	st := fs.rec.State
	if typ := fileEventType(fs.emitted.state(), st); typ != "" {
		e.queue(e.fileEvent(typ, fs), fs)
	}
	fs.emitted = idxOf(st)
}

func (e *Engine) emit(ev Event) { e.queue(ev, nil) }

func (e *Engine) fileEvent(typ string, fs *fileState) Event {
	ev := Event{Type: typ, File: &EventFile{ID: fs.rec.ID, Name: fs.name, Size: fs.rec.Size, SHA256: fs.rec.SHA256,
		RemotePath: fs.rec.RemotePath}}
	if f, ok := fs.frameOf(); ok && fs.req() != "" {
		// A frame of a request: receivers get its sequence's milestones (sequenceMilestones,
		// per request). A File Bin frame no request took keeps its own events.
		ev.File.Sequence = f.Key
	}
	if r := e.reqs[fs.req()]; r != nil {
		ev.Request = r.eventRequest()
		ev.File.Metadata = fileMetadata(r, fs)
	}
	if typ == EventFileDelivered {
		ev.File.Verified = fs.verified
		withMedia(&ev, fs)
	}
	if fs.rec.Reason != "" {
		ev.Reason = &EventReason{Code: fs.rec.Reason, Message: fs.rec.Message}
	} else if fs.x().note != nil {
		ev.Reason, fs.more.note = fs.more.note, nil
	}
	return ev
}
