// Package httpapi is the api's public HTTP interface: it decodes requests,
// calls the use case, and maps its results and errors to statuses and RFC
// 9457 problems, in one place.
package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

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

// Transactions is the use case the handlers call.
type Transactions interface {
	// AcceptBatch stores transactions in one round trip and reports, for
	// each in order, what Accept would have; errors are Accept's.
	AcceptBatch(ctx context.Context, txs []txmodel.Transaction) ([]transactions.Result, error)
	// Accept stores a transaction and reports whether it was created,
	// replayed or conflicts; errors wrap transactions.ErrUnavailable when the
	// database cannot be reached.
	Accept(ctx context.Context, tx txmodel.Transaction) (transactions.Result, error)
	// Get returns a transaction; errors wrap transactions.ErrNotFound or
	// transactions.ErrUnavailable.
	Get(ctx context.Context, id string) (transactions.Record, error)
	// List returns a page of transactions; errors wrap transactions.ErrBadCursor or
	// transactions.ErrUnavailable.
	List(ctx context.Context, f transactions.Filter) (transactions.Page, error)
}

// Handler serves the public API.
type Handler struct {
	txs     Transactions
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	metrics *telemetry.Metrics
	router  *mux.Router
	auth    *auth.Authenticator
	limiter *auth.Limiter
	// spec is the OpenAPI document served at GET /openapi.yaml.
	spec []byte
	// traced is router inside an OpenTelemetry server span.
	traced http.Handler
}

// New returns the API's handler. timeout bounds the work of one request
// against the database; now is the clock against which timestamps in the
// future are refused.
func New(txs Transactions, log *slog.Logger, m *telemetry.Metrics, now func() time.Time, timeout time.Duration, opts ...Option) *Handler {
	h := &Handler{txs: txs, log: log, now: now, timeout: timeout, metrics: m, router: mux.NewRouter().UseEncodedPath()}
	for _, o := range opts {
		o(h)
	}
	r := h.router
	r.Use(nameSpan, telemetry.HTTPMiddleware(m, routeTemplate), h.access)
	r.HandleFunc("/v1/transactions", h.create).Methods(http.MethodPost)
	r.HandleFunc("/v1/transactions/batch", h.createBatch).Methods(http.MethodPost)
	r.HandleFunc("/transaction", h.create).Methods(http.MethodPost) // the original's clients
	r.HandleFunc("/v1/transactions", h.list).Methods(http.MethodGet)
	r.HandleFunc("/v1/transactions/{id}", h.get).Methods(http.MethodGet)
	r.HandleFunc("/openapi.yaml", h.openAPI).Methods(http.MethodGet).Name(routeOpenAPI)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, problem{Status: http.StatusNotFound, Detail: "no such endpoint"})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, problem{Status: http.StatusMethodNotAllowed, Detail: "this endpoint does not take that method"})
	})
	preRegister(r, m)
	// The span starts before the router has matched a route, so it is
	// named by the method alone ("POST"), as OpenTelemetry's HTTP
	// conventions say for an unknown route; nameSpan renames it once a
	// route matched.
	h.traced = otelhttp.NewHandler(h.router, "http.server",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return r.Method
		}),
	)
	return h
}

// preRegister creates, at zero, the series the dashboard and the alerts
// read, so that they exist before the first event (a ratio over an absent
// series is no data, and rate() misses the first increment of a series
// born at 1): every route's requests by status class and its latency, each
// outcome of a POST, and a rejection per required field.
func preRegister(r *mux.Router, m *telemetry.Metrics) {
	_ = r.Walk(func(rt *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := rt.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, _ := rt.GetMethods()
		for _, method := range methods {
			for _, class := range []string{"2xx", "4xx", "5xx"} {
				m.Counter(telemetry.MetricName("http_requests_total", "route", tpl, "method", method, "code", class))
			}
			m.Histogram(telemetry.MetricName("http_request_duration_seconds", "route", tpl, "method", method), telemetry.LatencyBuckets())
		}
		return nil
	})
	m.Counter(telemetry.MetricName("auth_failures_total", "reason", "no_key"))
	m.Counter(telemetry.MetricName("auth_failures_total", "reason", "invalid_key"))
	m.Counter("transactions_accepted_total")
	m.Counter("transactions_replayed_total")
	m.Counter("transactions_conflicts_total")
	m.Counter(telemetry.MetricName("transactions_rejected_total", "field", "(body)", "code", "malformed"))
	for _, f := range []string{txmodel.FieldTransactionID, txmodel.FieldUserID, txmodel.FieldAmount, txmodel.FieldCurrency, txmodel.FieldTimestamp} {
		m.Counter(telemetry.MetricName("transactions_rejected_total", "field", f, "code", txmodel.CodeRequired))
	}
}

