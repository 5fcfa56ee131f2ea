package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func body(id, amount, currency, ts string) string {
	return fmt.Sprintf(`{"transaction_id": %q, "amount": %s, "currency": %q, "user_id": "123", "timestamp": %q}`, id, amount, currency, ts)
}

// TestTransactionsReachProcessedWithExactAmounts posts transactions in
// several currencies and checks each converted amount against figures
// computed independently (Python's decimal module, half-even) from the ECB
// rates that ratesd's built-in table holds.
func TestTransactionsReachProcessedWithExactAmounts(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	tests := []struct {
		id, amount, currency, ts          string
		converted, rate, rateDate, stored string
	}{
		// The original's load-test body, on the original's endpoint.
		{"usd", `100.0`, "USD", "2024-09-11T00:00:00", "90.56", "0.9055510278", "2024-09-11", "100.00"},
		{"jpy", `12345`, "JPY", "2024-09-11T12:00:00Z", "78.83", "0.006385696041", "2024-09-11", "12345"},
		// A Saturday: Friday's rate, and Friday as rate_date.
		{"gbp-saturday", `"100"`, "gbp", "2024-09-14T10:00:00+02:00", "118.38", "1.183782184", "2024-09-13", "100.00"},
		{"eur", `10`, "EUR", "2024-09-11T00:00:00Z", "10.00", "1", "2024-09-11", "10.00"},
		{"usd-cents", `0.05`, "USD", "2024-09-11T00:00:00Z", "0.05", "0.9055510278", "2024-09-11", "0.05"},
	}
	for i, tt := range tests {
		path := "/v1/transactions"
		if i == 0 {
			path = "/transaction"
		}
		code, res := s.post(path, body(tt.id, tt.amount, tt.currency, tt.ts))
		if code != http.StatusCreated || res["status"] != "received" || res["amount"] != tt.stored {
			t.Fatalf("POST %s: %d %v", tt.id, code, res)
		}
	}
	for _, tt := range tests {
		res := s.waitStatus(tt.id, 30*time.Second, "processed", "failed")
		if res["status"] != "processed" || res["converted_amount"] != tt.converted || res["target_currency"] != "EUR" ||
			res["exchange_rate"] != tt.rate || res["rate_date"] != tt.rateDate || res["failure_reason"] != nil {
			t.Errorf("%s: %v, want %s EUR at %s of %s", tt.id, res, tt.converted, tt.rate, tt.rateDate)
		}
	}

	// BHD is an ISO currency the ECB publishes no rate for: a permanent
	// answer, recorded as failed with a reason, never a default rate.
	if code, res := s.post("/v1/transactions", body("bhd", `"1.234"`, "BHD", "2024-09-11T00:00:00Z")); code != http.StatusCreated || res["amount"] != "1.234" {
		t.Fatalf("POST bhd: %d %v", code, res)
	}
	res := s.waitStatus("bhd", 30*time.Second, "processed", "failed")
	if res["status"] != "failed" || res["converted_amount"] != nil || !strings.Contains(fmt.Sprint(res["failure_reason"]), "BHD") {
		t.Errorf("bhd: %v, want failed with a reason naming BHD", res)
	}

	// Listing: newest first, filtered by status.
	code, list := s.get("/v1/transactions?status=processed&limit=2")
	items, _ := list["items"].([]any)
	if code != http.StatusOK || len(items) != 2 || list["next_cursor"] == nil {
		t.Fatalf("list: %d %v", code, list)
	}
	code, list = s.get("/v1/transactions?status=processed&limit=2&cursor=" + url.QueryEscape(list["next_cursor"].(string)))
	if items, _ := list["items"].([]any); code != http.StatusOK || len(items) != 2 {
		t.Errorf("second page: %d %v", code, list)
	}
}

// TestRetriesConflictsAndInvalidBodies checks what a client sees for a
// retried duplicate (also many at once), a conflicting reuse of an id, and
// bodies that are not valid transactions.
func TestRetriesConflictsAndInvalidBodies(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	first := body("dup", `100.0`, "USD", "2024-09-11T00:00:00")
	if code, _ := s.post("/transaction", first); code != http.StatusCreated {
		t.Fatalf("first POST: %d", code)
	}
	// The same transaction, written differently: 200 with the stored resource.
	same := body("dup", `"100"`, "usd", "2024-09-11T02:00:00+02:00")
	var wg sync.WaitGroup
	codes := make([]int, 10)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = s.post("/v1/transactions", same)
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("retry %d: %d, want 200", i, c)
		}
	}
	code, res := s.post("/v1/transactions", body("dup", `100.01`, "USD", "2024-09-11T00:00:00"))
	if code != http.StatusConflict || res["type"] != "/problems/conflict" {
		t.Errorf("conflict: %d %v", code, res)
	}
	code, res = s.post("/v1/transactions", `{"transaction_id": "bad", "user_id": "", "ammount": 1, "currency": "XAU", "timestamp": "2024-09-11"}`)
	errs, _ := res["errors"].([]any)
	if code != http.StatusUnprocessableEntity || len(errs) != 5 {
		t.Errorf("invalid: %d %v, want 422 listing user_id, amount, currency, timestamp, ammount", code, res)
	}
	if code, _ := s.post("/v1/transactions", `not json`); code != http.StatusBadRequest {
		t.Errorf("malformed: %d, want 400", code)
	}
	if code, _ := s.get("/v1/transactions/bad"); code != http.StatusNotFound {
		t.Errorf("rejected transaction readable: %d, want 404", code)
	}
	// The duplicate was converted once.
	s.waitStatus("dup", 30*time.Second, "processed")
	if got := metric(t, s.convAdmin, "txpersister_transactions_processed_total"); got != 1 {
		t.Errorf("processed %v times, want 1", got)
	}
}

