package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/bounded"
	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/store"
)

// Tracker is the studio's tracker as the source of requests (requests.source = "http"): it
// polls GET {URL}/source-requests and hands the merged list to Apply (Engine.UpdateRequests),
// which creates drop folders for new requests, reopens redelivery_requested ones and stops
// others from taking files. A failed poll, or a request missing from one reply, changes
// nothing: the last known list stays, and a request is closed only by a status the tracker
// sends. Events go back through an outbox Sender using EventURL.
type Tracker struct {
	URL   string // the tracker API's base, without a trailing slash
	Token string // bearer token from requests.token_file; "" = none
	// Poll is the time between polls (default 1m); Timeout bounds each call (default 30s).
	Poll, Timeout time.Duration
	// Max is the most requests one reply may list (requests.max, default
	// config.DefaultRequestsMax); a reply listing more is refused whole.
	Max    int
	Client *http.Client
	Clock  clock.Clock // default: the wall clock
	Logger *slog.Logger
	// Apply installs the merged list of requests; it is called only when the list changed.
	Apply func(ctx context.Context, reqs []delivery.Request) error

	mu    sync.Mutex
	known map[string]delivery.Request
	etag  string
}

// Seed sets the last known requests (from the journal, at start), so that a tracker that is
// down at start changes nothing either.
func (t *Tracker) Seed(reqs []delivery.Request) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.known = map[string]delivery.Request{}
	for _, r := range reqs {
		t.known[r.ID] = r
	}
}

// Known returns the last known requests, by id.
func (t *Tracker) Known() []delivery.Request {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sorted()
}

