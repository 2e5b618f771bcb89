package report

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hotdrop/hotdrop/internal/backoff"
	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/store"
)

// SignatureHeader carries the HMAC-SHA256 of "TIMESTAMP.BODY", as "sha256=HEX", when
// status.webhook_secret_file is set; TimestampHeader carries TIMESTAMP, the Unix seconds
// at which the request was made. Signing the time lets a receiver refuse a replayed
// delivery (say, one older than five minutes) as well as a forged one.
const (
	SignatureHeader = "X-Hotdrop-Signature"
	TimestampHeader = "X-Hotdrop-Timestamp"
)

// Sign returns the SignatureHeader value of body sent at timestamp (Unix seconds) under
// secret.
func Sign(secret []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(strconv.AppendInt(nil, timestamp, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// safeClient is the HTTP client of the webhook and the tracker (c, or a new one when nil):
// it follows redirects only while they keep https (a redirect from https to http would send
// the token and the events in clear text), and at most five of them.
func safeClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	cc := *c
	if cc.CheckRedirect == nil {
		cc.CheckRedirect = checkRedirect
	}
	return &cc
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
		return fmt.Errorf("refusing a redirect from https to %s: it would send the event and the token unencrypted", redact(req.URL.String()))
	}
	return nil
}

// Sender delivers one target's outbox: each journaled event is POSTed, oldest first, until
// the receiver accepts it (2xx), retrying with exponential backoff and jitter, across
// restarts (the attempts and the next try are journaled). Delivery is at-least-once: a
// receiver de-duplicates on the event's id.
//
// Order is kept per request: while an event of a request waits for a retry, no later event
// of that request is sent. A receiver that is down (no answer, a timeout, a 5xx) stops the
// whole pass until its next try; a 4xx holds back only the request it concerned.
type Sender struct {
	Store  *store.Store
	Target string
	// URL gives where an event goes (the webhook's URL, the tracker's per-request URL).
	URL func(ev store.Event) string
	// Token, when set, is sent as "Authorization: Bearer"; Secret, when set, signs the body.
	Token  string
	Secret []byte
	Client *http.Client
	// Timeout bounds every call (default 10s).
	Timeout time.Duration
	// BackoffBase and BackoffMax bound the waits between tries (default 2s and 10m).
	BackoffBase, BackoffMax time.Duration
	Clock                   clock.Clock // default: the wall clock
	Logger                  *slog.Logger

	once sync.Once
	wake chan struct{}
}

// Wake tells the Sender a new event is queued. It never blocks.
func (s *Sender) Wake() {
	select {
	case s.wakeCh() <- struct{}{}:
	default:
	}
}

func (s *Sender) wakeCh() chan struct{} {
	s.once.Do(func() { s.wake = make(chan struct{}, 1) })
	return s.wake
}

func (s *Sender) defaults() {
	s.Client = safeClient(s.Client)
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	if s.BackoffBase <= 0 {
		s.BackoffBase = 2 * time.Second
	}
	if s.BackoffMax <= 0 {
		s.BackoffMax = 10 * time.Minute
	}
	if s.Clock == nil {
		s.Clock = clock.Real{}
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
}

// outboxBatch is how many deliveries one pass reads.
const outboxBatch = 1000

// Run sends until ctx is cancelled. Call Wake (or set up Hub.OnJournal) before Run so no
// wake-up is lost; a Sender must not be run twice at once.
func (s *Sender) Run(ctx context.Context) error {
	s.defaults()
	wake := s.wakeCh()
	for {
		wait, err := s.pass(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.Logger.Error("outbox", "target", s.Target, "err", err)
			wait = s.BackoffBase
		}
		var timer <-chan time.Time
		if wait >= 0 {
			timer = s.Clock.After(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-timer:
		}
	}
}

// pass sends what is due and returns how long until the next try is due (-1: nothing owed).
func (s *Sender) pass(ctx context.Context) (time.Duration, error) {
	items, err := s.Store.Outbox(ctx, s.Target, outboxBatch)
	if err != nil {
		return 0, err
	}
	if len(items) == 0 {
		return -1, nil
	}
	blocked := map[string]bool{} // requests with an earlier event still owed
	next := time.Duration(-1)
	later := func(at time.Time) {
		d := max(at.Sub(s.Clock.Now()), 0)
		if next < 0 || d < next {
			next = d
		}
	}
	for _, it := range items {
		if ctx.Err() != nil {
			return 0, nil
		}
		key := it.Event.RequestID
		if blocked[key] {
			continue
		}
		if !it.NextTry.IsZero() && it.NextTry.After(s.Clock.Now()) {
			blocked[key] = true
			later(it.NextTry)
			continue
		}
		// A send in flight finishes (within Timeout) even when ctx ends, and its outcome is
		// recorded: a receiver that got the event is not sent it again after a restart.
		bg := context.WithoutCancel(ctx)
		err := s.send(bg, it.Event)
		if err == nil {
			if err := s.Store.OutboxDone(bg, it.Seq); err != nil {
				return 0, err
			}
			continue
		}
		attempts := it.Attempts + 1
		at := s.Clock.Now().Add(backoff.Policy{Base: s.BackoffBase, Max: s.BackoffMax}.Delay(attempts))
		s.Logger.Warn("sending event failed; will retry", "target", s.Target, "event", it.Event.ID, "type", it.Event.Type,
			"request", it.Event.RequestID, "attempt", attempts, "next_try", at.UTC().Format(time.RFC3339), "err", err)
		if ferr := s.Store.OutboxFailed(bg, it.Seq, attempts, at, err.Error()); ferr != nil {
			return 0, ferr
		}
		blocked[key] = true
		later(at)
		var re *receiverError
		if !errors.As(err, &re) || re.status >= 500 || re.status == http.StatusTooManyRequests || re.status == http.StatusRequestTimeout {
			return next, nil // the receiver is down: the rest waits for the same next try
		}
	}
	if len(items) == outboxBatch && next < 0 {
		next = 0
	}
	return next, nil
}

// receiverError is an answer other than 2xx.
type receiverError struct {
	status int
	body   string
}

func (e *receiverError) Error() string {
	if e.body != "" {
		return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
	}
	return fmt.Sprintf("HTTP %d", e.status)
}

func (s *Sender) send(ctx context.Context, ev store.Event) error {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	url := s.URL(ev)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.Body))
	if err != nil {
		return fmt.Errorf("event %s: %s: %w", ev.ID, redact(url), bareNetError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hotdrop")
	req.Header.Set("X-Hotdrop-Event", ev.Type)
	req.Header.Set("X-Hotdrop-Delivery", ev.ID)
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	if len(s.Secret) > 0 {
		ts := s.Clock.Now().Unix()
		req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
		req.Header.Set(SignatureHeader, Sign(s.Secret, ts, ev.Body))
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("posting event %s to %s: %w", ev.ID, redact(url), bareNetError(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return &receiverError{status: resp.StatusCode, body: string(bytes.TrimSpace(snippet))}
	}
	return nil
}
