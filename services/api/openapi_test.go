package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/httpapi"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/internal/webhooks"
)

// loadSpec parses the embedded openapi.yaml.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPIIsValid checks that openapi.yaml is a valid OpenAPI 3.1
// document whose examples match their schemas.
func TestOpenAPIIsValid(t *testing.T) {
	doc := loadSpec(t)
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		t.Errorf("openapi: %q, want 3.1.x", doc.OpenAPI)
	}
	ctx := openapi3.WithValidationOptions(context.Background(),
		openapi3.EnableExamplesValidation(), openapi3.EnableSchemaDefaultsValidation(), openapi3.EnableSchemaPatternValidation())
	if err := doc.Validate(ctx); err != nil {
		t.Errorf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
}

// TestOpenAPICoversEveryRoute holds the router's routes against the
// document's operations, both ways: a route without a contract, or a
// contract without a route, fails.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadSpec(t)
	var inSpec []httpapi.Route
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec = append(inSpec, httpapi.Route{Method: method, Path: path})
		}
	}
	sort.Slice(inSpec, func(i, j int) bool {
		if inSpec[i].Path != inSpec[j].Path {
			return inSpec[i].Path < inSpec[j].Path
		}
		return inSpec[i].Method < inSpec[j].Method
	})
	h := httpapi.New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"), time.Now, time.Second,
		httpapi.WithWebhooks(webhooks.NewService(nil, nil, time.Now, 0)))
	if diff := cmp.Diff(inSpec, h.Routes()); diff != "" {
		t.Errorf("routes in openapi.yaml (-) and in the router (+) differ:\n%s", diff)
	}
}

// failing is a use case whose every call fails with err.
type failing struct{ err error }

func (f failing) AcceptBatch(context.Context, string, []txmodel.Transaction) ([]transactions.Result, error) {
	return nil, f.err
}

func (f failing) Accept(context.Context, string, txmodel.Transaction) (transactions.Result, error) {
	return transactions.Result{}, f.err
}

func (f failing) Get(context.Context, string, string) (transactions.Record, error) {
	return transactions.Record{}, f.err
}

func (f failing) List(context.Context, transactions.Filter) (transactions.Page, error) {
	return transactions.Page{}, f.err
}

// TestOpenAPIFailures holds the answers the end-to-end tests cannot
// provoke against openapi.yaml: 503 when PostgreSQL is unreachable, 500 on
// an unexpected error, for every operation that reaches the database.
func TestOpenAPIFailures(t *testing.T) {
	doc := loadSpec(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	const tx = `{"transaction_id": "tx-0001", "amount": 100.0, "currency": "USD", "user_id": "123", "timestamp": "2024-09-11T00:00:00"}`
	requests := []struct{ method, path, body string }{
		{http.MethodPost, "/v1/transactions", tx},
		{http.MethodPost, "/transaction", tx},
		{http.MethodPost, "/v1/transactions/batch", "[" + tx + "]"},
		{http.MethodGet, "/v1/transactions/tx-0001", ""},
		{http.MethodGet, "/v1/transactions?status=processed", ""},
	}
	for _, f := range []struct {
		err  error
		want int
	}{{fmt.Errorf("insert: %w", transactions.ErrUnavailable), http.StatusServiceUnavailable}, {errors.New("boom"), http.StatusInternalServerError}} {
		h := httpapi.New(failing{f.err}, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"),
			func() time.Time { return time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC) }, time.Second)
		for _, r := range requests {
			t.Run(fmt.Sprintf("%d %s %s", f.want, r.method, r.path), func(t *testing.T) {
				req := httptest.NewRequest(r.method, "http://localhost:8080"+r.path, strings.NewReader(r.body))
				if r.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				req.Header.Set("Authorization", "Bearer k")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != f.want {
					t.Fatalf("%d %s, want %d", rec.Code, rec.Body, f.want)
				}
				route, params, err := router.FindRoute(req)
				if err != nil {
					t.Fatal(err)
				}
				in := &openapi3filter.RequestValidationInput{
					Request: req, PathParams: params, Route: route,
					Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
				}
				out := &openapi3filter.ResponseValidationInput{
					RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
					Body: io.NopCloser(bytes.NewReader(rec.Body.Bytes())), Options: &openapi3filter.Options{IncludeResponseStatus: true},
				}
				if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
					t.Errorf("the answer breaks openapi.yaml: %v\nanswer: %v %s", err, rec.Header(), rec.Body)
				}
			})
		}
	}
}
