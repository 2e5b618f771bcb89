package report

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hotdrop/hotdrop/delivery"
	"github.com/hotdrop/hotdrop/internal/clock"
	"github.com/hotdrop/hotdrop/store"
)

// Control is what the API's buttons ask of the delivery engine (*delivery.Engine has it).
// Each call may block until the engine's loop takes it; it honours ctx.
type Control interface {
	Retry(ctx context.Context, requestID string) error
	RetryFile(ctx context.Context, idOrPath string) error
	Deliver(ctx context.Context, requestID string) error
	Unreachable() bool
}

// Replacer is a Control that can release files held remote_exists so that their upload
// replaces the server's file (`hotdrop retry --replace`; *delivery.Engine is one).
type Replacer interface {
	RetryReplace(ctx context.Context, idOrPath string) (int, error)
}

// DeliverSayer is a Control whose deliver also says what it did (*delivery.Engine is one): the
// API passes the sentence on, so a button or `hotdrop deliver` never claims more than happened.
type DeliverSayer interface {
	DeliverSay(ctx context.Context, requestID string) (string, error)
}

// ServerOptions configure the HTTP server on status.listen.
type ServerOptions struct {
	Listen string // host:port; "" = no TCP listener (the socket alone)
	// Socket is the path of a Unix socket (state_dir/hotdrop.sock) that serves the same API
	// to local commands. Whoever can open it (mode 0660: the service user and its group) is
	// trusted, so hotdrop status, retry and deliver need no token and never send one to
	// whatever happens to listen on status.listen. "" = none.
	Socket string
	// Token is the content of status.token_file ("" = none). Off loopback it is required and
	// every request must carry it; on loopback it lets non-browser clients POST.
	Token           string
	TLSCert, TLSKey string
	// Hosts are further names accepted in the Host header, besides the listen address (and,
	// on loopback, localhost; on a wildcard address, this machine's name and addresses).
	Hosts   []string
	Hub     *Hub
	Metrics *Metrics
	Store   *store.Store // request history and SSE resume (nil: none)
	Control Control      // nil: the buttons answer 503
	Logger  *slog.Logger
	Clock   clock.Clock // nil: the wall clock (sessions' expiry)
}

// Server is the dashboard, the JSON API, the event stream, /metrics and /healthz.
type Server struct {
	o        ServerOptions
	sock     net.Listener
	loopback bool
	hosts    map[string]bool
	cop      *http.CrossOriginProtection
	guesses  *guessLimiter // wrong tokens, per client address (guesses.go)
	controls chan struct{} // a place per button press waiting on the engine (maxControls)
	ln       net.Listener
	mux      *http.ServeMux

	mu  sync.Mutex
	ctx context.Context // Serve's: what engine calls run under
}

func (s *Server) baseCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return context.Background()
	}
	return s.ctx
}

//go:embed web
var webFS embed.FS

// NewServer checks the options. A non-loopback address without a token is refused: loopback
// is the only place where no token is acceptable, and even there it is not authentication.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Listen == "" && o.Socket == "" {
		return nil, errors.New("the status server needs status.listen or a socket")
	}
	host := "127.0.0.1"
	if o.Listen != "" {
		h, _, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return nil, fmt.Errorf("status.listen %q: %w", o.Listen, err)
		}
		host = h
	}
	s := &Server{o: o, loopback: isLoopback(host), hosts: map[string]bool{}, cop: http.NewCrossOriginProtection(), guesses: newGuessLimiter(),
		controls: make(chan struct{}, maxControls)}
	if !s.loopback && o.Token == "" {
		return nil, fmt.Errorf("status.listen %q is not a loopback address, so status.token_file is required: off loopback every request needs the token", o.Listen)
	}
	s.allowHosts(host)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	web, _ := fs.Sub(webFS, "web")
	static := http.FileServerFS(web)
	m.Handle("GET /{$}", static)
	m.Handle("GET /app.js", static)
	m.Handle("GET /app.css", static)
	m.HandleFunc("GET /login", s.loginForm)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.logout)
	m.HandleFunc("GET /api/requests", s.listRequests)
	m.HandleFunc("GET /api/requests/{id}", s.getRequest)
	m.HandleFunc("GET /api/events", s.events)
	m.HandleFunc("POST /api/requests/{id}/retry", s.control(func(ctx context.Context, c Control, id string) (string, error) {
		return "", c.Retry(ctx, id)
	}))
	m.HandleFunc("POST /api/requests/{id}/deliver", s.control(func(ctx context.Context, c Control, id string) (string, error) {
		if ds, ok := c.(DeliverSayer); ok {
			return ds.DeliverSay(ctx, id)
		}
		return "", c.Deliver(ctx, id)
	}))
	m.HandleFunc("POST /api/files/{id}/retry", s.control(func(ctx context.Context, c Control, id string) (string, error) {
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return "", fmt.Errorf("file %s: %w", id, delivery.ErrUnknown)
		}
		return "", c.RetryFile(ctx, id)
	}))
	replace := s.control(func(ctx context.Context, c Control, id string) (string, error) {
		rr, ok := c.(Replacer)
		if !ok {
			return "", fmt.Errorf("this hotdrop cannot replace remote files: %w", delivery.ErrNothingToDo)
		}
		n, err := rr.RetryReplace(ctx, id)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s: %d file(s) released; each replaces the file of its name on the server (journaled as replace_requested)", id, n), nil
	})
	m.HandleFunc("POST /api/requests/{id}/replace", replace)
	m.HandleFunc("POST /api/files/{id}/replace", replace)
	m.HandleFunc("GET /healthz", s.healthz)
	if s.o.Metrics != nil {
		m.Handle("GET /metrics", s.o.Metrics.Handler())
	}
	s.mux = m
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