// fieldLabel bounds the field label of a rejection to the transaction's
// fields: any other name, unknown or duplicated, is the client's choice and
// becomes "(unknown)".
func fieldLabel(field string) string {
	switch field {
	case txmodel.FieldTransactionID, txmodel.FieldUserID, txmodel.FieldAmount, txmodel.FieldCurrency, txmodel.FieldTimestamp:
		return field
	default:
		return "(unknown)"
	}
}

// Option configures New.
type Option func(*Handler)

// WithAccess makes every request present an API key that a accepts, and
// bounds each key's rate with l. Without it every request is let in: the
// caller decides (AUTH_DISABLED).
func WithAccess(a *auth.Authenticator, l *auth.Limiter) Option {
	return func(h *Handler) { h.auth, h.limiter = a, l }
}

// access authenticates a request and applies its key's rate limit: 401 or
// 429 problems, counted by reason and key name (never the key).
func (h *Handler) access(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.auth == nil || isPublic(r) {
			next.ServeHTTP(w, r)
			return
		}
		name, err := h.auth.Authenticate(r.Header.Get("Authorization"))
		if err != nil {
			reason := "invalid_key"
			if errors.Is(err, auth.ErrNoCredentials) {
				reason = "no_key"
			}
			h.metrics.Counter(telemetry.MetricName("auth_failures_total", "reason", reason)).Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="txpersister"`)
			writeProblem(w, problem{Status: http.StatusUnauthorized, Type: typeUnauthorized, Title: "Unauthorized", Detail: err.Error()})
			return
		}
		if ok, wait := h.limiter.Allow(name, h.now()); !ok {
			h.metrics.Counter(telemetry.MetricName("rate_limited_total", "key", name)).Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeProblem(w, problem{
				Status: http.StatusTooManyRequests, Type: typeRateLimited, Title: "Too many requests",
				Detail: "this API key's request rate is limited; retry after Retry-After seconds",
			})
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithKey(r.Context(), name)))
	})
}

// ServeHTTP serves a request, inside an OpenTelemetry server span.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.traced.ServeHTTP(w, r)
}

// nameSpan gives the server span of a request that matched a route the name
// "{method} {route}" and the http.route attribute, as OpenTelemetry's HTTP
// conventions ask; the router runs it only for matched routes.
func nameSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tpl := routeTemplate(r); tpl != telemetry.UnmatchedRoute {
			span := trace.SpanFromContext(r.Context())
			span.SetName(r.Method + " " + tpl)
			span.SetAttributes(semconv.HTTPRoute(tpl))
		}
		next.ServeHTTP(w, r)
	})
}

func routeTemplate(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		if tpl, err := rt.GetPathTemplate(); err == nil {
			return tpl
		}
	}
	return telemetry.UnmatchedRoute
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, MaxBodyBytes)
	if !ok {
		return
	}
	tx, err := txmodel.ParseTransaction(body, h.now())
	if err != nil {
		writeProblem(w, h.rejection(err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	res, err := h.txs.Accept(ctx, tx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status, resource, p := h.outcome(tx.ID, res)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	w.Header().Set("Location", "/v1/transactions/"+url.PathEscape(tx.ID))
	writeJSON(w, status, resource)
}

// batchResult is the answer for one transaction of a batch: the status it
// would have had alone, and its resource or its problem.
type batchResult struct {
	Status      int       `json:"status"`
	Transaction *resource `json:"transaction,omitempty"`
	Problem     *problem  `json:"problem,omitempty"`
}

// createBatch accepts up to MaxBatch transactions, a JSON array, in one
// database round trip; each gets the result it would have had alone, in
// request order. The request as a whole fails only when its body is not an
// array of at most MaxBatch elements, or when PostgreSQL is unreachable.
func (h *Handler) createBatch(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, MaxBatchBodyBytes)
	if !ok {
		return
	}
	raws, err := splitArray(body)
	if err != nil {
		writeProblem(w, problem{Status: http.StatusBadRequest, Type: typeMalformed, Title: "Malformed body", Detail: err.Error()})
		return
	}
	if len(raws) == 0 || len(raws) > MaxBatch {
		writeProblem(w, problem{
			Status: http.StatusUnprocessableEntity, Type: typeInvalidFields, Title: "Invalid batch",
			Detail: "the batch is empty or too large",
			Errors: []txmodel.FieldError{{
				Field: "(body)", Code: txmodel.CodeInvalidValue,
				Message: fmt.Sprintf("a batch holds 1 to %d transactions, got %d", MaxBatch, len(raws)),
			}},
		})
		return
	}
	now := h.now()
	results := make([]batchResult, len(raws))
	var txs []txmodel.Transaction
	var at []int // the index in results of each of txs
	for i, raw := range raws {
		tx, err := txmodel.ParseTransaction(raw, now)
		if err != nil {
			p := h.rejection(err)
			results[i] = batchResult{Status: p.Status, Problem: &p}
			continue
		}
		txs = append(txs, tx)
		at = append(at, i)
	}
	if len(txs) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		accepted, err := h.txs.AcceptBatch(ctx, txs)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for j, res := range accepted {
			status, resource, p := h.outcome(txs[j].ID, res)
			results[at[j]] = batchResult{Status: status, Problem: p}
			if p == nil {
				results[at[j]].Transaction = &resource
			}
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Results []batchResult `json:"results"`
	}{results})
}

// splitArray returns the raw elements of a JSON array.
func splitArray(body []byte) ([]json.RawMessage, error) {
	if !utf8.Valid(body) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errors.New("want a JSON array of transactions")
	}
	var raws []json.RawMessage
	for dec.More() {
		if len(raws) > MaxBatch {
			return raws, nil // too many: the caller says so, without reading on
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("element %d: %w", len(raws), err)
		}
		raws = append(raws, raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("unterminated array: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON array")
	}
	return raws, nil
}

// readBody checks the Content-Type and reads at most limit bytes of the
// body; on failure it has answered and returns false.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		writeProblem(w, problem{Status: http.StatusUnsupportedMediaType, Detail: "send transactions as application/json"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeProblem(w, problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the body is larger than %d KiB", limit>>10)})
			return nil, false
		}
		writeProblem(w, problem{Status: http.StatusBadRequest, Type: typeMalformed, Title: "Malformed body", Detail: "the body could not be read"})
		return nil, false
	}
	return body, true
}

// outcome maps what the store did with a transaction to its status and
// resource, or to a problem, and counts it.
func (h *Handler) outcome(id string, res transactions.Result) (int, resource, *problem) {
	switch res.Outcome {
	case transactions.Created:
		h.metrics.Counter("transactions_accepted_total").Inc()
		return http.StatusCreated, newResource(res.Record), nil
	case transactions.Replayed:
		h.metrics.Counter("transactions_replayed_total").Inc()
		return http.StatusOK, newResource(res.Record), nil
	default:
		h.metrics.Counter("transactions_conflicts_total").Inc()
		return http.StatusConflict, resource{}, &problem{
			Status: http.StatusConflict, Type: typeConflict, Title: "Transaction id already used",
			Detail: "transaction " + strconv.Quote(id) + " exists with other content; a retry must repeat the same fields",
		}
	}
}

// rejection is the problem for a body that is not a valid transaction: 400
// when it is not a JSON object at all, 422 listing every invalid field
// otherwise. It counts the rejection.
func (h *Handler) rejection(err error) problem {
	var ve *txmodel.ValidationError
	if errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			// An unknown name, even duplicated, is the client's choice: keep it out of the labels.
			h.metrics.Counter(telemetry.MetricName("transactions_rejected_total", "field", fieldLabel(fe.Field), "code", fe.Code)).Inc()
		}
		return problem{
			Status: http.StatusUnprocessableEntity, Type: typeInvalidFields, Title: "Invalid transaction",
			Detail: "one or more fields are invalid", Errors: ve.Errors,
		}
	}
	h.metrics.Counter(telemetry.MetricName("transactions_rejected_total", "field", "(body)", "code", "malformed")).Inc()
	return problem{Status: http.StatusBadRequest, Type: typeMalformed, Title: "Malformed body", Detail: err.Error()}
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	// The router matches the encoded path, so an id holding "/" (sent as
	// %2F, as Location writes it) stays one path segment.
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil {
		writeProblem(w, problem{Status: http.StatusNotFound, Type: typeNotFound, Title: "Transaction not found", Detail: "the id is not a valid path segment"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	rec, err := h.txs.Get(ctx, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newResource(rec))
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	f, errs := parseFilter(r.URL.Query())
	if len(errs) > 0 {
		writeProblem(w, problem{Status: http.StatusBadRequest, Type: typeBadQuery, Title: "Invalid query", Detail: "one or more query parameters are invalid", Errors: errs})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	page, err := h.txs.List(ctx, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := struct {
		Items      []resource `json:"items"`
		NextCursor *string    `json:"next_cursor"`
	}{Items: make([]resource, len(page.Records))}
	for i, rec := range page.Records {
		out.Items[i] = newResource(rec)
	}
	if page.Next != "" {
		out.NextCursor = &page.Next
	}
	writeJSON(w, http.StatusOK, out)
}

func parseFilter(q url.Values) (transactions.Filter, []txmodel.FieldError) {
	f := transactions.Filter{UserID: q.Get("user_id"), Cursor: q.Get("cursor"), Limit: defaultLimit}
	var errs []txmodel.FieldError
	if s := q.Get("status"); s != "" {
		st, ok := txmodel.ParseStatus(s)
		if !ok {
			errs = append(errs, txmodel.FieldError{Field: "status", Code: txmodel.CodeInvalidValue, Message: "must be received, processed or failed"})
		}
		f.Status = st
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, txmodel.FieldError{Field: "limit", Code: txmodel.CodeInvalidValue, Message: "must be a whole number from 1 to 500"})
		}
		f.Limit = n
	}
	return f, errs
}

// fail maps an error of the use case to a problem, and logs what is
// unexpected.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, transactions.ErrNotFound):
		writeProblem(w, problem{Status: http.StatusNotFound, Type: typeNotFound, Title: "Transaction not found", Detail: "no transaction has this transaction_id"})
	case errors.Is(err, transactions.ErrBadCursor):
		writeProblem(w, problem{
			Status: http.StatusBadRequest, Type: typeBadQuery, Title: "Invalid query", Detail: "the cursor is not one this API returned",
			Errors: []txmodel.FieldError{{Field: "cursor", Code: txmodel.CodeInvalidValue, Message: "not a cursor this API returned"}},
		})
	case errors.Is(err, transactions.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		h.log.WarnContext(r.Context(), "database unavailable", "route", routeTemplate(r), "api_key", auth.KeyName(r.Context()), "err", err)
		writeProblem(w, problem{
			Status: http.StatusServiceUnavailable, Type: typeUnavailable, Title: "Temporarily unavailable",
			Detail: "the database cannot be reached; retry with the same transaction_id, it is safe",
		})
	default:
		h.log.ErrorContext(r.Context(), "request failed", "route", routeTemplate(r), "api_key", auth.KeyName(r.Context()), "err", err)
		writeProblem(w, problem{Status: http.StatusInternalServerError, Detail: "an unexpected error; it is logged with this request's trace id"})
	}
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (len(mt) > 5 && mt[len(mt)-5:] == "+json")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
