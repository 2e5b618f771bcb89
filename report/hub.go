package report

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/store"
)

// Outbox targets: the names under which deliveries wait in the store's outbox.
const (
	TargetWebhook = "webhook"
	TargetTracker = "tracker"
)

// subscriberBuffer bounds what one slow live view may fall behind before it is told to
// resync: the engine's loop never waits for a browser.
const subscriberBuffer = 256

// Hub is where the Engine's news arrives: as the EventSink it journals every event but
// file.progress (with its outbox deliveries, in one transaction) and as a Reporter it keeps
// the latest view of every request. It fans both out to live subscribers (SSE) without ever
// blocking: a subscriber that falls behind loses frames and is told to resync.
//
// Emit and RequestChanged are called from the Engine's loop; everything else from anywhere.
type Hub struct {
	st      *store.Store
	targets []string
	log     *slog.Logger
	metrics *Metrics

	mu     sync.Mutex
	views  map[string]RequestInfo // by request id; "" is the File Bin
	subs   map[*subscriber]struct{}
	wakers []func()
	// problems are the last reload's refused config or requests-file errors (problems.go).
	problems []Problem
}

// HubOptions configure a Hub.
type HubOptions struct {
	Store *store.Store
	// Webhook and Tracker say which outbox targets exist: every journaled event is queued for
	// the webhook, and each event about a request for the tracker.
	Webhook, Tracker bool
	Metrics          *Metrics // nil: none
	Logger           *slog.Logger
}

var (
	_ delivery.EventSink = (*Hub)(nil)
	_ delivery.Reporter  = (*Hub)(nil)
)

// NewHub makes a Hub.
func NewHub(o HubOptions) *Hub {
	h := &Hub{st: o.Store, log: o.Logger, metrics: o.Metrics, views: map[string]RequestInfo{},
		subs: map[*subscriber]struct{}{}}
	if h.log == nil {
		h.log = slog.Default()
	}
	if o.Webhook {
		h.targets = append(h.targets, TargetWebhook)
	}
	if o.Tracker {
		h.targets = append(h.targets, TargetTracker)
	}
	return h
}

// OnJournal registers fn to be called (without blocking) after each journaled event: how
// outbox senders learn there is work.
func (h *Hub) OnJournal(fn func()) {
	h.mu.Lock()
	h.wakers = append(h.wakers, fn)
	h.mu.Unlock()
}

// Emit journals ev (unless it is file.progress), updates the metrics and the live views, and
// passes it to every subscriber.
func (h *Hub) Emit(ev delivery.Event) { h.EmitBatch([]delivery.Event{ev}) }

var _ delivery.BatchSink = (*Hub)(nil)

// EmitBatch is Emit for the events of one batch of the Engine's loop: they are journaled in
// one transaction. An event is encoded only when it is journaled or someone listens: the
// marker of a 100,000-frame request starts them all in one batch, and their file.uploading
// events (not journaled) were 40 MB of JSON for nobody on a daemon without a live view.
func (h *Hub) EmitBatch(evs []delivery.Event) {
	b := h.prepare(evs)
	if len(b.recs) > 0 {
		got, err := h.st.AppendEvents(context.Background(), b.recs, b.targets)
		b.journaled(got, err)
	}
	h.announce(b)
}

// EventTx is a transaction of the journal that takes events: the one the engine's journal
// writer writes a batch in (cmd/hotdrop's adapter of store.Tx).
type EventTx interface {
	AppendEvents(evs []store.Event, targets [][]string) ([]int64, error)
}

var _ delivery.TxSink = (*Hub)(nil)

