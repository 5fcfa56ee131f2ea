// Package service is what every txpersister service starts and runs with,
// written once: Main (signals, exit status), Command (the migrate and
// healthcheck subcommands), Start (tracing, the service's migrations, a
// PostgreSQL pool and the metrics with the pool's gauges), DialBroker
// (RabbitMQ, waited for as long as it takes), and Run (servers and loops
// until the context ends). Its servers (RunServer, Serve), the admin
// endpoints (NewAdminServer: health, readiness, metrics, pprof) live here
// too.
//
// Configuration is read from the environment by package envconfig; the
// probe of a container's HEALTHCHECK is package probe, which needs only the
// standard library, so that ratesd runs the same one.
package service
