// Package telemetry sets up what every txpersister service needs to be
// observed: structured logs that carry the trace id, OpenTelemetry tracing
// exported over OTLP, Prometheus metrics and an admin HTTP server with health,
// readiness, metrics and pprof endpoints.
//
// A service's main wires it roughly like this:
//
//	cfg, err := telemetry.ParseLogConfig(os.Getenv("LOG_LEVEL"), os.Getenv("LOG_FORMAT"))
//	log := telemetry.NewLogger(os.Stderr, cfg, "api")
//	shutdown, err := telemetry.SetupTracing(ctx, "api", version)
//	defer shutdown(context.WithoutCancel(ctx)) // flushes spans
//	m := telemetry.NewMetrics("txp_api_")
//	router.Use(telemetry.HTTPMiddleware(m, routeTemplate)) // see HTTPMiddleware
//	go telemetry.RunServer(ctx, telemetry.NewAdminServer(":9090", m, store.Ping), log)
//
// Everything but SetupTracing, which installs the OpenTelemetry globals the
// instrumentation libraries read, is plain values passed by the caller.
package telemetry
