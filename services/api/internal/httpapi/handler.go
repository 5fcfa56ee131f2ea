// Package httpapi is the api's public HTTP interface: it decodes requests,
// calls the use case, and maps its results and errors to statuses and RFC
// 9457 problems. The rooms: handler.go builds the Handler (routes,
// metrics), middleware.go holds what every request goes through (tracing
// names, access), create.go and read.go the handlers, problems.go the one
// mapping of errors to problems; internal/wire is the JSON of a
// transaction.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// MaxBodyBytes bounds a request body: one transaction is a few hundred
// bytes.
const MaxBodyBytes = 64 << 10

// MaxBatch is the most transactions one batch request may carry, and
// MaxBatchBodyBytes the most bytes its body may hold: a thousand
// transactions of up to a KiB each.
const (
	MaxBatch          = 1000
	MaxBatchBodyBytes = 1 << 20
)

// List page sizes.
const (
	defaultLimit = 50
	maxLimit     = 500
)

// Transactions is the use case the handlers call. Everything is within
// a tenant: the tenant of the request's key.
type Transactions interface {
	// AcceptBatch stores transactions in one round trip and reports, for
	// each in order, what Accept would have; errors are Accept's.
	AcceptBatch(ctx context.Context, tenant string, txs []txmodel.Transaction) ([]transactions.Result, error)
	// Accept stores a transaction and reports whether it was created,
	// replayed or conflicts; errors wrap transactions.ErrUnavailable when
	// the database cannot be reached.
	Accept(ctx context.Context, tenant string, tx txmodel.Transaction) (transactions.Result, error)
	// Get returns a transaction; errors wrap transactions.ErrNotFound or
	// transactions.ErrUnavailable.
	Get(ctx context.Context, tenant, id string) (transactions.Record, error)
	// List returns a page of transactions; errors wrap
	// transactions.ErrBadCursor or transactions.ErrUnavailable.
	List(ctx context.Context, f transactions.Filter) (transactions.Page, error)
}

// Handler serves the public API.
type Handler struct {
	txs     Transactions
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	metrics *handlerMetrics
	router  *mux.Router
	access  Access
	// prop extracts the trace context of a request: W3C trace context,
	// and baggage only when the operator trusts what clients send.
	prop propagation.TextMapPropagator
	// spec is the OpenAPI document served at GET /openapi.yaml.
	spec []byte
	// traced is router inside an OpenTelemetry server span.
	traced http.Handler
	// hooks serves /v1/webhooks (nil: not served).
	hooks Webhooks
	// inflight bounds the ingest bodies held at once (nil: no bound).
	inflight *inflight
}

// New returns the API's handler. timeout bounds the work of one request
// against the database; now is the clock against which timestamps in the
// future are refused.
func New(txs Transactions, log *slog.Logger, m *telemetry.Metrics, now func() time.Time, timeout time.Duration, opts ...Option) *Handler {
	h := &Handler{txs: txs, log: log, now: now, timeout: timeout, router: mux.NewRouter().UseEncodedPath(), prop: propagation.TraceContext{}}
	for _, o := range opts {
		o(h)
	}
	h.metrics = newHandlerMetrics(m, h.access.tenants())
	h.inflight.register(m)
	r := h.router
	r.HandleFunc("/v1/transactions", h.create).Methods(http.MethodPost)
	r.HandleFunc("/v1/transactions/batch", h.createBatch).Methods(http.MethodPost)
	r.HandleFunc("/transaction", h.create).Methods(http.MethodPost) // the original's clients
	r.HandleFunc("/v1/transactions", h.list).Methods(http.MethodGet)
	r.HandleFunc("/v1/transactions/{id}", h.get).Methods(http.MethodGet)
	if h.hooks != nil {
		h.routeWebhooks(r)
	}
	r.HandleFunc("/openapi.yaml", h.openAPI).Methods(http.MethodGet).Name(routeOpenAPI)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, problemFor(errNoRoute))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, problemFor(errMethod))
	})
	r.Use(nameSpan, telemetry.NewHTTPMetrics(m, routes(r)...).Middleware(routeTemplate), h.authorize)
	// The span starts before the router has matched a route, so it is
	// named by the method alone ("POST"), as OpenTelemetry's HTTP
	// conventions say for an unknown route; nameSpan renames it once a
	// route matched.
	h.traced = otelhttp.NewHandler(h.router, "http.server",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method
		}),
		otelhttp.WithPropagators(h.prop),
	)
	return h
}

// routes lists every route and method of r, for the HTTP metrics.
func routes(r *mux.Router) []telemetry.Route {
	var out []telemetry.Route
	_ = r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := rt.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, _ := rt.GetMethods()
		for _, method := range methods {
			out = append(out, telemetry.Route{Method: method, Path: tpl})
		}
		return nil
	})
	return out
}

// Option configures New.
type Option func(*Handler)