// JournalBatch journals the events of one batch of the Engine's loop in the transaction its
// records are written in (a tx that is no EventTx gets them journaled on their own, after
// it); announce passes them on once it is committed.
func (h *Hub) JournalBatch(tx delivery.JournalTx, evs []delivery.Event) (announce func(), err error) {
	etx, ok := tx.(EventTx)
	if !ok || h.st == nil {
		return func() { h.EmitBatch(evs) }, nil
	}
	b := h.prepare(evs)
	if len(b.recs) > 0 {
		got, err := etx.AppendEvents(b.recs, b.targets)
		if err != nil {
			return nil, fmt.Errorf("journaling %d events from %s: %w", len(b.recs), b.recs[0].ID, err)
		}
		b.journaled(got, nil)
	}
	return func() { h.announce(b) }, nil
}

// eventBatch is a batch of events on its way through the hub: encoded, and the records of
// those journaled.
type eventBatch struct {
	evs     []delivery.Event
	bodies  [][]byte
	seqs    []int64
	bad     []bool
	recs    []store.Event
	targets [][]string
	at      []int // recs[k] is evs[at[k]]
	h       *Hub
}

// prepare encodes what is journaled.
func (h *Hub) prepare(evs []delivery.Event) *eventBatch {
	b := &eventBatch{evs: evs, bodies: make([][]byte, len(evs)), seqs: make([]int64, len(evs)), bad: make([]bool, len(evs)), h: h}
	for i, ev := range evs {
		// A frame's file.uploading is shown live but not journaled: its sequence's milestone
		// says as much, and at 100,000 frames it was a third of the journal's writes.
		frameStart := ev.Type == delivery.EventFileUploading && ev.File != nil && ev.File.Sequence != ""
		if ev.Type != delivery.EventFileProgress && !frameStart && h.st != nil {
			body, ok := h.encode(ev)
			if !ok {
				b.bad[i] = true
				continue
			}
			b.bodies[i] = body
			rec := store.Event{ID: ev.ID, Type: ev.Type, At: ev.At, Body: body}
			if ev.Request != nil {
				rec.RequestID = ev.Request.ID
			}
			b.recs, b.at = append(b.recs, rec), append(b.at, i)
			b.targets = append(b.targets, h.targetsFor(rec, ev))
		}
	}
	return b
}

// journaled takes the journal's seqs (or its refusal, logged: the events are still shown).
func (b *eventBatch) journaled(seqs []int64, err error) {
	if err != nil {
		b.h.log.Error("journaling events", "events", len(b.recs), "first", b.recs[0].ID, "err", err)
	}
	for k, seq := range seqs {
		b.seqs[b.at[k]] = seq
	}
}

// announce applies the batch to the live views, sends it to the subscribers and wakes the
// outbox senders when any event was journaled.
func (h *Hub) announce(b *eventBatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	woke := false
	for i, ev := range b.evs {
		if b.bad[i] {
			continue
		}
		if h.metrics != nil {
			h.metrics.observe(ev) // here, not in prepare: a retried transaction prepares again
		}
		if ev.Type == delivery.EventFileProgress {
			h.applyProgress(ev)
		}
		woke = woke || b.seqs[i] > 0
		if len(h.subs) == 0 {
			continue
		}
		body := b.bodies[i]
		if body == nil {
			var ok bool
			if body, ok = h.encode(ev); !ok {
				continue
			}
		}
		h.broadcast(frame{id: b.seqs[i], event: ev.Type, data: body})
	}
	if woke {
		for _, w := range h.wakers {
			w()
		}
	}
}

// encode is ev as the journal and live views carry it; false (logged) when it cannot be.
func (h *Hub) encode(ev delivery.Event) ([]byte, bool) {
	body, err := json.Marshal(ev)
	if err != nil {
		h.log.Error("encoding event", "type", ev.Type, "err", err)
		return nil, false
	}
	return body, true
}

// targetsFor are the outbox targets of an event. A frame's own events go to none: webhooks
// and the tracker get its sequence's milestones instead (sequence.*), not 100,000 POSTs.
func (h *Hub) targetsFor(ev store.Event, dev delivery.Event) []string {
	if dev.File != nil && dev.File.Sequence != "" {
		return nil
	}
	var out []string
	for _, t := range h.targets {
		if t == TargetTracker && ev.RequestID == "" {
			continue
		}
		out = append(out, t)
	}
	return out
}

