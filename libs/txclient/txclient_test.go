package txclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// reply is one scripted answer of the fake API; hangUp closes the
// connection without answering instead.
type reply struct {
	status int
	header map[string]string
	body   string
	hangUp bool
}

// request is what the fake API received.
type request struct {
	Method, Path, Query, Authorization, ContentType, Body string
}

// fakeAPI answers with replies in order, repeating the last, and records
// every request.
type fakeAPI struct {
	mu       sync.Mutex
	replies  []reply
	requests []request
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), string(b)})
	rep := f.replies[min(len(f.requests), len(f.replies))-1]
	f.mu.Unlock()
	if rep.hangUp {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (f *fakeAPI) got() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.requests...)
}

// fakeClock is a clock that only sleeps move, recording each wait.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.t = c.t.Add(d)
	return nil
}

// newClient starts a fake API with replies and returns a client of it on
// a fake clock.
func newClient(t *testing.T, replies []reply, opts ...Option) (*Client, *fakeAPI, *fakeClock) {
	t.Helper()
	api := &fakeAPI{replies: replies}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	clock := &fakeClock{t: time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)}
	opts = append([]Option{withClock(clock.now, clock.sleep)}, opts...)
	return New(srv.URL, opts...), api, clock
}

const received = `{"transaction_id":"tx-0001","user_id":"123","amount":"100.00","currency":"USD",
 "timestamp":"2024-09-11T00:00:00Z","status":"received","received_at":"2024-09-11T08:30:00.123456Z",
 "converted_amount":null,"target_currency":null,"exchange_rate":null,"rate_date":null,"processed_at":null,"failure_reason":null}`

const processed = `{"transaction_id":"tx-0001","user_id":"123","amount":"100.00","currency":"USD",
 "timestamp":"2024-09-11T00:00:00Z","status":"processed","received_at":"2024-09-11T08:30:00.123456Z",
 "converted_amount":"90.56","target_currency":"EUR","exchange_rate":"0.9055510278","rate_date":"2024-09-11",
 "processed_at":"2024-09-11T08:30:00.181818Z","failure_reason":null}`

func original() Transaction {
	return Transaction{
		ID: "tx-0001", UserID: "123", Amount: decimal.RequireFromString("100.00"), Currency: "USD",
		Timestamp: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC),
	}
}

const originalBody = `{"transaction_id":"tx-0001","user_id":"123","amount":"100","currency":"USD","timestamp":"2024-09-11T00:00:00Z"}`

// cmpDecimal compares decimals by value.
var cmpDecimal = cmp.Comparer(func(a, b decimal.Decimal) bool { return a.Equal(b) })

