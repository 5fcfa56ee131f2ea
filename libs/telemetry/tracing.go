package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace/noop"
)

// OTLP protocols accepted in OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL.
const (
	protocolHTTPProtobuf = "http/protobuf"
	protocolGRPC         = "grpc"
)

// SetupTracing configures the global OpenTelemetry TracerProvider and the
// W3C TraceContext + Baggage propagator from the standard OTEL_* environment
// variables, and returns a shutdown func that flushes buffered spans; call it
// once on the way out with a context that bounds how long flushing may take.
//
//   - OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: where
//     spans go. With neither set, nothing is exported, but spans are still
//     created and sampled so trace ids exist for logs and for propagation.
//   - OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: http/protobuf (default) or grpc.
//     http/json is not supported by the Go exporter and is an error.
//   - OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, _TIMEOUT, _INSECURE, ...: read by
//     the exporter itself. An http:// endpoint means no TLS.
//   - OTEL_TRACES_EXPORTER: otlp (default) or none.
//   - OTEL_SERVICE_NAME: the service.name resource attribute; the service
//     argument is the default. OTEL_RESOURCE_ATTRIBUTES adds attributes.
//   - OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*: honoured by
//     the SDK. The default sampler is parentbased_always_on.
//   - OTEL_SDK_DISABLED=true: a no-op provider (spans only carry what was
//     propagated in); the propagator is still installed.
//
// The error names the variable at fault. Nothing is dialled here: an
// unreachable collector shows up later through the OpenTelemetry error
// handler, not as an error from SetupTracing.
func SetupTracing(ctx context.Context, service, version string) (shutdown func(context.Context) error, err error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{},
		propagation.Baggage{},
	))

	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		otel.SetTracerProvider(noop.NewTracerProvider())
		return func(context.Context) error { return nil }, nil
	}

	res, err := newResource(ctx, service, version)
	if err != nil {
		return nil, err
	}
	exporter, err := newExporter(ctx)
	if err != nil {
		return nil, err
	}

	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if exporter != nil {
		opts = append(opts, sdktrace.WithBatcher(exporter))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(tp)

	return func(ctx context.Context) error {
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("shut down tracer provider: %w", err)
		}
		return nil
	}, nil
}

// newResource describes this process. Detectors listed later win, so
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the arguments.
func newResource(ctx context.Context, service, version string) (*resource.Resource, error) {
	attrs := []resource.Option{resource.WithSchemaURL(semconv.SchemaURL)}
	if service != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceName(service)))
	}
	if version != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(version)))
	}
	attrs = append(attrs,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	res, err := resource.New(ctx, attrs...)
	if err != nil {
		return nil, fmt.Errorf("tracing resource (check OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	return res, nil
}

// newExporter builds the OTLP span exporter the environment asks for, or
// returns nil when no endpoint is configured or exporting is turned off.
func newExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	switch kind := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))); kind {
	case "", "otlp":
	case "none":
		return nil, nil
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: unsupported exporter %q (want otlp or none)", kind)
	}

	if firstEnv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT") == "" {
		return nil, nil
	}

	protocolVar := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	protocol := strings.TrimSpace(os.Getenv(protocolVar))
	if protocol == "" {
		protocolVar = "OTEL_EXPORTER_OTLP_PROTOCOL"
		protocol = strings.TrimSpace(os.Getenv(protocolVar))
	}

	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch strings.ToLower(protocol) {
	case "", protocolHTTPProtobuf:
		exp, err = otlptracehttp.New(ctx)
	case protocolGRPC:
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s: unsupported protocol %q (want http/protobuf or grpc)", protocolVar, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("create OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// firstEnv returns the first non-blank value among the named variables.
func firstEnv(names ...string) string {
	for _, name := range names {
		if v := strings.TrimSpace(os.Getenv(name)); v != "" {
			return v
		}
	}
	return ""
}
