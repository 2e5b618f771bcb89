package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hotdrop/hotdrop/config"
	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/report"
	"github.com/hotdrop/hotdrop/store"
)

// reporting is everything that tells the world what the daemon does, besides the status
// files: the events journal and its live views, the webhook and tracker outboxes, the tracker
// as the source of requests, and the HTTP server (dashboard, API, SSE, /metrics, /healthz).
type reporting struct {
	cfg     *config.Config
	st      *store.Store
	log     *slog.Logger
	hub     *report.Hub
	metrics *report.Metrics
	srv     *report.Server   // nil when status.listen = ""
	senders []*report.Sender // one per outbox target
	tracker *report.Tracker  // nil unless requests.source = "http"
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// journalKeep is how long journaled events are kept once every target has them.
const journalKeep = 30 * 24 * time.Hour

// readSecretFile reads a token or secret file: its content with surrounding white space
// trimmed. The content is never logged or put in an error.
func readSecretFile(key, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", key, path)
	}
	return s, nil
}

// clearTrackerToken says when the tracker's token would cross the network in clear text: a
// requests.url of plain http:// to a host other than this one, with requests.token_file set.
// Whoever reads it can read the studio's requests, and whoever sits between can answer in
// the tracker's name.
func clearTrackerToken(cfg *config.Config) string {
	if cfg.Requests.Source != "http" || cfg.Requests.TokenFile == "" {
		return ""
	}
	u, err := url.Parse(cfg.Requests.URL)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || report.IsLoopbackHost(u.Hostname()) {
		return ""
	}
	return fmt.Sprintf("requests.url is plain http:// to %s, so requests.token_file's token crosses the network in clear text, "+
		"and anyone between can read the requests or answer in the tracker's name; use https://", u.Hostname())
}

// minStatusToken is the shortest status token taken: it guards retry, deliver and, off
// loopback, everything; a reviewer's "a" was taken without a word.
const minStatusToken = 16

// statusToken reads status.token_file and refuses a token too short to guard anything.
func statusToken(cfg *config.Config) (string, error) {
	tok, err := readSecretFile("status.token_file", cfg.Status.TokenFile)
	if err != nil {
		return "", err
	}
	if n := len([]rune(tok)); n < minStatusToken {
		return "", fmt.Errorf("status.token_file: the token in %s is %d characters; it must be at least %d (a random one: openssl rand -hex 32 > %s)",
			cfg.Status.TokenFile, n, minStatusToken, cfg.Status.TokenFile)
	}
	return tok, nil
}

