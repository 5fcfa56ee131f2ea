package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// otelEnv lists every variable SetupTracing reads, cleared by isolateTracing.
var otelEnv = []string{
	"OTEL_SDK_DISABLED",
	"OTEL_TRACES_EXPORTER",
	"OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	"OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_SERVICE_NAME",
	"OTEL_RESOURCE_ATTRIBUTES",
	"OTEL_TRACES_SAMPLER",
	"OTEL_TRACES_SAMPLER_ARG",
}

// isolateTracing clears the OTEL_* environment and restores the global
// tracer provider and propagator when the test ends.
func isolateTracing(t *testing.T) {
	t.Helper()
	for _, name := range otelEnv {
		t.Setenv(name, "")
	}
	tp, prop := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	t.Cleanup(func() {
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
	})
}

// setupTracing calls SetupTracing and fails the test on error.
func setupTracing(t *testing.T, service, version string) func(context.Context) error {
	t.Helper()
	shutdown, err := SetupTracing(context.Background(), service, version)
	if err != nil {
		t.Fatalf("SetupTracing: %v", err)
	}
	return shutdown
}

func checkPropagator(t *testing.T) {
	t.Helper()
	fields := strings.Join(otel.GetTextMapPropagator().Fields(), ",")
	for _, f := range []string{"traceparent", "baggage"} {
		if !strings.Contains(fields, f) {
			t.Errorf("global propagator fields %q lack %q", fields, f)
		}
	}
}

func TestSetupTracingWithoutEndpoint(t *testing.T) {
	isolateTracing(t)
	shutdown := setupTracing(t, "api", "v1.2.3")

	ctx, span := otel.Tracer("test").Start(context.Background(), "op")
	sc := span.SpanContext()
	if !sc.IsValid() || !sc.IsSampled() || !span.IsRecording() {
		t.Errorf("span context %+v (recording %v): want a valid, sampled, recording span", sc, span.IsRecording())
	}
	span.End()

	// The propagator writes the trace id into outgoing headers.
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	if tp := carrier["traceparent"]; !strings.Contains(tp, sc.TraceID().String()) {
		t.Errorf("traceparent = %q, want it to carry trace id %s", tp, sc.TraceID())
	}
	checkPropagator(t)

	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestSetupTracingDisabled(t *testing.T) {
	isolateTracing(t)
	t.Setenv("OTEL_SDK_DISABLED", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	shutdown := setupTracing(t, "api", "")

	_, span := otel.Tracer("test").Start(context.Background(), "op")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Errorf("with OTEL_SDK_DISABLED=true a new root span is recording=%v valid=%v, want neither",
			span.IsRecording(), span.SpanContext().IsValid())
	}
	span.End()
	checkPropagator(t)
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestSetupTracingRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{
			name:    "http/json",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			wantErr: `OTEL_EXPORTER_OTLP_PROTOCOL: unsupported protocol "http/json"`,
		},
		{
			name:    "traces protocol",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "carrier-pigeon"},
			wantErr: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: unsupported protocol "carrier-pigeon"`,
		},
		{
			name:    "exporter",
			env:     map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"},
			wantErr: `OTEL_TRACES_EXPORTER: unsupported exporter "zipkin"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateTracing(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := SetupTracing(context.Background(), "api", "")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("SetupTracing error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// exportRequest is what a fake collector received.
type exportRequest struct {
	path, contentType string
	body              *collectortrace.ExportTraceServiceRequest
}

// exported spans of a request, by name, with the service.name resource.
func (r exportRequest) spans() (names []string, service string) {
	for _, rs := range r.body.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				names = append(names, s.GetName())
			}
		}
	}
	return names, service
}

// attr returns a resource attribute of the first resource in the request.
func (r exportRequest) attr(key string) *commonpb.AnyValue {
	for _, rs := range r.body.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == key {
				return kv.GetValue()
			}
		}
	}
	return nil
}

// fakeHTTPCollector is an OTLP/HTTP endpoint recording what it receives.
type fakeHTTPCollector struct {
	mu       sync.Mutex
	requests []exportRequest
}

