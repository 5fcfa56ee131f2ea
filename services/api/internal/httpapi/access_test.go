package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// threeKeys are three keys over two tenants: acme rotates its key.
func threeKeys(t *testing.T) []auth.Key {
	t.Helper()
	keys, err := auth.ParseKeys(strings.NewReader("acme:ci:" + auth.HashKey("acme-1") + ",acme:ops:" + auth.HashKey("acme-2") + ",globex:app:" + auth.HashKey("globex-1")))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func newAccessHandler(t *testing.T, txs Transactions, a Access, opts ...Option) *Handler {
	t.Helper()
	return New(txs, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"),
		func() time.Time { return now }, time.Second, append(opts, WithAccess(a))...)
}

func send(h http.Handler, method, path, key, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestTenantsAreSeparate: a key reads, lists and writes only within its
// tenant; another tenant's transaction is not found, and its id is free.
func TestTenantsAreSeparate(t *testing.T) {
	keys := threeKeys(t)
	h := newAccessHandler(t, &fakeTransactions{recs: map[string]transactions.Record{}},
		Access{Auth: auth.NewAuthenticator(keys, false), Tenants: auth.Tenants(keys)})
	if rec := send(h, http.MethodPost, "/v1/transactions", "acme-1", original); rec.Code != http.StatusCreated {
		t.Fatalf("acme's POST: %d %s", rec.Code, rec.Body)
	}
	// The same id for globex is another transaction; for acme's other key, a replay.
	if rec := send(h, http.MethodPost, "/v1/transactions", "globex-1", original); rec.Code != http.StatusCreated {
		t.Errorf("globex's POST of the same id: %d, want 201", rec.Code)
	}
	if rec := send(h, http.MethodPost, "/v1/transactions", "acme-2", original); rec.Code != http.StatusOK {
		t.Errorf("acme's other key, same transaction: %d, want 200 (replay)", rec.Code)
	}
	other := strings.Replace(original, `"tx-1"`, `"tx-2"`, 1)
	if rec := send(h, http.MethodPost, "/v1/transactions/batch", "globex-1", "["+other+"]"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":201`) {
		t.Fatalf("globex's batch: %d %s", rec.Code, rec.Body)
	}
	if rec := send(h, http.MethodGet, "/v1/transactions/tx-2", "acme-1", ""); rec.Code != http.StatusNotFound {
		t.Errorf("acme reads globex's tx-2: %d, want 404", rec.Code)
	}
	if rec := send(h, http.MethodGet, "/v1/transactions/tx-2", "globex-1", ""); rec.Code != http.StatusOK {
		t.Errorf("globex reads its tx-2: %d, want 200", rec.Code)
	}
	for key, want := range map[string]int{"acme-2": 1, "globex-1": 2} {
		rec := send(h, http.MethodGet, "/v1/transactions?user_id=123", key, "")
		var page struct{ Items []json.RawMessage }
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Items) != want {
			t.Errorf("%s lists %d transactions (%v), want its own %d", key, len(page.Items), err, want)
		}
	}
	var metrics strings.Builder
	h.metrics.m.WritePrometheus(&metrics)
	for _, series := range []string{`test_transactions_accepted_total{tenant="acme"} 1`, `test_transactions_accepted_total{tenant="globex"} 2`, `test_transactions_replayed_total{tenant="acme"} 1`} {
		if !strings.Contains(metrics.String(), series) {
			t.Errorf("metrics lack %s:\n%s", series, metrics.String())
		}
	}
}

// TestFailedAuthenticationsAreLimited: past a burst of failures, an
// address is refused with 429 and Retry-After before its key is looked
// at, even the right key; other addresses are not.
func TestFailedAuthenticationsAreLimited(t *testing.T) {
	keys := threeKeys(t)
	h := newAccessHandler(t, &fakeTransactions{recs: map[string]transactions.Record{}},
		Access{Auth: auth.NewAuthenticator(keys, false), Failures: auth.NewFailureLimiter(0.5, 3)})
	from := func(addr, key string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/transactions", nil)
		req.RemoteAddr = addr
		req.Header.Set("Authorization", "Bearer "+key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := from("192.0.2.1:1000", fmt.Sprint("guess-", i)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, rec.Code)
		}
	}
	rec := from("192.0.2.1:1001", "acme-1")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" || !strings.Contains(rec.Body.String(), "failed authentications") {
		t.Errorf("after the burst, the right key: %d %v %s; want 429 with Retry-After: 2", rec.Code, rec.Header(), rec.Body)
	}
	if rec := from("192.0.2.2:1000", "acme-1"); rec.Code != http.StatusOK {
		t.Errorf("another address: %d, want 200", rec.Code)
	}
}

