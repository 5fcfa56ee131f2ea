package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func TestParseLogConfig(t *testing.T) {
	tests := []struct {
		name          string
		level, format string
		want          LogConfig
		wantErr       []string // substrings the error must contain; nil = no error
	}{
		{name: "defaults", want: LogConfig{Level: "info"}},
		{name: "debug json", level: "debug", format: "json", want: LogConfig{Level: "debug", Format: "json"}},
		{name: "case and space", level: " WARN ", format: "Text", want: LogConfig{Level: "warn", Format: "text"}},
		{name: "error level", level: "error", want: LogConfig{Level: "error"}},
		{
			name: "bad level", level: "loud",
			wantErr: []string{`LOG_LEVEL: unknown level "loud" (want debug, info, warn or error)`},
		},
		{
			name: "bad format", format: "xml",
			wantErr: []string{`LOG_FORMAT: unknown format "xml" (want json or text)`},
		},
		{
			name: "both bad", level: "trace", format: "yaml",
			wantErr: []string{`LOG_LEVEL: unknown level "trace"`, `LOG_FORMAT: unknown format "yaml"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLogConfig(tt.level, tt.format)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ParseLogConfig(%q, %q): unexpected error %v", tt.level, tt.format, err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ParseLogConfig(%q, %q) mismatch (-want +got):\n%s", tt.level, tt.format, diff)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseLogConfig(%q, %q) = %+v, want an error", tt.level, tt.format, got)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// decodeLines parses JSON log output, one object per line.
func decodeLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for line := range bytes.Lines(out) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs
}

// newRecordingTracer returns a tracer provider that samples and records every
// span in memory, shut down when the test ends.
func newRecordingTracer(t *testing.T) *sdktrace.TracerProvider {
	t.Helper()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder()),
	)
	t.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			t.Errorf("shut down tracer provider: %v", err)
		}
	})
	return tp
}

func TestNewLoggerAddsTraceAndService(t *testing.T) {
	tp := newRecordingTracer(t)
	ctx, span := tp.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	sc := span.SpanContext()

	var buf bytes.Buffer
	log := NewLogger(&buf, LogConfig{Level: "info", Format: "json"}, "api")
	log.InfoContext(ctx, "with span", "k", "v")
	log.InfoContext(context.Background(), "context without span")
	log.Info("no context")
	log.With("a", 1).WithGroup("g").InfoContext(ctx, "derived", "x", 2)

	recs := decodeLines(t, buf.Bytes())
	if len(recs) != 4 {
		t.Fatalf("got %d log lines, want 4:\n%s", len(recs), buf.String())
	}

	withSpan := recs[0]
	if got, want := withSpan[TraceIDKey], sc.TraceID().String(); got != want {
		t.Errorf("trace_id = %v, want %v", got, want)
	}
	if got, want := withSpan[SpanIDKey], sc.SpanID().String(); got != want {
		t.Errorf("span_id = %v, want %v", got, want)
	}
	if got := withSpan["k"]; got != "v" {
		t.Errorf("k = %v, want v", got)
	}

	for i, rec := range recs[1:3] {
		if _, ok := rec[TraceIDKey]; ok {
			t.Errorf("line %d (%v) has a trace_id, want none", i+1, rec["msg"])
		}
		if _, ok := rec[SpanIDKey]; ok {
			t.Errorf("line %d (%v) has a span_id, want none", i+1, rec["msg"])
		}
	}

	// Derived loggers keep the trace handler; inside a group the ids are
	// part of the group.
	derived, _ := recs[3]["g"].(map[string]any)
	if got, want := derived[TraceIDKey], sc.TraceID().String(); got != want {
		t.Errorf("derived logger: g.trace_id = %v, want %v (line %v)", got, want, recs[3])
	}

	for i, rec := range recs {
		if got := rec[ServiceKey]; got != "api" {
			t.Errorf("line %d: service = %v, want api", i, got)
		}
	}
}

func TestNewLoggerLevelAndFormat(t *testing.T) {
	tests := []struct {
		name      string
		cfg       LogConfig
		wantLines int
		wantJSON  bool
	}{
		// A bytes.Buffer is no terminal, so an empty format means JSON.
		{name: "default is info json", cfg: LogConfig{}, wantLines: 3, wantJSON: true},
		{name: "debug text", cfg: LogConfig{Level: "debug", Format: "text"}, wantLines: 4},
		{name: "warn", cfg: LogConfig{Level: "warn", Format: "json"}, wantLines: 2, wantJSON: true},
		{name: "error", cfg: LogConfig{Level: "error"}, wantLines: 1, wantJSON: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := NewLogger(&buf, tt.cfg, "svc")
			log.Debug("d")
			log.Info("i")
			log.Warn("w")
			log.Error("e")

			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != tt.wantLines {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), tt.wantLines, buf.String())
			}
			isJSON := json.Valid([]byte(lines[0]))
			if isJSON != tt.wantJSON {
				t.Errorf("line %q: JSON = %v, want %v", lines[0], isJSON, tt.wantJSON)
			}
			if !tt.wantJSON && !strings.Contains(lines[0], "service=svc") {
				t.Errorf("text line %q lacks service=svc", lines[0])
			}
		})
	}
}