// applyProgress keeps the latest figures in the view, so a page loaded mid-upload shows them.
func (h *Hub) applyProgress(ev delivery.Event) {
	if ev.Request == nil || ev.File == nil || ev.Progress == nil {
		return
	}
	v, ok := h.views[ev.Request.ID]
	if !ok {
		return
	}
	for i := range v.Files {
		if v.Files[i].ID == ev.File.ID {
			v.Files[i].Done, v.Files[i].Rate, v.Files[i].ETA = ev.Progress.Bytes, ev.Progress.Rate, ev.Progress.ETA
		}
	}
}

// RequestChanged keeps v as the latest view of its request and passes it to subscribers as a
// "request" frame.
func (h *Hub) RequestChanged(v delivery.RequestView) {
	ri := InfoFromView(v)
	key := ri.ID
	if ri.Bin {
		key = ""
	}
	data, err := json.Marshal(ri)
	if err != nil {
		h.log.Error("encoding request view", "request", ri.ID, "err", err)
		return
	}
	if h.metrics != nil {
		h.metrics.observeView(ri)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.views[key] = ri
	h.broadcast(frame{event: "request", data: data})
}

// SetRequests seeds the views (before the Engine reports), e.g. from the journal.
func (h *Hub) SetRequests(infos []RequestInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ri := range infos {
		if _, ok := h.views[ri.ID]; !ok {
			h.views[ri.ID] = ri
		}
	}
}

// Retain forgets the views (and their metrics) of requests not in ids: requests removed from
// the requests files or the tracker's list no longer show.
func (h *Hub) Retain(ids []string) {
	keep := map[string]bool{"": true}
	for _, id := range ids {
		keep[id] = true
	}
	h.mu.Lock()
	for id := range h.views {
		if !keep[id] {
			delete(h.views, id)
		}
	}
	h.mu.Unlock()
	if h.metrics != nil {
		h.metrics.retain(keep)
	}
}

// Requests lists the latest view of every request, by id, then the File Bin when it holds
// files.
func (h *Hub) Requests() []RequestInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]RequestInfo, 0, len(h.views))
	for k, v := range h.views {
		if k == "" && len(v.Files) == 0 {
			continue
		}
		out = append(out, cloneInfo(v))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bin != out[j].Bin {
			return !out[i].Bin
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Request returns the latest view of one request.
func (h *Hub) Request(id string) (RequestInfo, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.views[id]
	if !ok || id == "" {
		return RequestInfo{}, false
	}
	return cloneInfo(v), true
}

// FileByPath finds the id of a file hotdrop knows by its local path.
func (h *Hub) FileByPath(p string) (int64, bool) {
	p = filepath.Clean(p)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.views {
		for _, f := range v.Files {
			if f.Path == p || strings.EqualFold(f.Path, p) && filepath.Separator == '\\' {
				return f.ID, true
			}
		}
	}
	return 0, false
}

func cloneInfo(v RequestInfo) RequestInfo {
	v.Files = append([]FileInfo{}, v.Files...)
	v.Sequences = append([]SequenceInfo(nil), v.Sequences...)
	return v
}

// frame is one Server-Sent Events message.
type frame struct {
	id    int64 // journal seq; 0 = not journaled
	event string
	data  []byte
}

type subscriber struct {
	ch   chan frame
	lost chan struct{} // signalled when frames were dropped: the view must resync
}

// subscribe registers a live view; call the returned function to leave.
func (h *Hub) subscribe() (*subscriber, func()) {
	s := &subscriber{ch: make(chan frame, subscriberBuffer), lost: make(chan struct{}, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}

// broadcast is called with h.mu held, so every subscriber sees frames in the same order.
func (h *Hub) broadcast(f frame) {
	for s := range h.subs {
		select {
		case s.ch <- f:
		default:
			select {
			case s.lost <- struct{}{}:
			default:
			}
		}
	}
}

// subscribers counts live views, for tests.
func (h *Hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