// flakyRates is a rates provider in front of ratesd that answers 503 while
// down, or always for one currency.
type flakyRates struct {
	down        atomic.Bool
	brokenCode  string // a currency whose quotes are never served
	failedCalls atomic.Int64
	proxy       *httputil.ReverseProxy
}

func (f *flakyRates) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.down.Load() || (f.brokenCode != "" && slices.Contains(strings.Split(r.URL.Query().Get("symbols"), ","), f.brokenCode)) {
		f.failedCalls.Add(1)
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// TestRatesOutageHeals keeps the provider down while a transaction arrives,
// sees it retried (and still received, not failed), brings the provider back
// and sees it processed; a currency whose rates stay down ends failed with a
// reason and its message in the dead-letter queue.
func TestRatesOutageHeals(t *testing.T) {
	t.Parallel()
	flaky := &flakyRates{brokenCode: "CHF"}
	flaky.down.Store(true)
	proxySrv := httptest.NewServer(flaky)
	defer proxySrv.Close()
	var s *stack
	// ratesd's address is known only once the stack starts: route lazily.
	flaky.proxy = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		target, _ := url.Parse(s.ratesd)
		r.SetURL(target)
	}}
	// While its provider is down the converter says it is not ready.
	s = start(t, options{ratesURL: proxySrv.URL + "/v1", retryDelays: "300ms,600ms,1s", converterUnready: true})
	if code := readyz(t, s.convAdmin); code != http.StatusServiceUnavailable {
		t.Errorf("converter /readyz during the outage: %d, want 503", code)
	}

	if code, _ := s.post("/v1/transactions", body("heal", `100.0`, "USD", "2024-09-11T00:00:00Z")); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	if code, _ := s.post("/v1/transactions", body("never", `5`, "CHF", "2024-09-11T00:00:00Z")); code != http.StatusCreated {
		t.Fatalf("POST: %d", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, s.convAdmin, "txpersister_messages_retried_total") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no retry scheduled while the provider is down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, res := s.get("/v1/transactions/heal"); res["status"] != "received" {
		t.Fatalf("during the outage: %v, want still received", res)
	}
	flaky.down.Store(false)
	waitURL(t, s.convAdmin+"/readyz", 30*time.Second, nil)

	res := s.waitStatus("heal", 60*time.Second, "processed", "failed")
	if res["status"] != "processed" || res["converted_amount"] != "90.56" {
		t.Errorf("after the outage: %v, want processed to 90.56", res)
	}
	res = s.waitStatus("never", 60*time.Second, "processed", "failed")
	if res["status"] != "failed" || !strings.Contains(fmt.Sprint(res["failure_reason"]), "unavailable") {
		t.Errorf("rates down for good: %v, want failed as unavailable", res)
	}
	if n := dlqDepth(t, s.amqpURL); n != 1 {
		t.Errorf("dead-letter queue holds %d messages, want 1", n)
	}
	if got := metric(t, s.convAdmin, `txpersister_messages_dead_lettered_total{reason="retries_exhausted"}`); got != 1 {
		t.Errorf("dead-lettered metric = %v, want 1", got)
	}
}

func dlqDepth(t *testing.T, amqpURL string) int {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive("transactions.convert.dlq", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// TestBatchEndpoint posts a thousand transactions in one request and sees
// each answered in order and every one processed.
func TestBatchEndpoint(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	const n = 1000
	var b strings.Builder
	b.WriteString("[")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(body(fmt.Sprintf("batch-%04d", i), "100.0", "USD", "2024-09-11T00:00:00Z"))
	}
	b.WriteString("]")
	resp, err := s.client.Post(s.api+"/v1/transactions/batch", "application/json", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	code, out := decode(t, resp)
	results, _ := out["results"].([]any)
	if code != http.StatusOK || len(results) != n {
		t.Fatalf("batch: %d with %d results", code, len(results))
	}
	for i, r := range results {
		m := r.(map[string]any)
		tx, _ := m["transaction"].(map[string]any)
		if m["status"] != float64(http.StatusCreated) || tx["transaction_id"] != fmt.Sprintf("batch-%04d", i) {
			t.Fatalf("result %d: %v", i, m)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, list := s.get("/v1/transactions?status=received&limit=1")
		if items, _ := list["items"].([]any); len(items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("batch not processed within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := metric(t, s.convAdmin, "txpersister_transactions_processed_total"); got != n {
		t.Errorf("processed %v, want %d", got, n)
	}
}

// readyz returns the status of adminURL's /readyz.
func readyz(t *testing.T, adminURL string) int {
	t.Helper()
	resp, err := http.Get(adminURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