func (t *Tracker) sorted() []delivery.Request {
	out := make([]delivery.Request, 0, len(t.known))
	for _, r := range t.known {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// EventURL is where an event about a request is POSTed: {URL}/source-requests/{id}/events.
func (t *Tracker) EventURL(ev store.Event) string {
	return strings.TrimRight(t.URL, "/") + "/source-requests/" + url.PathEscape(ev.RequestID) + "/events"
}

func (t *Tracker) defaults() {
	if t.Poll <= 0 {
		t.Poll = config.DefaultRequestsPoll
	}
	if t.Timeout <= 0 {
		t.Timeout = 30 * time.Second
	}
	if t.Max <= 0 {
		t.Max = config.DefaultRequestsMax
	}
	t.Client = safeClient(t.Client)
	if t.Clock == nil {
		t.Clock = clock.Real{}
	}
	if t.Logger == nil {
		t.Logger = slog.Default()
	}
}

// Run polls now and then every Poll until ctx is cancelled. Errors are logged, never fatal.
func (t *Tracker) Run(ctx context.Context) error {
	t.defaults()
	for {
		if _, err := t.PollOnce(ctx); err != nil && ctx.Err() == nil {
			// Cut: an error joins one line per request whose folder failed, each with its path.
			t.Logger.Error("tracker poll failed; the last known requests stay in force", "url", redact(t.URL), "err", bounded.Cut(err.Error(), maxShownError))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.Clock.After(t.Poll):
		}
	}
}

// PollOnce fetches the tracker's requests once and applies them if anything changed. It
// reports whether the list changed.
func (t *Tracker) PollOnce(ctx context.Context) (bool, error) {
	t.defaults()
	reqs, notModified, err := t.fetch(ctx)
	if err != nil || notModified {
		return false, err
	}
	t.mu.Lock()
	if t.known == nil {
		t.known = map[string]delivery.Request{}
	}
	changed := false
	for _, r := range reqs {
		old, ok := t.known[r.ID]
		if ok && old.Status == r.Status && old.Files == r.Files && maps.Equal(old.Fields, r.Fields) {
			continue
		}
		if !ok {
			t.Logger.Info("tracker: new request", "request", r.ID, "status", bounded.Cut(r.Status, bounded.Shown))
		} else if old.Status != r.Status {
			t.Logger.Info("tracker: request status changed", "request", r.ID,
				"from", bounded.Cut(old.Status, bounded.Shown), "to", bounded.Cut(r.Status, bounded.Shown))
		}
		t.known[r.ID] = r
		changed = true
	}
	list := t.sorted()
	t.mu.Unlock()
	if !changed {
		return false, nil
	}
	if err := t.Apply(ctx, list); err != nil {
		return true, fmt.Errorf("applying the tracker's requests: %w", err)
	}
	return true, nil
}

// trackerReply is GET {url}/source-requests. Each request stays raw until the reply is known
// to hold no more than Max of them, and is then read on its own: one bad request is skipped,
// the others load.
type trackerReply struct {
	Requests []json.RawMessage `json:"requests"`
}

func (t *Tracker) fetch(ctx context.Context) ([]delivery.Request, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	u := strings.TrimRight(t.URL, "/") + "/source-requests"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("tracker %s: %w", redact(u), bareNetError(err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hotdrop")
	if t.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	t.mu.Lock()
	if t.etag != "" {
		req.Header.Set("If-None-Match", t.etag)
	}
	t.mu.Unlock()
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("tracker %s: %w", redact(u), bareNetError(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return nil, true, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, false, fmt.Errorf("tracker %s refused the token (HTTP %d): check requests.token_file", redact(u), resp.StatusCode)
	case resp.StatusCode/100 != 2:
		return nil, false, fmt.Errorf("tracker %s: HTTP %d", redact(u), resp.StatusCode)
	}
	if resp.ContentLength > int64(trackerLimits.MaxBytes) {
		// Said up front: not one byte of it is read.
		return nil, false, fmt.Errorf("tracker %s: the reply is %d bytes, more than the %d allowed; hotdrop refuses it unread", redact(u), resp.ContentLength, trackerLimits.MaxBytes)
	}
	// Read whole and bounded before decoding: a reply cut at the cap would decode as a syntax
	// error, and one shaped to explode (deep nesting, millions of members) must cost little.
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(trackerLimits.MaxBytes)+1))
	if err != nil {
		return nil, false, fmt.Errorf("tracker %s: reading the reply: %w", redact(u), bareNetError(err))
	}
	if err := bounded.JSON(body, trackerLimits); err != nil {
		var be *bounded.Error
		if errors.As(err, &be) && be.Line > 0 {
			return nil, false, fmt.Errorf("tracker %s reply:%w", redact(u), err) // "reply:LINE:COL: …"
		}
		return nil, false, fmt.Errorf("tracker %s: the reply %w", redact(u), err)
	}
	var reply trackerReply
	if err := json.Unmarshal(body, &reply); err != nil {
		return nil, false, fmt.Errorf("tracker %s: the reply is not the expected {\"requests\": [...]}: %w", redact(u), err)
	}
	if reply.Requests == nil {
		return nil, false, fmt.Errorf("tracker %s: the reply has no \"requests\" list", redact(u))
	}
	if n := len(reply.Requests); n > t.Max {
		// Refused whole, like any reply hotdrop cannot use: taking the first Max would close
		// nothing but leave the rest unseen without a word, and every request costs a drop
		// folder, journal rows and memory.
		return nil, false, fmt.Errorf("tracker %s: the reply lists %d requests, more than the %d hotdrop takes from one reply (requests.max); "+
			"the last known requests stay: have the tracker send only requests that are still in work, or raise requests.max", redact(u), n, t.Max)
	}
	var out []delivery.Request
	first := map[string]int{} // lower-cased id → index of its first appearance
	for i, raw := range reply.Requests {
		r, err := requestFromTracker(raw, func(msg string) { t.Logger.Warn("tracker: "+msg, "index", i) })
		if err != nil {
			t.Logger.Warn("tracker: skipping a request", "index", i, "err", err)
			continue
		}
		// Two entries with one id: which is right cannot be told, and taking the last one
		// silently would let a stale copy override. The first stays; the other is named.
		if j, dup := first[strings.ToLower(r.ID)]; dup {
			t.Logger.Warn("tracker: the reply lists request "+r.ID+" twice; the second is ignored", "first_index", j, "index", i)
			continue
		}
		first[strings.ToLower(r.ID)] = i
		out = append(out, r)
	}
	t.mu.Lock()
	t.etag = resp.Header.Get("ETag")
	t.mu.Unlock()
	return out, false, nil
}

// trackerLimits bound a tracker's reply ({"requests": [{...}]} is 3 levels deep): 64 MiB and
// a million fields hold a hundred thousand requests.
var trackerLimits = bounded.Limits{MaxBytes: 64 << 20, MaxDepth: 32, MaxKeys: 1_000_000}

// maxShownError is the most of a failed poll's error the log shows: the requests' own views
// say why each one has no drop folder.
const maxShownError = 4 << 10

// Bounds on one request of a tracker's reply, beyond trackerLimits' bounds on its shape. A
// request breaking one is skipped with one warning naming it and the bound; the others load.
// An id names a drop folder (one path element: 255 bytes on most file systems, shared with
// the template's other parts), events' URLs and every log line about the request; the other
// fields are a title, a language, a package id: short text, or notes a person reads.
const (
	MaxTrackerID      = 128      // bytes of a request's id; bounded.Shown shows it whole
	maxTrackerField   = 4 << 10  // bytes of any other field's value, and of a field's name
	maxTrackerRequest = 64 << 10 // bytes of one request as the tracker sent it
)

// errBadRequest marks a request in a tracker reply that hotdrop cannot use.
var errBadRequest = errors.New("unusable request")

// requestFromTracker reads one request object: string fields become Fields (language in its
// canonical BCP 47 form), files a count (default 1), status defaults to open. A field of
// another type is ignored, and warn says so naming the request: a tracker that sends
// "episode": 3 must learn it, not see the field silently vanish. A request that breaks a
// bound is an error naming it (its id cut to bounded.Shown) and the bound, never the value.
func requestFromTracker(raw json.RawMessage, warn func(string)) (delivery.Request, error) {
	r := delivery.Request{Status: delivery.StatusOpen, Files: 1, Fields: map[string]string{}}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return r, fmt.Errorf("an entry of the requests list is %s, not a request object like {\"id\": \"SR-1\"}: %w", bounded.Cut(string(raw), 40), errBadRequest)
	}
	name := "with no id"
	if id, ok := m["id"]; ok {
		name = bounded.Cut(fmt.Sprint(id), bounded.Shown)
	}
	if id, ok := m["id"].(string); ok && len(id) > MaxTrackerID {
		return r, fmt.Errorf("request %s: its id is %d bytes; hotdrop takes ids of at most %d bytes (they name drop folders): shorten it on the tracker: %w", name, len(id), MaxTrackerID, errBadRequest)
	}
	if long := longFields(m); len(long) > 0 {
		return r, fmt.Errorf("request %s: %s longer than the %d bytes hotdrop takes per field; shorten it on the tracker: %w", name, strings.Join(long, ", "), maxTrackerField, errBadRequest)
	}
	if len(raw) > maxTrackerRequest {
		return r, fmt.Errorf("request %s is %d bytes as sent; hotdrop takes at most %d bytes per request: keep long text out of the request on the tracker: %w", name, len(raw), maxTrackerRequest, errBadRequest)
	}
	var ignored []string
	for k, v := range m {
		switch val := v.(type) {
		case string:
			if k == "files" {
				return r, fmt.Errorf("request %s: files = %q is text; expected a number like 2: %w", name, bounded.Cut(val, bounded.Shown), errBadRequest)
			}
			if val != "" {
				r.Fields[k] = val
			}
		case float64:
			if k != "files" {
				ignored = append(ignored, fmt.Sprintf("%s (the number %v)", bounded.Cut(k, bounded.Shown), val))
				continue
			}
			if val < 0 || val != float64(int(val)) {
				return r, fmt.Errorf("request %s: files = %v is not a count: %w", name, val, errBadRequest)
			}
			r.Files = int(val)
		case nil:
		default:
			ignored = append(ignored, fmt.Sprintf("%s (%T)", bounded.Cut(k, bounded.Shown), v))
		}
	}
	if len(ignored) > 0 && warn != nil {
		sort.Strings(ignored)
		warn(fmt.Sprintf("request %s: fields that are not text are ignored: %s; send them as strings", name, strings.Join(ignored, ", ")))
	}
	r.ID = r.Fields["id"]
	if strings.ContainsRune(r.ID, utf8.RuneError) {
		// JSON decoding turns bytes that are not UTF-8 into U+FFFD: the id hotdrop would keep
		// is not the tracker's, and events sent back under it would name no request there.
		return r, fmt.Errorf("request %s: the id is not UTF-8 text (or holds U+FFFD); send it as UTF-8: %w", name, errBadRequest)
	}
	if !usableID(r.ID) {
		return r, fmt.Errorf("request %q: the id is not usable (it must be text without spaces or slashes): %w", r.ID, errBadRequest)
	}
	if s := r.Fields["status"]; s != "" {
		r.Status = s
	}
	r.Fields["status"] = r.Status
	if l := r.Fields["language"]; l != "" {
		tag, err := language.Parse(l)
		if err != nil {
			return r, fmt.Errorf("request %s: language %q is not a BCP 47 tag: %w", r.ID, bounded.Cut(l, bounded.Shown), errBadRequest)
		}
		r.Fields["language"] = tag.String()
	}
	return r, nil
}

// longFields names, sorted, the fields of m whose name or text is longer than
// maxTrackerField, with their length: "notes (31457280 bytes)".
func longFields(m map[string]any) []string {
	var long []string
	for k, v := range m {
		s, _ := v.(string)
		switch {
		case len(k) > maxTrackerField:
			long = append(long, fmt.Sprintf("a field name of %d bytes", len(k)))
		case len(s) > maxTrackerField && k != "id":
			long = append(long, fmt.Sprintf("%s (%d bytes)", bounded.Cut(k, bounded.Shown), len(s)))
		}
	}
	sort.Strings(long)
	if len(long) == 1 {
		return []string{"field " + long[0] + " is"}
	}
	if len(long) > 1 {
		long[0] = "fields " + long[0]
		long[len(long)-1] += " are"
	}
	return long
}

func usableID(s string) bool {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\:*?"<>|`) {
		return false
	}
	return !strings.ContainsFunc(s, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) })
}

// RequestsFromStore turns journaled requests back into the Engine's form: where a daemon
// with requests.source = "http" starts before the tracker answers.
func RequestsFromStore(in []store.Request) []delivery.Request {
	out := make([]delivery.Request, 0, len(in))
	for _, r := range in {
		var fields map[string]string
		if err := json.Unmarshal([]byte(r.Fields), &fields); err != nil || fields == nil {
			fields = map[string]string{"id": r.ID}
		}
		out = append(out, delivery.Request{ID: r.ID, Status: r.Status, Files: r.Files, Fields: fields})
	}
	return out
}
