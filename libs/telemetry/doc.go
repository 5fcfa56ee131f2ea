// Package telemetry is how every txpersister service is observed:
// structured logs that carry the trace id, OpenTelemetry tracing exported
// over OTLP, and Prometheus metrics with the HTTP middleware that counts
// requests. Running servers, the admin endpoints and configuration are
// libs/service's.
//
// A service wires it roughly like this:
//
//	cfg, err := telemetry.ParseLogConfig(os.Getenv("LOG_LEVEL"), os.Getenv("LOG_FORMAT"))
//	log := telemetry.NewLogger(os.Stderr, cfg, "api")
//	shutdown, err := telemetry.SetupTracing(ctx, "api", version)
//	defer shutdown(context.WithoutCancel(ctx)) // flushes spans
//	m := telemetry.NewMetrics("txp_api_")
//	router.Use(telemetry.NewHTTPMetrics(m, routes...).Middleware(routeTemplate))
//
// Everything but SetupTracing, which installs the OpenTelemetry globals the
// instrumentation libraries read, is plain values passed by the caller.
package telemetry