// TestTenantRateLimit: the keys of a tenant share its limit; another
// tenant has its own.
func TestTenantRateLimit(t *testing.T) {
	keys := threeKeys(t)
	h := newAccessHandler(t, &fakeTransactions{recs: map[string]transactions.Record{}},
		Access{Auth: auth.NewAuthenticator(keys, false), PerKey: auth.NewLimiter(100, 100), PerTenant: auth.NewLimiter(1, 2)})
	for i, key := range []string{"acme-1", "acme-2"} {
		if rec := send(h, http.MethodGet, "/v1/transactions", key, ""); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, rec.Code)
		}
	}
	if rec := send(h, http.MethodGet, "/v1/transactions", "acme-1", ""); rec.Code != http.StatusTooManyRequests || !strings.Contains(rec.Body.String(), "tenant") {
		t.Errorf("acme's third: %d %s, want 429 naming the tenant's limit", rec.Code, rec.Body)
	}
	if rec := send(h, http.MethodGet, "/v1/transactions", "globex-1", ""); rec.Code != http.StatusOK {
		t.Errorf("globex: %d, want 200", rec.Code)
	}
}

// TestManyUnknownFieldsGetABoundedAnswer: one 422 listing the first
// MaxProblemErrors errors, and how many there were.
func TestManyUnknownFieldsGetABoundedAnswer(t *testing.T) {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(original, "}"))
	for i := range 3000 {
		fmt.Fprintf(&b, `, "x%d": 1`, i)
	}
	b.WriteString("}")
	h := newHandler(&fakeTransactions{recs: map[string]transactions.Record{}})
	rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", b.String())
	var p struct {
		Errors     []txmodel.FieldError
		ErrorCount int `json:"error_count"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusUnprocessableEntity || len(p.Errors) != MaxProblemErrors || p.ErrorCount != 3000 || rec.Body.Len() > 4096 {
		t.Errorf("status %d, %d errors listed of %d, %d bytes; want 422, %d of 3000, a few KiB", rec.Code, len(p.Errors), p.ErrorCount, rec.Body.Len(), MaxProblemErrors)
	}
	if rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", `{"transaction_id": "x"}`); strings.Contains(rec.Body.String(), "error_count") {
		t.Errorf("a short list says error_count: %s", rec.Body)
	}
}

// baggageTransactions remembers the baggage of the context it is called
// with.
type baggageTransactions struct {
	fakeTransactions
	members int
}

func (b *baggageTransactions) Accept(ctx context.Context, tenant string, tx txmodel.Transaction) (transactions.Result, error) {
	b.members = baggage.FromContext(ctx).Len()
	return b.fakeTransactions.Accept(ctx, tenant, tx)
}

// TestIncomingBaggage: baggage from a client is dropped unless the
// operator trusts it.
func TestIncomingBaggage(t *testing.T) {
	for _, trust := range []bool{false, true} {
		txs := &baggageTransactions{fakeTransactions: fakeTransactions{recs: map[string]transactions.Record{}}}
		h := New(txs, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"),
			func() time.Time { return now }, time.Second, WithIncomingBaggage(trust))
		req := httptest.NewRequest(http.MethodPost, "/v1/transactions", strings.NewReader(original))
		req.Header.Set("Baggage", "user=alice,plan=gold")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if want := map[bool]int{false: 0, true: 2}[trust]; txs.members != want {
			t.Errorf("trust %v: %d baggage members reached the use case, want %d", trust, txs.members, want)
		}
	}
}