// RequestList is GET /api/requests.
type RequestList struct {
	Requests []RequestInfo `json:"requests"`
	// Problems are config or requests-file errors the daemon refused; it runs with the last
	// good files until they are fixed.
	Problems []Problem `json:"problems,omitempty"`
}

// RequestDetail is GET /api/requests/{id}: the request and its latest journaled events.
type RequestDetail struct {
	RequestInfo
	Events []json.RawMessage `json:"events"`
}

func (s *Server) listRequests(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, RequestList{Requests: s.o.Hub.Requests(), Problems: s.o.Hub.Problems()})
}

func (s *Server) getRequest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ri, ok := s.o.Hub.Request(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{fmt.Sprintf("request %s is not known to hotdrop", id)})
		return
	}
	d := RequestDetail{RequestInfo: ri, Events: []json.RawMessage{}}
	if s.o.Store != nil {
		evs, err := s.o.Store.Events(r.Context(), 0, id, 1000)
		if err != nil {
			s.o.Logger.Error("reading events", "request", id, "err", err)
		}
		for _, ev := range evs {
			d.Events = append(d.Events, json.RawMessage(ev.Body))
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// controlTimeout bounds how long a button waits for the engine's loop.
const controlTimeout = 15 * time.Second

// maxControls bounds the button presses waiting on the engine at once: each waits in a
// goroutine of its own, which outlives its request when the engine is slow, so presses
// repeated against a busy engine would pile them up. Beyond it, a press is answered busy.
const maxControls = 16

func (s *Server) control(fn func(ctx context.Context, c Control, id string) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.o.Control == nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{"hotdrop is starting; try again in a moment"})
			return
		}
		// A button pressed is acted on even when its browser goes away or the handler stops
		// waiting: the call runs under the server's own context, not the request's, and ends
		// with the server. (The uploads it starts never hang on either: they run under the
		// engine's own context.) The handler waits at most controlTimeout.
		select {
		case s.controls <- struct{}{}:
		default:
			writeJSON(w, http.StatusServiceUnavailable, apiError{"hotdrop is busy with earlier requests of this kind; try again in a moment"})
			return
		}
		id := r.PathValue("id")
		type result struct {
			said string
			err  error
		}
		res := make(chan result, 1)
		go func() {
			defer func() { <-s.controls }()
			said, err := fn(s.baseCtx(), s.o.Control, id)
			res <- result{said, err}
		}()
		var err error
		var said string
		select {
		case r := <-res:
			said, err = r.said, r.err
		case <-time.After(controlTimeout):
			err = errors.New("hotdrop is busy and did not take the request in time; it may still act on it")
		case <-r.Context().Done():
			return
		}
		switch {
		case err == nil:
			writeJSON(w, http.StatusAccepted, controlReply{OK: true, Message: said})
		case errors.Is(err, delivery.ErrUnknown):
			writeJSON(w, http.StatusNotFound, apiError{err.Error()})
		case errors.Is(err, delivery.ErrNothingToDo):
			writeJSON(w, http.StatusConflict, apiError{err.Error()})
		default:
			writeJSON(w, http.StatusServiceUnavailable, apiError{err.Error()})
		}
	}
}

// controlReply answers a retry or deliver that was done; Message says what it did.
type controlReply struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.o.Control != nil && s.o.Control.Unreachable() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "destination unreachable")
		return
	}
	fmt.Fprintln(w, "ok")
}

// sseHeartbeat keeps proxies and browsers from closing an idle stream.
const sseHeartbeat = 25 * time.Second

