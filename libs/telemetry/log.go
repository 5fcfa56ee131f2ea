package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Log levels and formats accepted by ParseLogConfig.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"

	FormatJSON = "json"
	FormatText = "text"
)

// Attribute keys the logger adds to records.
const (
	// TraceIDKey holds the hex trace id of the span in the record's context.
	TraceIDKey = "trace_id"
	// SpanIDKey holds the hex span id of the span in the record's context.
	SpanIDKey = "span_id"
	// ServiceKey holds the service name given to NewLogger.
	ServiceKey = "service"
)

// LogConfig says how a service logs. The zero value logs at info level, as
// text on a terminal and as JSON elsewhere.
type LogConfig struct {
	// Level is the minimum level logged: debug, info, warn or error.
	// Empty means info.
	Level string
	// Format is json or text. Empty means text when the log output is a
	// terminal and json otherwise (containers, files, pipes).
	Format string
}

// ParseLogConfig validates a level and a format, typically read from the
// LOG_LEVEL and LOG_FORMAT environment variables. Both are case-insensitive;
// an empty level means info and an empty format means "decide by the output".
// The error names the variable and the bad value, e.g.
// `LOG_LEVEL: unknown level "loud" (want debug, info, warn or error)`; when
// both are bad, both are reported.
func ParseLogConfig(level, format string) (LogConfig, error) {
	level = strings.ToLower(strings.TrimSpace(level))
	format = strings.ToLower(strings.TrimSpace(format))

	var errs []error
	switch level {
	case "":
		level = LevelInfo
	case LevelDebug, LevelInfo, LevelWarn, LevelError:
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL: unknown level %q (want debug, info, warn or error)", level))
	}
	switch format {
	case "", FormatJSON, FormatText:
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT: unknown format %q (want json or text)", format))
	}
	if len(errs) > 0 {
		return LogConfig{}, errors.Join(errs...)
	}
	return LogConfig{Level: level, Format: format}, nil
}

// slogLevel maps Level to a slog.Level; anything ParseLogConfig would reject
// is treated as info so a hand-built config never silences the logger.
func (c LogConfig) slogLevel() slog.Level {
	switch strings.ToLower(c.Level) {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// NewLogger returns a logger writing to w in the configured level and format.
// Every record carries a "service" attribute (omitted when service is empty)
// and, when the context passed to a *Context method (InfoContext, ...) holds a
// valid OpenTelemetry span context, "trace_id" and "span_id" attributes.
// Records logged without a context (Info, Error, ...) carry no trace id.
func NewLogger(w io.Writer, cfg LogConfig, service string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.slogLevel()}

	var h slog.Handler
	switch format := strings.ToLower(cfg.Format); {
	case format == FormatText, format == "" && isTerminal(w):
		h = slog.NewTextHandler(w, opts)
	default:
		h = slog.NewJSONHandler(w, opts)
	}
	if service != "" {
		h = h.WithAttrs([]slog.Attr{slog.String(ServiceKey, service)})
	}
	return slog.New(NewTraceHandler(h))
}

// isTerminal reports whether w is a character device such as a terminal.
// It is a heuristic (it also says yes for /dev/null), good enough to pick a
// log format a human can read.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return fi.Mode()&os.ModeCharDevice != 0
}

// NewTraceHandler wraps h so that every record whose context carries a valid
// OpenTelemetry span context gets "trace_id" and "span_id" attributes. The
// attributes land in the record like any other, so inside a WithGroup they
// are part of that group.
func NewTraceHandler(h slog.Handler) slog.Handler {
	return traceHandler{inner: h}
}

// traceHandler is the slog.Handler built by NewTraceHandler.
type traceHandler struct {
	inner slog.Handler
}

// Enabled defers to the wrapped handler.
func (h traceHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle adds the trace attributes, then passes the record on.
func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// Clone: the record may be shared with other handlers, and adding
		// attributes to a shared record corrupts it.
		r = r.Clone()
		r.AddAttrs(
			slog.String(TraceIDKey, sc.TraceID().String()),
			slog.String(SpanIDKey, sc.SpanID().String()),
		)
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs keeps the trace handler on top of the derived handler.
func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{inner: h.inner.WithAttrs(attrs)}
}

// WithGroup keeps the trace handler on top of the derived handler.
func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{inner: h.inner.WithGroup(name)}
}