func TestCreate(t *testing.T) {
	tests := []struct {
		name        string
		reply       reply
		wantCreated bool
	}{
		{"created", reply{status: 201, header: map[string]string{"Location": "/v1/transactions/tx-0001"}, body: received}, true},
		{"replayed", reply{status: 200, body: received}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, api, _ := newClient(t, []reply{tt.reply}, WithAPIKey("s3cret"))
			res, created, err := c.Create(context.Background(), original())
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.wantCreated {
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
			want := Resource{
				ID: "tx-0001", UserID: "123", Amount: decimal.RequireFromString("100.00"), Currency: "USD",
				Timestamp: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), Status: StatusReceived,
				ReceivedAt: time.Date(2024, 9, 11, 8, 30, 0, 123456000, time.UTC),
			}
			if diff := cmp.Diff(want, res, cmpDecimal); diff != "" {
				t.Errorf("resource (-want +got):\n%s", diff)
			}
			if res.Amount.String() != "100" || res.Amount.StringFixed(2) != "100.00" {
				t.Errorf("amount %s, want exactly 100.00", res.Amount)
			}
			wantReq := []request{{Method: "POST", Path: "/v1/transactions", Authorization: "Bearer s3cret", ContentType: "application/json", Body: originalBody}}
			if diff := cmp.Diff(wantReq, api.got()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAmountsNeverFloat sends and reads amounts no float64 holds.
func TestAmountsNeverFloat(t *testing.T) {
	const big = "123456789012345.67"
	c, api, _ := newClient(t, []reply{{status: 201, body: strings.Replace(received, `"100.00"`, `"`+big+`"`, 1)}})
	tx := original()
	tx.Amount = decimal.RequireFromString(big)
	res, _, err := c.Create(context.Background(), tx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Amount.String() != big {
		t.Errorf("read amount %s, want %s", res.Amount, big)
	}
	if body := api.got()[0].Body; !strings.Contains(body, `"amount":"`+big+`"`) {
		t.Errorf("sent %s, want the amount as the string %q", body, big)
	}
}

func TestRetries(t *testing.T) {
	unavailable := reply{
		status: 503, header: map[string]string{"Retry-After": "1", "Content-Type": "application/problem+json"},
		body: `{"type":"/problems/unavailable","title":"Temporarily unavailable","status":503,"detail":"the database cannot be reached"}`,
	}
	limited := reply{
		status: 429, header: map[string]string{"Retry-After": "2", "Content-Type": "application/problem+json"},
		body: `{"type":"/problems/rate-limited","title":"Too many requests","status":429,"detail":"slow down"}`,
	}
	created := reply{status: 201, body: received}
	replayed := reply{status: 200, body: received}
	problem := func(status int, typ string) reply {
		return reply{
			status: status, header: map[string]string{"Content-Type": "application/problem+json"},
			body: `{"type":"` + typ + `","title":"t","status":` + strconv.Itoa(status) + `,"errors":[{"field":"amount","code":"not_positive","message":"must be greater than 0"}]}`,
		}
	}
	tests := []struct {
		name     string
		policy   RetryPolicy
		replies  []reply
		attempts int
		// waits are the exact waits, or, with jitter, nil and checked by
		// waitRange.
		waits       []time.Duration
		waitRange   [][2]time.Duration
		wantCreated bool
		// wantProblem is the status of the *Problem expected, 0 for none;
		// wantNetErr expects a network error.
		wantProblem    int
		wantRetryAfter time.Duration
		wantNetErr     bool
	}{
		{
			name: "503 with Retry-After, then created", replies: []reply{unavailable, unavailable, created},
			attempts: 3, waits: []time.Duration{time.Second, time.Second}, wantCreated: true,
		},
		{
			name: "429 with Retry-After, then replayed", replies: []reply{limited, replayed},
			attempts: 2, waits: []time.Duration{2 * time.Second},
		},
		{
			name: "503 without Retry-After backs off", policy: RetryPolicy{BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second},
			replies: []reply{{status: 503}, {status: 503}, {status: 503}, created}, attempts: 4, wantCreated: true,
			waitRange: [][2]time.Duration{{50 * time.Millisecond, 100 * time.Millisecond}, {100 * time.Millisecond, 200 * time.Millisecond}, {200 * time.Millisecond, 400 * time.Millisecond}},
		},
		{
			name: "connection dropped, then created", policy: RetryPolicy{BaseDelay: 100 * time.Millisecond},
			replies: []reply{{hangUp: true}, created}, attempts: 2, wantCreated: true,
			waitRange: [][2]time.Duration{{50 * time.Millisecond, 100 * time.Millisecond}},
		},
		{
			name: "503 every time: MaxAttempts, then the problem", policy: RetryPolicy{MaxAttempts: 3},
			replies: []reply{unavailable}, attempts: 3, waits: []time.Duration{time.Second, time.Second},
			wantProblem: 503, wantRetryAfter: time.Second,
		},
		{
			name: "a Retry-After beyond MaxElapsed is not waited", policy: RetryPolicy{MaxElapsed: 10 * time.Second},
			replies: []reply{{status: 503, header: map[string]string{"Retry-After": "60"}}}, attempts: 1,
			wantProblem: 503, wantRetryAfter: time.Minute,
		},
		{
			name: "MaxElapsed ends the retries", policy: RetryPolicy{MaxElapsed: 2500 * time.Millisecond},
			replies: []reply{unavailable}, attempts: 3, waits: []time.Duration{time.Second, time.Second},
			wantProblem: 503, wantRetryAfter: time.Second,
		},
		{
			name: "connection dropped every time", policy: RetryPolicy{MaxAttempts: 2},
			replies: []reply{{hangUp: true}}, attempts: 2, waitRange: [][2]time.Duration{{50 * time.Millisecond, 100 * time.Millisecond}}, wantNetErr: true,
		},
		{name: "422 is final", replies: []reply{problem(422, TypeInvalidFields), created}, attempts: 1, wantProblem: 422},
		{name: "409 is final", replies: []reply{problem(409, TypeConflict), created}, attempts: 1, wantProblem: 409},
		{name: "400 is final", replies: []reply{problem(400, TypeMalformedBody), created}, attempts: 1, wantProblem: 400},
		{name: "401 is final", replies: []reply{problem(401, TypeUnauthorized), created}, attempts: 1, wantProblem: 401},
		{name: "500 is final", replies: []reply{problem(500, TypeBlank), created}, attempts: 1, wantProblem: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, api, clock := newClient(t, tt.replies, WithRetry(tt.policy))
			_, created, err := c.Create(context.Background(), original())
			reqs := api.got()
			if len(reqs) != tt.attempts {
				t.Errorf("%d requests, want %d", len(reqs), tt.attempts)
			}
			for i, r := range reqs {
				// Every attempt carries the very same body: the same transaction_id.
				if r.Body != originalBody {
					t.Errorf("attempt %d sent %s, want %s", i+1, r.Body, originalBody)
				}
			}
			if tt.waitRange == nil {
				if diff := cmp.Diff(tt.waits, clock.waits); diff != "" {
					t.Errorf("waits (-want +got):\n%s", diff)
				}
			} else {
				if len(clock.waits) != len(tt.waitRange) {
					t.Fatalf("waits %v, want %d within %v", clock.waits, len(tt.waitRange), tt.waitRange)
				}
				for i, w := range clock.waits {
					if w < tt.waitRange[i][0] || w > tt.waitRange[i][1] {
						t.Errorf("wait %d: %s, want within %v", i+1, w, tt.waitRange[i])
					}
				}
			}
			var p *Problem
			switch {
			case tt.wantProblem != 0:
				if !errors.As(err, &p) || p.Status != tt.wantProblem || p.RetryAfter != tt.wantRetryAfter {
					t.Fatalf("err = %v (%+v), want a *Problem %d with RetryAfter %s", err, p, tt.wantProblem, tt.wantRetryAfter)
				}
			case tt.wantNetErr:
				if err == nil || errors.As(err, &p) {
					t.Fatalf("err = %v, want a network error", err)
				}
			case err != nil:
				t.Fatal(err)
			case created != tt.wantCreated:
				t.Errorf("created = %v, want %v", created, tt.wantCreated)
			}
		})
	}
}

// TestRetryStopsWithContext gives up the wait when the caller's context
// ends.
func TestRetryStopsWithContext(t *testing.T) {
	c, api, _ := newClient(t, []reply{{status: 503, header: map[string]string{"Retry-After": "1"}}})
	ctx, cancel := context.WithCancel(context.Background())
	c.sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	_, _, err := c.Create(ctx, original())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if n := len(api.got()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestProblem(t *testing.T) {
	body := `{"type":"/problems/invalid-fields","title":"Invalid transaction","status":422,"detail":"one or more fields are invalid",
	 "errors":[{"field":"amount","code":"not_positive","message":"must be greater than 0"},{"field":"ammount","code":"unknown_field","message":"unknown field"}]}`
	tests := []struct {
		name  string
		reply reply
		want  *Problem
	}{
		{"a problem document", reply{status: 422, header: map[string]string{"Content-Type": "application/problem+json"}, body: body}, &Problem{
			Type: TypeInvalidFields, Title: "Invalid transaction", Status: 422, Detail: "one or more fields are invalid",
			Errors: []FieldError{{Field: "amount", Code: "not_positive", Message: "must be greater than 0"}, {Field: "ammount", Code: "unknown_field", Message: "unknown field"}},
		}},
		{
			"a proxy's page",
			reply{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>bad gateway</html>"},
			&Problem{Type: TypeBlank, Title: "Bad Gateway", Status: 502},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, _ := newClient(t, []reply{tt.reply})
			_, _, err := c.Create(context.Background(), original())
			var p *Problem
			if !errors.As(err, &p) {
				t.Fatalf("err = %v, want a *Problem", err)
			}
			if diff := cmp.Diff(tt.want, p); diff != "" {
				t.Errorf("problem (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), tt.want.Type) {
				t.Errorf("Error() = %q, want it to name %s", err, tt.want.Type)
			}
		})
	}
}

func TestGet(t *testing.T) {
	c, api, _ := newClient(t, []reply{
		{status: 200, body: processed},
		{status: 404, header: map[string]string{"Content-Type": "application/problem+json"}, body: `{"type":"/problems/not-found","title":"Transaction not found","status":404}`},
	})
	res, err := c.Get(context.Background(), "tx-0001")
	if err != nil {
		t.Fatal(err)
	}
	processedAt := time.Date(2024, 9, 11, 8, 30, 0, 181818000, time.UTC)
	want := Resource{
		ID: "tx-0001", UserID: "123", Amount: decimal.RequireFromString("100.00"), Currency: "USD",
		Timestamp: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), Status: StatusProcessed,
		ReceivedAt:      time.Date(2024, 9, 11, 8, 30, 0, 123456000, time.UTC),
		ConvertedAmount: decimal.NullDecimal{Decimal: decimal.RequireFromString("90.56"), Valid: true}, TargetCurrency: "EUR",
		ExchangeRate: decimal.NullDecimal{Decimal: decimal.RequireFromString("0.9055510278"), Valid: true}, RateDate: "2024-09-11",
		ProcessedAt: &processedAt,
	}
	if diff := cmp.Diff(want, res, cmpDecimal); diff != "" {
		t.Errorf("resource (-want +got):\n%s", diff)
	}
	_, err = c.Get(context.Background(), "a b/c")
	var p *Problem
	if !errors.As(err, &p) || p.Status != 404 || p.Type != TypeNotFound {
		t.Errorf("missing: err = %v, want a 404 not-found *Problem", err)
	}
	if got := api.got()[1].Path; got != "/v1/transactions/a b/c" {
		t.Errorf("path %q: the id must travel escaped as one segment", got)
	}
}

func TestCreateBatch(t *testing.T) {
	c, api, _ := newClient(t, []reply{{status: 200, body: `{"results":[{"status":201,"transaction":` + received + `},
	 {"status":422,"problem":{"type":"/problems/invalid-fields","title":"Invalid transaction","status":422,"errors":[{"field":"amount","code":"not_positive","message":"m"}]}}]}`}})
	bad := original()
	bad.ID, bad.Amount = "tx-0002", decimal.RequireFromString("-1")
	results, err := c.CreateBatch(context.Background(), []Transaction{original(), bad})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || !results[0].Created() || results[0].Resource == nil || results[0].Resource.ID != "tx-0001" ||
		results[1].Status != 422 || results[1].Problem == nil || results[1].Problem.Errors[0].Code != "not_positive" {
		t.Errorf("results %+v", results)
	}
	var sent []map[string]any
	if err := json.Unmarshal([]byte(api.got()[0].Body), &sent); err != nil || len(sent) != 2 || sent[1]["amount"] != "-1" {
		t.Errorf("sent %s, want an array of both transactions", api.got()[0].Body)
	}
}

func TestListAndAll(t *testing.T) {
	page := func(ids []string, next string) reply {
		items := make([]string, len(ids))
		for i, id := range ids {
			items[i] = strings.Replace(received, `"tx-0001"`, `"`+id+`"`, 1)
		}
		cursor := "null"
		if next != "" {
			cursor = `"` + next + `"`
		}
		return reply{status: 200, body: `{"items":[` + strings.Join(items, ",") + `],"next_cursor":` + cursor + `}`}
	}
	c, api, _ := newClient(t, []reply{page([]string{"a", "b"}, "c1"), page([]string{"c", "d"}, "c2"), page([]string{"e"}, "")})
	var ids []string
	for res, err := range c.All(context.Background(), ListOptions{UserID: "123", Status: StatusReceived, Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d", "e"}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	var queries []string
	for _, r := range api.got() {
		queries = append(queries, r.Query)
	}
	want := []string{"limit=2&status=received&user_id=123", "cursor=c1&limit=2&status=received&user_id=123", "cursor=c2&limit=2&status=received&user_id=123"}
	if diff := cmp.Diff(want, queries); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}

	c, _, _ = newClient(t, []reply{{
		status: 400, header: map[string]string{"Content-Type": "application/problem+json"},
		body: `{"type":"/problems/invalid-query","title":"Invalid query","status":400,"errors":[{"field":"cursor","code":"invalid_value","message":"m"}]}`,
	}})
	_, err := c.List(context.Background(), ListOptions{Cursor: "bogus"})
	var p *Problem
	if !errors.As(err, &p) || p.Type != TypeInvalidQuery || p.Errors[0].Field != "cursor" {
		t.Errorf("bad cursor: err = %v, want an invalid-query *Problem naming cursor", err)
	}
}

func TestWaitFinal(t *testing.T) {
	c, api, _ := newClient(t, []reply{{status: 200, body: processed}})
	res, err := c.WaitFinal(context.Background(), "tx-0001", 10*time.Second)
	if err != nil || res.Status != StatusProcessed {
		t.Fatalf("WaitFinal = %+v, %v", res, err)
	}
	if got := api.got()[0]; got.Path != "/v1/transactions/tx-0001" || got.Query != "wait=10s" {
		t.Errorf("asked %s?%s, want the wait in the query", got.Path, got.Query)
	}
	for _, wait := range []time.Duration{-time.Second, MaxWait + time.Second} {
		if _, err := c.WaitFinal(context.Background(), "tx-0001", wait); err == nil {
			t.Errorf("WaitFinal(%s): no error", wait)
		}
	}
	if n := len(api.got()); n != 1 {
		t.Errorf("%d requests, want 1: a wait out of bounds is not sent", n)
	}
}
