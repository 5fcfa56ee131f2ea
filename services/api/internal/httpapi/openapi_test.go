package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// TestOpenAPIRoute serves the document without an API key, even where every
// other route needs one, and answers 404 when there is no document.
func TestOpenAPIRoute(t *testing.T) {
	keys, err := auth.ParseKeys(strings.NewReader("alice:" + auth.HashKey("alice-key")))
	if err != nil {
		t.Fatal(err)
	}
	const spec = "openapi: 3.1.0\n"
	newWith := func(opts ...Option) *Handler {
		opts = append(opts, WithAccess(Access{Auth: auth.NewAuthenticator(keys, false), PerKey: auth.NewLimiter(100, 100)}))
		return New(&fakeTransactions{recs: map[string]transactions.Record{}}, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"),
			func() time.Time { return now }, time.Second, opts...)
	}
	get := func(h http.Handler, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}

	h := newWith(WithOpenAPI([]byte(spec)))
	rec := get(h, "/openapi.yaml")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/yaml" || rec.Body.String() != spec {
		t.Errorf("GET /openapi.yaml without a key: %d %q %q, want 200 application/yaml with the document", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if rec := get(h, "/v1/transactions"); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET /v1/transactions without a key: %d, want 401: the exemption is for the document only", rec.Code)
	}
	if rec := get(newWith(), "/openapi.yaml"); rec.Code != http.StatusNotFound {
		t.Errorf("without a document: %d, want 404", rec.Code)
	}
}

func TestRoutes(t *testing.T) {
	got := newHandler(&fakeTransactions{}).Routes()
	want := []Route{
		{http.MethodGet, "/openapi.yaml"},
		{http.MethodPost, "/transaction"},
		{http.MethodGet, "/v1/transactions"},
		{http.MethodPost, "/v1/transactions"},
		{http.MethodPost, "/v1/transactions/batch"},
		{http.MethodGet, "/v1/transactions/{id}"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Routes() (-want +got):\n%s", diff)
	}
}