// newReporting reads the secrets, binds status.listen and prepares the senders and the
// tracker. Nothing runs until start.
func newReporting(cfg *config.Config, st *store.Store, log *slog.Logger) (*reporting, error) {
	r := &reporting{cfg: cfg, st: st, log: log, metrics: report.NewMetrics()}
	tracked := cfg.Requests.Source == "http"
	r.hub = report.NewHub(report.HubOptions{Store: st, Webhook: cfg.Status.Webhook != "", Tracker: tracked,
		Metrics: r.metrics, Logger: log})
	if cfg.Status.Webhook != "" {
		s := &report.Sender{Store: st, Target: report.TargetWebhook, Logger: log,
			URL: func(store.Event) string { return cfg.Status.Webhook }}
		if cfg.Status.WebhookSecretFile != "" {
			secret, err := readSecretFile("status.webhook_secret_file", cfg.Status.WebhookSecretFile)
			if err != nil {
				return nil, err
			}
			s.Secret = []byte(secret)
		}
		r.senders = append(r.senders, s)
	}
	if tracked {
		r.tracker = &report.Tracker{URL: cfg.Requests.URL, Poll: cfg.Requests.Poll, Max: cfg.Requests.Max, Logger: log}
		if cfg.Requests.TokenFile != "" {
			tok, err := readSecretFile("requests.token_file", cfg.Requests.TokenFile)
			if err != nil {
				return nil, err
			}
			r.tracker.Token = tok
		}
		if w := clearTrackerToken(cfg); w != "" {
			log.Warn(w)
		}
		saved, err := st.Requests(context.Background())
		if err != nil {
			return nil, err
		}
		r.tracker.Seed(report.RequestsFromStore(saved))
		r.senders = append(r.senders, &report.Sender{Store: st, Target: report.TargetTracker, Logger: log,
			URL: r.tracker.EventURL, Token: r.tracker.Token})
	}
	for _, s := range r.senders {
		r.hub.OnJournal(s.Wake)
	}
	o := report.ServerOptions{Listen: cfg.Status.Listen, Socket: socketPath(cfg), TLSCert: cfg.Status.TLSCert,
		TLSKey: cfg.Status.TLSKey, Hosts: cfg.Status.Hosts, Hub: r.hub, Metrics: r.metrics, Store: st, Logger: log}
	if cfg.Status.TokenFile != "" {
		tok, err := statusToken(cfg)
		if err != nil {
			return nil, err
		}
		o.Token = tok
	}
	srv, err := report.NewServer(o)
	if err != nil {
		return nil, err
	}
	// Deliveries matter more than the dashboard: a port in use is a loud error, not a
	// reason to leave files undelivered overnight.
	if err := srv.Listen(); err != nil {
		log.Error("the dashboard, API and /metrics are off: cannot listen", "err", err)
		o.Listen = ""
		if srv, err = report.NewServer(o); err != nil {
			return nil, err
		}
	}
	if err := srv.ListenSocket(); err != nil {
		log.Error("hotdrop status, retry and deliver cannot reach this daemon", "err", err)
	}
	if srv.Listening() {
		r.srv = srv
	}
	return r, nil
}

// reporter hears every request view, for the API and the dashboard.
func (r *reporting) reporter() delivery.Reporter { return r.hub }

// withEvents sets the event sink on the Engine's options.
func (r *reporting) withEvents(o delivery.Options) delivery.Options {
	o.Events = r.hub
	return o
}

// requests is the list the Engine runs with: the requests files' (source = "file"), or the
// tracker's last known list (source = "http"): at start the one saved in the journal, so a
// tracker that is down changes nothing.
func (r *reporting) requests(creqs []config.Request) []delivery.Request {
	if r.tracker != nil {
		return r.tracker.Known()
	}
	return toDeliveryRequests(creqs)
}

// start runs the server, the outbox senders and the tracker until close.
// apply installs a tracker's new list (the daemon rebuilds its matcher, then the engine's
// requests).
func (r *reporting) start(ctx context.Context, eng *delivery.Engine, apply func(context.Context, []delivery.Request) error) error {
	ctx, r.cancel = context.WithCancel(ctx)
	run := func(name string, fn func(context.Context) error) {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				r.log.Error(name+" stopped", "err", err)
			}
		}()
	}
	if r.srv != nil {
		r.srv.SetControl(eng)
		run("status server", r.srv.Serve)
		if r.srv.Addr() != "" {
			scheme := "http"
			if r.cfg.Status.TLSCert != "" {
				scheme = "https"
			}
			r.log.Info("dashboard and API", "url", scheme+"://"+r.srv.Addr()+"/")
		}
	}
	for _, s := range r.senders {
		s.Wake() // deliveries left over from the last run
		run(s.Target+" outbox", s.Run)
	}
	if r.tracker != nil {
		r.tracker.Apply = apply
		run("tracker", r.tracker.Run)
	}
	run("views", func(ctx context.Context) error {
		// Requests dropped from the requests files or the tracker leave the dashboard and
		// the metrics. Engine.Requests is safe here: this is not the engine's loop.
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Second):
			}
			r.hub.Retain(eng.RequestIDs())
		}
	})
	run("journal pruning", func(ctx context.Context) error {
		for {
			if n, err := r.st.PruneEvents(ctx, time.Now().Add(-journalKeep)); err != nil {
				r.log.Warn("pruning the events journal", "err", err)
			} else if n > 0 {
				r.log.Info("pruned old events from the journal", "events", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(6 * time.Hour):
			}
		}
	})
	return nil
}

// close stops everything start started and waits for it.
func (r *reporting) close() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}
