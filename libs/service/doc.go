// Package service is what every txpersister service starts and runs with,
// written once: Main (signals, exit status), Command (the migrate and
// healthcheck subcommands), Start (tracing, the service's migrations, a
// PostgreSQL pool and the metrics with the pool's gauges), DialBroker
// (RabbitMQ, waited for as long as it takes), and Run (servers and loops
// until the context ends).
//
// Its parts have rooms of their own: package envconfig reads the
// configuration from the environment, package server is the server loop,
// package admin the operational endpoints (health, readiness, metrics,
// and pprof when enabled), and package probe the check a container's
// HEALTHCHECK runs. server and probe need only the standard library, so
// that ratesd uses them too.
package service
