package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
)

// logOptions are the logging flags of `hotdrop run`.
type logOptions struct {
	format, level string
}

// addLogFlags registers --log-format and --log-level on fs.
func addLogFlags(fs *flag.FlagSet) *logOptions {
	o := &logOptions{}
	fs.StringVar(&o.format, "log-format", "text", "log format: text or json (one JSON object per line)")
	fs.StringVar(&o.level, "log-level", "", "least important level logged: debug, info, warn or error (default info, or $HOTDROP_LOG)")
	return o
}

// logger builds the logger the flags ask for, writing to w. Under systemd, when w is the
// journald stream, every line starts with its syslog priority so journald files it at the
// right level.
func (o *logOptions) logger(w io.Writer) (*slog.Logger, error) {
	level := o.level
	if level == "" {
		level = os.Getenv("HOTDROP_LOG")
	}
	lv, err := parseLevel(level)
	if err != nil {
		return nil, err
	}
	if o.format != "text" && o.format != "json" {
		return nil, usageError{fmt.Sprintf("--log-format %q: expected text or json", o.format)}
	}
	return buildLogger(w, o.format, lv, isJournald(w)), nil
}

// newLogger is the default logger: text at info level (debug with HOTDROP_LOG=debug).
func newLogger(w io.Writer) *slog.Logger {
	lv, err := parseLevel(os.Getenv("HOTDROP_LOG"))
	if err != nil {
		lv = slog.LevelInfo
	}
	return buildLogger(w, "text", lv, false)
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, usageError{fmt.Sprintf("log level %q: expected debug, info, warn or error", s)}
}

func buildLogger(w io.Writer, format string, level slog.Level, journald bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		// journald stamps every line itself; a second time only widens the line.
		if journald && len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return redactAttr(a)
	}}
	if !journald {
		if format == "json" {
			return slog.New(slog.NewJSONHandler(w, opts))
		}
		return slog.New(slog.NewTextHandler(w, opts))
	}
	pw := &priorityWriter{w: w}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(pw, opts)
	} else {
		h = slog.NewTextHandler(pw, opts)
	}
	return slog.New(&priorityHandler{inner: h, pw: pw})
}

// secretKeys are attribute names whose values are never written, whoever logs them: a
// safety net behind the rule that secrets are never passed to the logger at all.
var secretKeys = []string{"password", "passphrase", "secret", "token", "private_key"}

func redactAttr(a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	for _, s := range secretKeys {
		if strings.Contains(k, s) && !strings.HasSuffix(k, "_file") {
			return slog.String(a.Key, "***")
		}
	}
	return a
}

// priorityWriter puts the sd-daemon priority prefix ("<6>") before each line it is given.
// The handler writes one whole record per Write, so one prefix per Write is one per line.
type priorityWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *priorityWriter) Write(b []byte) (int, error) {
	// The caller holds mu (priorityHandler.Handle) and set prefix for this record.
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// priorityHandler sets the prefix for each record's level before the inner handler writes it.
type priorityHandler struct {
	inner slog.Handler
	pw    *priorityWriter
}

func (h *priorityHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *priorityHandler) Handle(ctx context.Context, r slog.Record) error {
	h.pw.mu.Lock()
	defer h.pw.mu.Unlock()
	h.pw.prefix = syslogPriority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h *priorityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &priorityHandler{inner: h.inner.WithAttrs(as), pw: h.pw}
}

func (h *priorityHandler) WithGroup(name string) slog.Handler {
	return &priorityHandler{inner: h.inner.WithGroup(name), pw: h.pw}
}

// syslogPriority maps a slog level to the prefix sd-daemon(3) defines.
func syslogPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>" // err
	case l >= slog.LevelWarn:
		return "<4>" // warning
	case l >= slog.LevelInfo:
		return "<6>" // info
	}
	return "<7>" // debug
}

// isJournald reports whether w is the stream systemd connected to journald (systemd's log,
// not hotdrop's SQLite journal): JOURNAL_STREAM names its device and inode, so a stderr
// redirected elsewhere is not mistaken for it.
func isJournald(w io.Writer) bool {
	js := os.Getenv("JOURNAL_STREAM")
	f, ok := w.(*os.File)
	if js == "" || !ok {
		return false
	}
	dev, ino, ok := fileID(f)
	return ok && js == fmt.Sprintf("%d:%d", dev, ino)
}
