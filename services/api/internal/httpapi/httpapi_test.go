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

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

var now = time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)

// fakeTransactions is a Transactions in memory, or one that fails with err.
// recs are by tenant and id, joined by a slash.
type fakeTransactions struct {
	recs map[string]transactions.Record
	err  error
}

func (f *fakeTransactions) Accept(_ context.Context, tenant string, tx txmodel.Transaction) (transactions.Result, error) {
	if f.err != nil {
		return transactions.Result{}, f.err
	}
	if r, ok := f.recs[tenant+"/"+tx.ID]; ok {
		if r.Transaction.SameContent(tx) {
			return transactions.Result{Outcome: transactions.Replayed, Record: r}, nil
		}
		return transactions.Result{Outcome: transactions.Conflict, Record: r}, nil
	}
	r := transactions.Record{Tenant: tenant, Transaction: tx, ReceivedAt: now}
	f.recs[tenant+"/"+tx.ID] = r
	return transactions.Result{Outcome: transactions.Created, Record: r}, nil
}

func (f *fakeTransactions) AcceptBatch(ctx context.Context, tenant string, txs []txmodel.Transaction) ([]transactions.Result, error) {
	out := make([]transactions.Result, len(txs))
	for i, tx := range txs {
		var err error
		if out[i], err = f.Accept(ctx, tenant, tx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (f *fakeTransactions) Get(_ context.Context, tenant, id string) (transactions.Record, error) {
	if f.err != nil {
		return transactions.Record{}, f.err
	}
	r, ok := f.recs[tenant+"/"+id]
	if !ok {
		return transactions.Record{}, fmt.Errorf("get %s: %w", id, transactions.ErrNotFound)
	}
	return r, nil
}

func (f *fakeTransactions) List(_ context.Context, flt transactions.Filter) (transactions.Page, error) {
	if f.err != nil {
		return transactions.Page{}, f.err
	}
	var p transactions.Page
	for _, r := range f.recs {
		if r.Tenant == flt.Tenant {
			p.Records = append(p.Records, r)
		}
	}
	if flt.Limit < len(p.Records) {
		p.Records = p.Records[:flt.Limit]
		p.Next = "more"
	}
	return p, nil
}

func newHandler(txs Transactions) *Handler {
	return New(txs, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"), func() time.Time { return now }, time.Second)
}

const original = `{"transaction_id": "tx-1", "amount": 100.0, "currency": "USD", "user_id": "123", "timestamp": "2024-09-11T00:00:00"}`

func do(t *testing.T, h http.Handler, method, path, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestCreateStatuses(t *testing.T) {
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		failWith    error
		wantStatus  int
		wantType    string // problem type, for errors
	}{
		{"created", "/v1/transactions", "application/json", original, nil, http.StatusCreated, ""},
		{"original path", "/transaction", "application/json", original, nil, http.StatusCreated, ""},
		{"no content type", "/v1/transactions", "", original, nil, http.StatusCreated, ""},
		{"json with charset", "/v1/transactions", "application/json; charset=utf-8", original, nil, http.StatusCreated, ""},
		{"form content type", "/v1/transactions", "application/x-www-form-urlencoded", original, nil, http.StatusUnsupportedMediaType, "about:blank"},
		{"not an object", "/v1/transactions", "application/json", `[1]`, nil, http.StatusBadRequest, txmodel.ProblemMalformedBody},
		{"bad JSON", "/v1/transactions", "application/json", `{"amount":`, nil, http.StatusBadRequest, txmodel.ProblemMalformedBody},
		{"invalid fields", "/v1/transactions", "application/json", `{"transaction_id": "x"}`, nil, http.StatusUnprocessableEntity, txmodel.ProblemInvalidFields},
		{"too large", "/v1/transactions", "application/json", `{"transaction_id": "` + strings.Repeat("a", MaxBodyBytes) + `"}`, nil, http.StatusRequestEntityTooLarge, "about:blank"},
		{"database down", "/v1/transactions", "application/json", original, fmt.Errorf("x: %w", transactions.ErrUnavailable), http.StatusServiceUnavailable, txmodel.ProblemUnavailable},
		{"unexpected", "/v1/transactions", "application/json", original, fmt.Errorf("boom"), http.StatusInternalServerError, "about:blank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(&fakeTransactions{recs: map[string]transactions.Record{}, err: tt.failWith})
			rec := do(t, h, http.MethodPost, tt.path, tt.contentType, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantType == "" {
				if got := rec.Header().Get("Location"); got != "/v1/transactions/tx-1" {
					t.Errorf("Location = %q", got)
				}
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q, want application/problem+json", ct)
			}
			var p problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatalf("problem body %s: %v", rec.Body, err)
			}
			if p.Type != tt.wantType || p.Status != tt.wantStatus || p.Title == "" {
				t.Errorf("problem = %+v, want type %s status %d and a title", p, tt.wantType, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

func TestCreateListsEveryInvalidField(t *testing.T) {
	h := newHandler(&fakeTransactions{recs: map[string]transactions.Record{}})
	rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json",
		`{"transaction_id": "t", "user_id": "u", "ammount": 1, "currency": "XAU", "timestamp": "2030-01-01T00:00:00Z"}`)
	if rec.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	if diff := cmp.Diff([]string{"amount", "currency", "timestamp", "ammount"}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestCreateReplayAndConflict(t *testing.T) {
	h := newHandler(&fakeTransactions{recs: map[string]transactions.Record{}})
	if rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", original); rec.Code != http.StatusCreated {
		t.Fatalf("first post: %d %s", rec.Code, rec.Body)
	}
	same := `{"transaction_id": "tx-1", "amount": "100", "currency": "usd", "user_id": "123", "timestamp": "2024-09-11T02:00:00+02:00"}`
	rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", same)
	if rec.Code != http.StatusOK {
		t.Fatalf("retry: %d %s", rec.Code, rec.Body)
	}
	other := strings.Replace(original, "100.0", "100.5", 1)
	if rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", other); rec.Code != http.StatusConflict {
		t.Fatalf("conflict: %d %s", rec.Code, rec.Body)
	}
}

func TestResourceShape(t *testing.T) {
	usd, eur := txmodel.MustCurrency("USD"), txmodel.MustCurrency("EUR")
	amount, _ := txmodel.ParseDecimal("100")
	converted, _ := txmodel.ParseDecimal("90.5")
	rate, _ := txmodel.ParseDecimal("0.9055510278")
	rec := transactions.Record{
		Transaction: txmodel.Transaction{ID: "tx-1", UserID: "123", Amount: txmodel.Money{Amount: amount, Currency: usd}, Timestamp: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		ReceivedAt:  now,
		Conversion: &txmodel.Conversion{
			TransactionID: "tx-1", Status: txmodel.StatusProcessed,
			Converted: txmodel.Money{Amount: converted, Currency: eur},
			Rate: txmodel.Rate{From: usd, To: eur, Value: rate, Date: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC), Source: txmodel.RateSource{
				Provider: "frankfurter", Rule: txmodel.RateRuleDay, Base: "EUR", Quotes: map[string]string{"USD": "1.1043"},
			}},
			ProcessedAt: now.Add(time.Second),
		},
	}
	// Recorded before provenance was kept.
	old := rec
	oldConv := *rec.Conversion
	oldConv.Rate.Source = txmodel.RateSource{}
	old.Conversion, old.Transaction.ID = &oldConv, "tx-old"
	h := newHandler(&fakeTransactions{recs: map[string]transactions.Record{"default/tx-1": rec, "default/tx-old": old}})
	got := do(t, h, http.MethodGet, "/v1/transactions/tx-1", "", "")
	if got.Code != http.StatusOK {
		t.Fatalf("status %d %s", got.Code, got.Body)
	}
	want := `{"transaction_id":"tx-1","user_id":"123","amount":"100.00","currency":"USD","timestamp":"2024-09-11T00:00:00Z",` +
		`"status":"processed","received_at":"2024-09-11T12:00:00Z","converted_amount":"90.50","target_currency":"EUR",` +
		`"exchange_rate":"0.9055510278","rate_date":"2024-09-10","rate_rule":"day","rate_provider":"frankfurter",` +
		`"rate_quotes":{"USD":"1.1043"},"rate_quote_base":"EUR","processed_at":"2024-09-11T12:00:01Z","failure_reason":null}`
	if diff := cmp.Diff(want, strings.TrimSpace(got.Body.String())); diff != "" {
		t.Errorf("resource (-want +got):\n%s", diff)
	}
	got = do(t, h, http.MethodGet, "/v1/transactions/tx-old", "", "")
	want = `{"transaction_id":"tx-old","user_id":"123","amount":"100.00","currency":"USD","timestamp":"2024-09-11T00:00:00Z",` +
		`"status":"processed","received_at":"2024-09-11T12:00:00Z","converted_amount":"90.50","target_currency":"EUR",` +
		`"exchange_rate":"0.9055510278","rate_date":"2024-09-10","rate_rule":null,"rate_provider":null,` +
		`"rate_quotes":null,"rate_quote_base":null,"processed_at":"2024-09-11T12:00:01Z","failure_reason":null}`
	if diff := cmp.Diff(want, strings.TrimSpace(got.Body.String())); diff != "" {
		t.Errorf("resource recorded before provenance (-want +got):\n%s", diff)
	}
	if got := do(t, h, http.MethodGet, "/v1/transactions/nope", "", ""); got.Code != http.StatusNotFound {
		t.Errorf("unknown id: %d", got.Code)
	}
}

func TestListQuery(t *testing.T) {
	h := newHandler(&fakeTransactions{recs: map[string]transactions.Record{}})
	for _, q := range []string{"limit=0", "limit=501", "limit=x", "status=done"} {
		if rec := do(t, h, http.MethodGet, "/v1/transactions?"+q, "", ""); rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: status %d, want 400", q, rec.Code)
		}
	}
	rec := do(t, h, http.MethodGet, "/v1/transactions?limit=500&status=failed", "", "")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"items":[],"next_cursor":null}` {
		t.Errorf("empty list: %d %s", rec.Code, rec.Body)
	}
}

func TestCreateBatch(t *testing.T) {
	h := newHandler(&fakeTransactions{recs: map[string]transactions.Record{}})
	if rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", original); rec.Code != http.StatusCreated {
		t.Fatalf("seed: %d", rec.Code)
	}
	batch := `[` +
		`{"transaction_id": "b1", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00"},` +
		`{"transaction_id": "b2", "amount": -1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00"},` +
		original + `,` +
		strings.Replace(original, "100.0", "5", 1) + `,` +
		`"not an object",` +
		`{"transaction_id": "b1", "amount": "1.00", "currency": "usd", "user_id": "u", "timestamp": "2024-09-11T00:00:00Z"}` +
		`]`
	rec := do(t, h, http.MethodPost, "/v1/transactions/batch", "application/json", batch)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Results []struct {
			Status      int            `json:"status"`
			Transaction map[string]any `json:"transaction"`
			Problem     *problem       `json:"problem"`
		} `json:"results"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for _, r := range out.Results {
		statuses = append(statuses, r.Status)
		if (r.Problem == nil) == (r.Transaction == nil) {
			t.Errorf("result %+v: want exactly one of transaction and problem", r)
		}
	}
	// Each the status it would have had alone, in request order.
	if diff := cmp.Diff([]int{201, 422, 200, 409, 400, 200}, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"not an array", original, http.StatusBadRequest},
		{"empty", `[]`, http.StatusUnprocessableEntity},
		{"too many", "[" + strings.Repeat(original+",", MaxBatch) + original + "]", http.StatusUnprocessableEntity},
		{"unterminated", `[` + original, http.StatusBadRequest},
	} {
		if rec := do(t, h, http.MethodPost, "/v1/transactions/batch", "application/json", tt.body); rec.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.want)
		}
	}
	down := newHandler(&fakeTransactions{recs: map[string]transactions.Record{}, err: fmt.Errorf("x: %w", transactions.ErrUnavailable)})
	if rec := do(t, down, http.MethodPost, "/v1/transactions/batch", "application/json", "["+original+"]"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("database down: %d, want 503", rec.Code)
	}
}

func TestAccess(t *testing.T) {
	keys, err := auth.ParseKeys(strings.NewReader("alice:" + auth.HashKey("alice-key")))
	if err != nil {
		t.Fatal(err)
	}
	h := New(&fakeTransactions{recs: map[string]transactions.Record{}}, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"),
		func() time.Time { return now }, time.Second,
		WithAccess(Access{Auth: auth.NewAuthenticator(keys, false), Tenants: auth.Tenants(keys), PerKey: auth.NewLimiter(1, 2)}))
	send := func(authorization string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/v1/transactions", nil)
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, bad := range []string{"", "Bearer wrong", "Basic YWxpY2U6YWxpY2Uta2V5"} {
		rec := send(bad)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" || !strings.Contains(rec.Body.String(), "/problems/unauthorized") {
			t.Errorf("%q: %d %v %s, want a 401 problem with WWW-Authenticate", bad, rec.Code, rec.Header(), rec.Body)
		}
	}
	// A burst of 2, then 429 with Retry-After for alice.
	for i := range 2 {
		if rec := send("Bearer alice-key"); rec.Code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := send("Bearer alice-key")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "/problems/rate-limited") {
		t.Errorf("over the limit: %d %v %s, want 429 with Retry-After: 1", rec.Code, rec.Header(), rec.Body)
	}
	var metrics strings.Builder
	h.metrics.m.WritePrometheus(&metrics)
	if strings.Contains(metrics.String(), "alice-key") || !strings.Contains(metrics.String(), `test_rate_limited_total{key="alice"} 1`) {
		t.Errorf("metrics must name the key, never show it:\n%s", metrics.String())
	}
}
