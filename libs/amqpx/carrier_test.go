package amqpx

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestHeaderCarrierRoundTrip(t *testing.T) {
	t.Parallel()
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	state, err := trace.ParseTraceState("vendor=value")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    traceID,
		SpanID:     spanID,
		TraceFlags: trace.FlagsSampled,
		TraceState: state,
		Remote:     true,
	})
	prop := propagation.TraceContext{}

	headers := amqp.Table{"other": int32(1)}
	prop.Inject(trace.ContextWithRemoteSpanContext(context.Background(), sc), HeaderCarrier(headers))

	want := amqp.Table{
		"other":       int32(1),
		"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate":  "vendor=value",
	}
	if diff := cmp.Diff(want, headers); diff != "" {
		t.Errorf("headers after Inject (-want +got):\n%s", diff)
	}
	if err := headers.Validate(); err != nil {
		t.Errorf("headers are not a valid AMQP table: %v", err)
	}

	got := trace.SpanContextFromContext(prop.Extract(context.Background(), HeaderCarrier(headers)))
	if !got.Equal(sc) {
		t.Errorf("extracted span context %v, want %v", got, sc)
	}
}

func TestHeaderCarrierGet(t *testing.T) {
	t.Parallel()
	h := HeaderCarrier{"s": "str", "b": []byte("bytes"), "n": int32(7)}
	tests := []struct{ key, want string }{
		{"s", "str"},
		{"b", "bytes"},
		{"n", "7"},
		{"missing", ""},
	}
	for _, tt := range tests {
		if got := h.Get(tt.key); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
	if got := len(h.Keys()); got != 3 {
		t.Errorf("len(Keys()) = %d, want 3", got)
	}
}