// Access is how requests are let in.
type Access struct {
	// Auth checks the API key of every request but those of public
	// routes; nil lets every request in as txmodel.DefaultTenant.
	Auth *auth.Authenticator
	// Tenants are those of the configured keys: the values of the tenant
	// label of the metrics.
	Tenants []string
	// PerKey and PerTenant bound the request rates (nil: no limit).
	PerKey, PerTenant *auth.Limiter
	// Failures bounds failed authentications per client address (nil:
	// no limit).
	Failures *auth.FailureLimiter
}

func (a Access) tenants() []string {
	if a.Auth == nil || len(a.Tenants) == 0 {
		return []string{txmodel.DefaultTenant}
	}
	return a.Tenants
}

// WithAccess makes every request present an API key that a.Auth accepts,
// within a's limits. Without it every request is let in, as
// txmodel.DefaultTenant: the caller decides (AUTH_DISABLED).
func WithAccess(a Access) Option {
	return func(h *Handler) { h.access = a }
}

// WithIncomingBaggage makes the api keep the W3C baggage a client sends,
// which then travels with the transaction's message to the converter.
// Without it baggage from outside is dropped: it is the client's text,
// and nothing of the api's needs it.
func WithIncomingBaggage(trust bool) Option {
	return func(h *Handler) {
		if trust {
			h.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
		}
	}
}

// ServeHTTP serves a request, inside an OpenTelemetry server span.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.traced.ServeHTTP(w, r)
}

// handlerMetrics are the handlers' series, made once: every one a
// dashboard or an alert reads exists at zero from the start (a ratio over
// an absent series is no data, and rate() misses the first increment of a
// series born at 1), and no request builds a metric's name.
type handlerMetrics struct {
	// accepted, replayed and conflicts by tenant: the tenants are those
	// of the configured keys, so the label is bounded.
	accepted, replayed, conflicts map[string]*vm.Counter
	// rejected counts invalid transactions by field label and code; every
	// pair exists, both sets being bounded.
	rejected  map[[2]string]*vm.Counter
	malformed *vm.Counter
	// authFailures by reason: no_key or invalid_key.
	authFailures map[string]*vm.Counter
	m            *telemetry.Metrics
}

func newHandlerMetrics(m *telemetry.Metrics, tenants []string) *handlerMetrics {
	hm := &handlerMetrics{
		accepted:     map[string]*vm.Counter{},
		replayed:     map[string]*vm.Counter{},
		conflicts:    map[string]*vm.Counter{},
		rejected:     map[[2]string]*vm.Counter{},
		malformed:    m.Counter(telemetry.MetricName("transactions_rejected_total", "field", "(body)", "code", "malformed")),
		authFailures: map[string]*vm.Counter{},
		m:            m,
	}
	for _, f := range append(txmodel.Fields(), fieldUnknown) {
		for _, c := range txmodel.Codes() {
			hm.rejected[[2]string{f, c}] = m.Counter(telemetry.MetricName("transactions_rejected_total", "field", f, "code", c))
		}
	}
	for _, t := range tenants {
		hm.accepted[t] = m.Counter(telemetry.MetricName("transactions_accepted_total", "tenant", t))
		hm.replayed[t] = m.Counter(telemetry.MetricName("transactions_replayed_total", "tenant", t))
		hm.conflicts[t] = m.Counter(telemetry.MetricName("transactions_conflicts_total", "tenant", t))
	}
	for _, reason := range []string{"no_key", "invalid_key", "blocked_address"} {
		hm.authFailures[reason] = m.Counter(telemetry.MetricName("auth_failures_total", "reason", reason))
	}
	return hm
}

// reject counts the field errors of an invalid transaction.
func (hm *handlerMetrics) reject(errs []txmodel.FieldError) {
	for _, fe := range errs {
		if c, ok := hm.rejected[[2]string{fieldLabel(fe.Field), fe.Code}]; ok {
			c.Inc()
		}
	}
}

// rateLimited counts a request refused for its key's rate; the keys are
// configured, so their number is bounded.
func (hm *handlerMetrics) rateLimited(key string) {
	hm.m.Counter(telemetry.MetricName("rate_limited_total", "key", key)).Inc()
}

// tenantLimited counts a request refused for its tenant's rate.
func (hm *handlerMetrics) tenantLimited(tenant string) {
	hm.m.Counter(telemetry.MetricName("tenant_rate_limited_total", "tenant", tenant)).Inc()
}

// inc adds one to the series of tenant in c, made on the spot for a
// tenant it was not made for (none: tenants come from the keys).
func (hm *handlerMetrics) inc(c map[string]*vm.Counter, name, tenant string) {
	if ctr, ok := c[tenant]; ok {
		ctr.Inc()
		return
	}
	hm.m.Counter(telemetry.MetricName(name, "tenant", tenant)).Inc()
}

// fieldUnknown is the field label of a rejection naming a field that is
// not the transaction's: any other name, unknown or duplicated, is the
// client's choice and stays out of the labels.
const fieldUnknown = "(unknown)"

func fieldLabel(field string) string {
	for _, f := range txmodel.Fields() {
		if field == f {
			return field
		}
	}
	return fieldUnknown
}