func newFakeHTTPCollector(t *testing.T) (*fakeHTTPCollector, *httptest.Server) {
	t.Helper()
	c := &fakeHTTPCollector{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("collector: read body: %v", err)
		}
		req := &collectortrace.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(raw, req); err != nil {
			t.Errorf("collector: body of %s is not an OTLP trace request: %v", r.URL.Path, err)
		}
		c.mu.Lock()
		c.requests = append(c.requests, exportRequest{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), body: req})
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		if _, err := w.Write(out); err != nil {
			t.Errorf("collector: write the answer: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return c, srv
}

func (c *fakeHTTPCollector) received() []exportRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]exportRequest(nil), c.requests...)
}

func TestSetupTracingExportsOverHTTP(t *testing.T) {
	isolateTracing(t)
	collector, srv := newFakeHTTPCollector(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test")
	shutdown := setupTracing(t, "api", "v1.2.3")

	_, span := otel.Tracer("test").Start(context.Background(), "save transaction")
	span.End()
	if got := collector.received(); len(got) != 0 {
		t.Fatalf("collector got %d requests before shutdown; the batcher should still hold the span", len(got))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	got := collector.received()
	if len(got) != 1 {
		t.Fatalf("collector got %d requests after shutdown, want 1", len(got))
	}
	req := got[0]
	if req.path != "/v1/traces" {
		t.Errorf("export path = %q, want /v1/traces", req.path)
	}
	if req.contentType != "application/x-protobuf" {
		t.Errorf("export content type = %q, want application/x-protobuf", req.contentType)
	}
	names, service := req.spans()
	if len(names) != 1 || names[0] != "save transaction" {
		t.Errorf("exported spans = %q, want [save transaction]", names)
	}
	if service != "api" {
		t.Errorf("service.name = %q, want api", service)
	}
	if v := req.attr("service.version").GetStringValue(); v != "v1.2.3" {
		t.Errorf("service.version = %q, want v1.2.3", v)
	}
	if v := req.attr("deployment.environment.name").GetStringValue(); v != "test" {
		t.Errorf("deployment.environment.name from OTEL_RESOURCE_ATTRIBUTES = %q, want test", v)
	}
}

func TestSetupTracingServiceNameFromEnvAndTracesEndpoint(t *testing.T) {
	isolateTracing(t)
	collector, srv := newFakeHTTPCollector(t)
	// The signal-specific endpoint is used as is, path included.
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", srv.URL+"/custom/traces")
	t.Setenv("OTEL_SERVICE_NAME", "api-canary")
	shutdown := setupTracing(t, "api", "")

	_, span := otel.Tracer("test").Start(context.Background(), "op")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	got := collector.received()
	if len(got) != 1 {
		t.Fatalf("collector got %d requests, want 1", len(got))
	}
	if got[0].path != "/custom/traces" {
		t.Errorf("export path = %q, want /custom/traces", got[0].path)
	}
	if _, service := got[0].spans(); service != "api-canary" {
		t.Errorf("service.name = %q, want api-canary (OTEL_SERVICE_NAME wins over the argument)", service)
	}
}

func TestSetupTracingSamplerFromEnv(t *testing.T) {
	isolateTracing(t)
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	shutdown := setupTracing(t, "api", "")
	t.Cleanup(func() {
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("shut down tracing: %v", err)
		}
	})

	_, span := otel.Tracer("test").Start(context.Background(), "op")
	defer span.End()
	if span.SpanContext().IsSampled() {
		t.Error("span sampled although OTEL_TRACES_SAMPLER=always_off")
	}
	// Unsampled spans still get ids, so logs can be correlated.
	if !span.SpanContext().IsValid() {
		t.Error("unsampled span has no valid trace id")
	}
}

// fakeGRPCCollector is an OTLP/gRPC trace service recording what it receives.
type fakeGRPCCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	requests []*collectortrace.ExportTraceServiceRequest
}

func (c *fakeGRPCCollector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func TestSetupTracingExportsOverGRPC(t *testing.T) {
	isolateTracing(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	collector := &fakeGRPCCollector{}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, collector)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("gRPC collector: %v", err)
		}
	})

	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String())
	shutdown := setupTracing(t, "converter", "")

	_, span := otel.Tracer("test").Start(context.Background(), "convert")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	collector.mu.Lock()
	defer collector.mu.Unlock()
	if len(collector.requests) != 1 {
		t.Fatalf("gRPC collector got %d requests, want 1", len(collector.requests))
	}
	names, service := exportRequest{body: collector.requests[0]}.spans()
	if len(names) != 1 || names[0] != "convert" || service != "converter" {
		t.Errorf("exported spans %q of service %q, want [convert] of converter", names, service)
	}
}
