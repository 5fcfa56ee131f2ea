// Package admin is a service's operational endpoints: health, readiness,
// metrics and, when the operator enables it, pprof, on a server of their
// own.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// ReadyTimeout bounds one readiness check made for GET /readyz.
const ReadyTimeout = 2 * time.Second

// Option changes what NewServer and Handler serve.
type Option func(*options)

// options is what the Options chose; its zero value is the default.
type options struct {
	pprof bool
}

// WithPprof serves net/http/pprof under /debug/pprof/ when enabled is true.
// pprof is off by default: a profile or a trace reveals the program's code
// and data, and a CPU profile costs the service while it runs, so the
// operator turns it on (the services read PPROF=true) only where the admin
// port is not reachable by others.
func WithPprof(enabled bool) Option {
	return func(o *options) { o.pprof = enabled }
}

// collect applies opts to the defaults.
func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// NewServer returns an http.Server for addr serving Handler(m, ready,
// opts...), with timeouts that suit it: short enough that a stuck client
// cannot hold a connection for long, and, with WithPprof(true), generous
// enough for a 30 s CPU profile. Run it with server.Run.
func NewServer(addr string, m *telemetry.Metrics, ready func(ctx context.Context) error, opts ...Option) *http.Server {
	writeTimeout := 10 * time.Second
	if collect(opts).pprof {
		// pprof's /debug/pprof/profile and /trace take ?seconds=N (30 by
		// default) and refuse N at or above the write timeout.
		writeTimeout = 65 * time.Second
	}
	return &http.Server{
		Addr:              addr,
		Handler:           Handler(m, ready, opts...),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}

// Handler serves the operational endpoints of a service:
//
//	GET /healthz        200 "ok" for as long as the process serves HTTP
//	GET /readyz         200 "ready" when ready returns nil within ReadyTimeout,
//	                    else 503 with the error text
//	GET /metrics        m in the Prometheus text format, with go_* and process_*
//	    /debug/pprof/   net/http/pprof with WithPprof(true); else 404
//
// A nil ready means always ready; a nil m serves only the runtime and
// process metrics. ready gets a context that ends after ReadyTimeout and
// should give up then; if it does not, the answer is 503 regardless.
func Handler(m *telemetry.Metrics, ready func(ctx context.Context) error, opts ...Option) http.Handler {
	return handler(m, ready, ReadyTimeout, opts...)
}

// handler is Handler with the readiness timeout as a
// parameter, so tests need not wait for the real one.
func handler(m *telemetry.Metrics, ready func(ctx context.Context) error, readyTimeout time.Duration, opts ...Option) http.Handler {
	if m == nil {
		m = telemetry.NewMetrics("")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := checkReady(r.Context(), ready, readyTimeout); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "ready")
	})
	mux.Handle("GET /metrics", m.Handler())
	if collect(opts).pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// errReadyTimeout reports a readiness check that outlived its deadline
// without returning.
var errReadyTimeout = errors.New("readiness check did not finish in time")

// checkReady runs ready with a deadline. It does not trust ready to honour
// the context: a check stuck on I/O without a deadline still gets a 503 in
// time, and its goroutine ends whenever the check does.
func checkReady(ctx context.Context, ready func(context.Context) error, timeout time.Duration) error {
	if ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	done := make(chan error, 1)
	go func() { done <- ready(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w after %s", errReadyTimeout, timeout)
	}
}

// writeText answers with a one-line plain-text body.
func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}