// events is GET /api/events: Server-Sent Events. Journaled events carry their journal seq as
// the SSE id, so a client that reconnects with Last-Event-ID first gets what it missed.
// Frames: one per event (event: its type), "request" with a request's new view, and
// "resync" when the client fell behind and should fetch /api/requests again.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	// A stream outlives the server's ReadTimeout by design (TestEventStreamOutlivesTheReadTimeout);
	// its connection's read deadline is cleared all the same, whatever net/http does with it.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	sub, leave := s.o.Hub.subscribe()
	defer leave()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 3000\n\n")
	var last int64
	if lei, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && s.o.Store != nil {
		evs, err := s.o.Store.Events(r.Context(), lei, "", 1000)
		if err != nil || len(evs) == 1000 {
			writeFrame(w, frame{event: "resync", data: []byte("{}")})
		} else {
			for _, ev := range evs {
				writeFrame(w, frame{id: ev.Seq, event: ev.Type, data: ev.Body})
				last = ev.Seq
			}
		}
	}
	fl.Flush()
	tick := time.NewTicker(sseHeartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case <-sub.lost:
			writeFrame(w, frame{event: "resync", data: []byte("{}")})
		case f := <-sub.ch:
			if f.id != 0 && f.id <= last {
				continue // already sent from the journal
			}
			writeFrame(w, f)
		}
		fl.Flush()
	}
}

func writeFrame(w http.ResponseWriter, f frame) {
	if f.id != 0 {
		fmt.Fprintf(w, "id: %d\n", f.id)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", f.event, f.data)
}

// Listen binds status.listen, so that an address in use is an error at start. Without
// status.listen it does nothing.
func (s *Server) Listen() error {
	if s.o.Listen == "" || s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.o.Listen)
	if err != nil {
		return fmt.Errorf("status.listen %s: %w", s.o.Listen, err)
	}
	s.ln = ln
	return nil
}

// ListenSocket binds the local commands' socket. A socket left by a process that died is
// replaced (one process holds state_dir at a time); anything else at that path is not
// touched.
func (s *Server) ListenSocket() error {
	p := s.o.Socket
	if p == "" || s.sock != nil {
		return nil
	}
	if fi, err := os.Lstat(p); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return fmt.Errorf("socket %s: something that is not a socket is in the way; move it", p)
		}
		if c, err := net.Dial("unix", p); err == nil {
			c.Close()
			return fmt.Errorf("socket %s: another hotdrop answers on it", p)
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("socket %s: removing the one a stopped hotdrop left: %w", p, err)
		}
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		return fmt.Errorf("socket %s: %w", p, err)
	}
	// The service user and its group; the folder (state_dir, 0750) guards it too.
	if err := os.Chmod(p, 0o660); err != nil {
		ln.Close()
		return fmt.Errorf("socket %s: %w", p, err)
	}
	s.sock = ln
	return nil
}

// Listening reports whether Listen or ListenSocket bound anything to serve.
func (s *Server) Listening() bool { return s.ln != nil || s.sock != nil }

// socketHandler serves the socket: its peer was let in by the file system, so neither Host
// nor token is asked for, and no browser can reach it to forge a request.
func (s *Server) socketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		s.mux.ServeHTTP(w, r)
	})
}

// Addr is the bound address (after Listen).
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.o.Listen
	}
	return s.ln.Addr().String()
}

// Serve answers on the bound address until ctx is cancelled, then stops within a few
// seconds (event streams end with ctx).
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	if err := s.ListenSocket(); err != nil {
		return err
	}
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			// The whole request, body included: a client that sends its headers and then
			// holds a promised body back held its connection for good (POST /login takes no
			// token). The event stream clears it for itself (events).
			ReadTimeout: readTimeout,
			IdleTimeout: 2 * time.Minute,
			BaseContext: func(net.Listener) context.Context { return ctx },
			ErrorLog:    slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelDebug),
		}
	}
	var running []*http.Server
	done := make(chan error, 2)
	if s.ln != nil {
		srv := newServer(s.Handler())
		running = append(running, srv)
		ln := limitConns(s.ln, maxConns)
		go func() {
			if s.o.TLSCert != "" {
				done <- srv.ServeTLS(ln, s.o.TLSCert, s.o.TLSKey)
			} else {
				done <- srv.Serve(ln)
			}
		}()
	}
	if s.sock != nil {
		srv := newServer(s.socketHandler())
		running = append(running, srv)
		ln := limitConns(s.sock, maxConns)
		go func() { done <- srv.Serve(ln) }()
	}
	var failed error
	select {
	case err := <-done:
		failed = fmt.Errorf("status server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, srv := range running {
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
	}
	for range len(running) - btoi(failed != nil) {
		<-done
	}
	if s.sock != nil {
		os.Remove(s.o.Socket)
	}
	return failed
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetControl gives the server the engine behind its buttons; call it before Serve.
func (s *Server) SetControl(c Control) { s.o.Control = c }
