package ratesclient_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/ratesclient"
)

// fixedNow is the clock of most tests: 2024-09-20 12:00 UTC, so 2024-09-10
// is long over and 2024-09-20 is not over yet in Berlin.
var fixedNow = time.Date(2024, 9, 20, 12, 0, 0, 0, time.UTC)

func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err) // test literal
	}
	return t
}

// fakeProvider is an httptest server answering with handler and counting the
// requests it received.
type fakeProvider struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	urls  []string
}

func newFakeProvider(t *testing.T, handler http.HandlerFunc) *fakeProvider {
	t.Helper()
	f := &fakeProvider{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls.Add(1)
		f.mu.Lock()
		f.urls = append(f.urls, r.URL.RequestURI())
		f.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeProvider) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.urls...)
}

// answer is a handler that always writes status and body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

// newClient builds a client on cfg with test-friendly defaults filled in.
func newClient(t *testing.T, cfg ratesclient.Config) *ratesclient.Client {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return fixedNow }
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	c, err := ratesclient.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return c
}

// quoteCmp compares quotes by value and exact text.
var quoteCmp = cmp.Comparer(func(a, b ratesclient.Quote) bool {
	return a.Value.Equal(b.Value) && a.Text == b.Text
})

func quote(text string) ratesclient.Quote {
	return ratesclient.Quote{Value: decimal.RequireFromString(text), Text: text}
}

func TestQuotesParsesAnswers(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		codes    []string
		date     time.Time
		body     string
		wantURL  string
		want     ratesclient.Quotes
	}{
		{
			name:     "frankfurter keeps every digit and its text",
			provider: ratesclient.ProviderFrankfurter,
			codes:    []string{"USD"}, date: day("2024-09-10"),
			body:    `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.10310000000000000001}}`,
			wantURL: "/v1/2024-09-10?base=EUR&symbols=USD",
			want: ratesclient.Quotes{
				Provider: "frankfurter", Asked: day("2024-09-10"), Date: day("2024-09-10"), Final: true,
				Rates: map[string]ratesclient.Quote{"USD": quote("1.10310000000000000001")},
			},
		},
		{
			name:     "frankfurter asks both currencies of a cross rate, sorted, without EUR",
			provider: "", // the default
			codes:    []string{"usd", "jpy", "EUR", "USD"}, date: time.Date(2024, 9, 14, 23, 30, 0, 0, time.UTC),
			body:    `{"amount":1.0,"base":"EUR","date":"2024-09-13","rates":{"JPY":156.17,"USD":1.1081}}`,
			wantURL: "/v1/2024-09-14?base=EUR&symbols=JPY,USD",
			want: ratesclient.Quotes{
				Provider: "frankfurter", Asked: day("2024-09-14"), Date: day("2024-09-13"), Final: true,
				Rates: map[string]ratesclient.Quote{"JPY": quote("156.17"), "USD": quote("1.1081")},
			},
		},
		{
			name:     "frankfurter calendar day is taken in UTC",
			provider: ratesclient.ProviderFrankfurter,
			codes:    []string{"GBP"}, date: time.Date(2024, 9, 11, 1, 0, 0, 0, time.FixedZone("UTC+3", 3*3600)),
			body:    `{"amount":1,"base":"EUR","date":"2024-09-10","rates":{"GBP":0.84265}}`,
			wantURL: "/v1/2024-09-10?base=EUR&symbols=GBP",
			want: ratesclient.Quotes{
				Provider: "frankfurter", Asked: day("2024-09-10"), Date: day("2024-09-10"), Final: true,
				Rates: map[string]ratesclient.Quote{"GBP": quote("0.84265")},
			},
		},
		{
			name:     "frankfurter today is asked by its date, and not final before it is published",
			provider: ratesclient.ProviderFrankfurter,
			codes:    []string{"USD"}, date: fixedNow,
			body:    `{"amount":1.0,"base":"EUR","date":"2024-09-19","rates":{"USD":1.1156}}`,
			wantURL: "/v1/2024-09-20?base=EUR&symbols=USD",
			want: ratesclient.Quotes{
				Provider: "frankfurter", Asked: day("2024-09-20"), Date: day("2024-09-19"), Final: false,
				Rates: map[string]ratesclient.Quote{"USD": quote("1.1156")},
			},
		},
		{
			name:     "exchangerate-api keeps every digit and its date",
			provider: ratesclient.ProviderExchangeRateAPI,
			codes:    []string{"USD"}, date: day("2024-09-02"),
			body:    `{"base":"EUR","date":"2024-09-11","time_last_updated":1726012801,"rates":{"EUR":1,"USD":1.104312345678901234,"JPY":156.6}}`,
			wantURL: "/v4/latest/EUR",
			want: ratesclient.Quotes{
				Provider: "exchangerate-api", Asked: day("2024-09-02"), Date: day("2024-09-11"), Final: true,
				Rates: map[string]ratesclient.Quote{"USD": quote("1.104312345678901234")},
			},
		},
		{
			name:     "exchangerate-api exponent notation",
			provider: ratesclient.ProviderExchangeRateAPI,
			codes:    []string{"IDR"}, date: day("2024-09-11"),
			body:    `{"base":"EUR","date":"2024-09-11","time_last_updated":1726012801,"rates":{"IDR":1.702019e4}}`,
			wantURL: "/v4/latest/EUR",
			want: ratesclient.Quotes{
				Provider: "exchangerate-api", Asked: day("2024-09-11"), Date: day("2024-09-11"), Final: true,
				Rates: map[string]ratesclient.Quote{"IDR": quote("1.702019e4")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeProvider(t, answer(http.StatusOK, tt.body))
			base := fake.srv.URL + "/v1"
			if tt.provider == ratesclient.ProviderExchangeRateAPI {
				base = fake.srv.URL + "/v4"
			}
			c := newClient(t, ratesclient.Config{BaseURL: base, Provider: tt.provider})

			got, err := c.Quotes(context.Background(), tt.date, tt.codes...)
			if err != nil {
				t.Fatalf("Quotes: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, quoteCmp); diff != "" {
				t.Errorf("Quotes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tt.wantURL}, fake.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestQuotesFinal checks when an answer counts as final: dated the day
// asked, or the day asked over in the provider's calendar (Europe/Berlin by
// default), never earlier.
func TestQuotesFinal(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		now      time.Time
		asked    string
		answered string
		calendar *time.Location
		want     bool
	}{
		{"dated the day asked, at once", time.Date(2024, 9, 20, 14, 5, 0, 0, time.UTC), "2024-09-20", "2024-09-20", nil, true},
		{"earlier date, the day still on", time.Date(2024, 9, 20, 21, 59, 59, 0, time.UTC), "2024-09-20", "2024-09-19", nil, false},
		// 2024-09-20 ends at 22:00 UTC in Berlin's summer time.
		{"earlier date, the day over in Berlin (summer)", time.Date(2024, 9, 20, 22, 0, 0, 0, time.UTC), "2024-09-20", "2024-09-19", nil, true},
		// 2024-12-02 ends at 23:00 UTC in Berlin's winter time.
		{"earlier date, one minute before the winter midnight", time.Date(2024, 12, 2, 22, 59, 0, 0, time.UTC), "2024-12-02", "2024-11-29", nil, false},
		{"earlier date, the winter midnight", time.Date(2024, 12, 2, 23, 0, 0, 0, time.UTC), "2024-12-02", "2024-11-29", nil, true},
		{"a Saturday waits for its end", time.Date(2024, 9, 14, 12, 0, 0, 0, time.UTC), "2024-09-14", "2024-09-13", nil, false},
		{"a Saturday after its end", time.Date(2024, 9, 15, 0, 0, 0, 0, time.UTC), "2024-09-14", "2024-09-13", nil, true},
		// Good Friday 2025: a TARGET holiday, no rate of its own.
		{"a holiday waits for its end", time.Date(2025, 4, 18, 16, 30, 0, 0, time.UTC), "2025-04-18", "2025-04-17", nil, false},
		{"a holiday after its end", time.Date(2025, 4, 18, 22, 0, 0, 0, time.UTC), "2025-04-18", "2025-04-17", nil, true},
		{"Easter Monday before its end", time.Date(2025, 4, 21, 21, 0, 0, 0, time.UTC), "2025-04-21", "2025-04-17", nil, false},
		{"a day long past", time.Date(2024, 9, 20, 12, 0, 0, 0, time.UTC), "2024-09-01", "2024-08-30", nil, true},
		{"a later date (no history)", time.Date(2024, 9, 20, 12, 0, 0, 0, time.UTC), "2024-09-01", "2024-09-20", nil, true},
		{"another calendar", time.Date(2024, 9, 20, 22, 0, 0, 0, time.UTC), "2024-09-20", "2024-09-19", time.FixedZone("UTC-12", -12*3600), false},
		{"the explicit Berlin calendar", time.Date(2024, 9, 20, 22, 0, 0, 0, time.UTC), "2024-09-20", "2024-09-19", berlin, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeProvider(t, answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"`+tt.answered+`","rates":{"USD":1.1}}`))
			if tt.answered > tt.asked {
				fake = newFakeProvider(t, answer(http.StatusOK, `{"base":"EUR","date":"`+tt.answered+`","rates":{"USD":1.1}}`))
			}
			provider := ratesclient.ProviderFrankfurter
			if tt.answered > tt.asked {
				provider = ratesclient.ProviderExchangeRateAPI
			}
			c := newClient(t, ratesclient.Config{
				BaseURL: fake.srv.URL + "/v1", Provider: provider, Calendar: tt.calendar,
				Now: func() time.Time { return tt.now },
			})
			got, err := c.Quotes(context.Background(), day(tt.asked), "USD")
			if err != nil {
				t.Fatal(err)
			}
			if got.Final != tt.want {
				t.Errorf("Final = %v, want %v", got.Final, tt.want)
			}
		})
	}
}

// TestQuotesNeverCachesAProvisionalAnswerAsFinal: a provisional answer
// expires after ProvisionalTTL and is asked again; once the provider has
// the day, that answer is final and stays.
func TestQuotesNeverCachesAProvisionalAnswerAsFinal(t *testing.T) {
	var published atomic.Bool
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		date := "2024-09-19"
		if published.Load() {
			date = "2024-09-20"
		}
		answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"`+date+`","rates":{"USD":1.1166}}`)(w, r)
	})
	var clock clock
	clock.set(time.Date(2024, 9, 20, 10, 0, 0, 0, time.UTC))
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", ProvisionalTTL: time.Minute, Now: clock.now})
	ask := func(wantDate string, wantFinal bool, wantCalls int64) {
		t.Helper()
		q, err := c.Quotes(context.Background(), day("2024-09-20"), "USD")
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Date.Format(time.DateOnly); got != wantDate || q.Final != wantFinal {
			t.Errorf("answer dated %s, final %v; want %s, %v", got, q.Final, wantDate, wantFinal)
		}
		if got := fake.calls.Load(); got != wantCalls {
			t.Errorf("server calls = %d, want %d", got, wantCalls)
		}
	}
	ask("2024-09-19", false, 1)
	clock.set(clock.now().Add(59 * time.Second))
	ask("2024-09-19", false, 1) // cached, still provisional
	published.Store(true)
	clock.set(clock.now().Add(2 * time.Second))
	ask("2024-09-20", true, 2)
	clock.set(clock.now().Add(24 * time.Hour))
	ask("2024-09-20", true, 2) // final: kept
}

// TestQuotesProvisionalTurnsFinalWhenTheDayEnds: an answer cached while the
// day was on says Final once the day is over, without asking again.
func TestQuotesProvisionalTurnsFinalWhenTheDayEnds(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-13","rates":{"USD":1.1081}}`))
	var clock clock
	clock.set(time.Date(2024, 9, 14, 21, 59, 30, 0, time.UTC)) // Saturday, 23:59:30 in Berlin
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", ProvisionalTTL: time.Hour, Now: clock.now})
	q, err := c.Quotes(context.Background(), day("2024-09-14"), "USD")
	if err != nil || q.Final {
		t.Fatalf("before midnight: final %v, err %v; want provisional", q.Final, err)
	}
	clock.set(clock.now().Add(time.Minute))
	q, err = c.Quotes(context.Background(), day("2024-09-14"), "USD")
	if err != nil || !q.Final {
		t.Fatalf("after midnight: final %v, err %v; want final", q.Final, err)
	}
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("server calls = %d, want 1", got)
	}
}

func TestQuotesErrors(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	html := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body>Welcome to nginx!</body></html>")
	}
	tests := []struct {
		name        string
		provider    string
		handler     http.HandlerFunc
		date        time.Time
		wantErr     error
		wantOutcome string
		wantCalls   int64 // with Retries 2
		wantMsg     string
	}{
		{
			name:        "frankfurter's own not found is permanent",
			handler:     answer(http.StatusNotFound, `{"message":"not found"}`),
			wantErr:     ratesclient.ErrNotFound,
			wantOutcome: "not_found",
			wantCalls:   1,
			wantMsg:     `quotes of USD for 2024-09-10: frankfurter has no such quote (404 Not Found "{\"message\":\"not found\"}")`,
		},
		{
			name:        "a path frankfurter does not serve is a misconfiguration",
			handler:     answer(http.StatusNotFound, `{"status":404,"message":"not found"}`),
			wantErr:     ratesclient.ErrRejected,
			wantOutcome: "rejected",
			wantCalls:   3,
		},
		{
			name:        "a 404 page of a gateway is a misconfiguration",
			handler:     answer(http.StatusNotFound, `<html>404</html>`),
			wantErr:     ratesclient.ErrRejected,
			wantOutcome: "rejected",
			wantCalls:   3,
		},
		{
			name:        "403 is rejected, retried",
			handler:     answer(http.StatusForbidden, `forbidden`),
			wantErr:     ratesclient.ErrRejected,
			wantOutcome: "rejected",
			wantCalls:   3,
			wantMsg:     `frankfurter answered 403 Forbidden: "forbidden": request rejected: rate provider unavailable`,
		},
		{
			name:        "407 is rejected",
			handler:     answer(http.StatusProxyAuthRequired, ``),
			wantErr:     ratesclient.ErrRejected,
			wantOutcome: "rejected",
			wantCalls:   3,
		},
		{
			name:        "422 is rejected",
			handler:     answer(http.StatusUnprocessableEntity, `{"message":"invalid"}`),
			wantErr:     ratesclient.ErrRejected,
			wantOutcome: "rejected",
			wantCalls:   3,
		},
		{
			name:        "a 404 body with a NUL stays text in the error",
			handler:     answer(http.StatusNotFound, "bad\x00\xff body"),
			wantErr:     ratesclient.ErrRejected,
			wantOutcome: "rejected",
			wantCalls:   3,
			wantMsg:     `"bad\x00\xff body"`,
		},
		{
			name:        "500 is unavailable after retries",
			handler:     answer(http.StatusInternalServerError, `oops`),
			wantErr:     ratesclient.ErrUnavailable,
			wantOutcome: "unavailable",
			wantCalls:   3,
			wantMsg:     "after 3 attempts: quotes of USD for 2024-09-10: frankfurter answered 500",
		},
		{
			name:        "429 is unavailable after retries",
			handler:     answer(http.StatusTooManyRequests, `slow down`),
			wantErr:     ratesclient.ErrUnavailable,
			wantOutcome: "unavailable",
			wantCalls:   3,
		},
		{
			name:        "timeout is unavailable after retries",
			handler:     hang,
			wantErr:     ratesclient.ErrUnavailable,
			wantOutcome: "unavailable",
			wantCalls:   3,
			wantMsg:     "context deadline exceeded",
		},
		{
			name:        "malformed json is a bad answer",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","rates":{"USD":1.1`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
			wantMsg:     "malformed answer",
		},
		{
			name:        "an HTML page with status 200 is a bad answer",
			handler:     html,
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "a currency the answer lacks is not found",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"JPY":157.81}}`),
			wantErr:     ratesclient.ErrNotFound,
			wantOutcome: "not_found",
			wantCalls:   1,
			wantMsg:     `frankfurter has no quote of USD for 2024-09-10: not found`,
		},
		{
			name:        "a zero quote is never used",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":0}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
			wantMsg:     "not positive",
		},
		{
			name:        "a negative quote is never used",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":-1.1}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "a quote with a huge negative exponent is never parsed",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1e-2147483647}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "a quote longer than 64 characters is never parsed",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.`+strings.Repeat("1", 70)+`}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "a quote as a string is a bad answer",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":"1.1"}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "a null quote is never used",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":null}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "an answer for another base is a bad answer",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"USD":1}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
			wantMsg:     `frankfurter answered base "USD", asked "EUR"`,
		},
		{
			name:        "an amount other than one is a bad answer",
			handler:     answer(http.StatusOK, `{"amount":10,"base":"EUR","date":"2024-09-10","rates":{"USD":11.031}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "a date that is no date is a bad answer",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"yesterday","rates":{"USD":1.1}}`),
			wantErr:     ratesclient.ErrBadAnswer,
			wantOutcome: "bad_answer",
			wantCalls:   3,
		},
		{
			name:        "an answer dated after the day asked is not found",
			handler:     answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"1999-01-04","rates":{"USD":1.1789}}`),
			date:        day("1990-01-01"),
			wantErr:     ratesclient.ErrNotFound,
			wantOutcome: "not_found",
			wantCalls:   1,
		},
		{
			name:        "exchangerate-api missing the currency is not found, never 1.0",
			provider:    ratesclient.ProviderExchangeRateAPI,
			handler:     answer(http.StatusOK, `{"base":"EUR","date":"2024-09-11","time_last_updated":1726012801,"rates":{"EUR":1,"JPY":156.6}}`),
			wantErr:     ratesclient.ErrNotFound,
			wantOutcome: "not_found",
			wantCalls:   1,
			wantMsg:     `exchangerate-api has no quote of USD for 2024-09-11: not found`,
		},
		{
			name:        "exchangerate-api unsupported-code is not found",
			provider:    ratesclient.ProviderExchangeRateAPI,
			handler:     answer(http.StatusNotFound, `{"result":"error","error-type":"unsupported-code"}`),
			wantErr:     ratesclient.ErrNotFound,
			wantOutcome: "not_found",
			wantCalls:   1,
		},
		{
			name:        "exchangerate-api unsupported-code with status 200 is not found",
			provider:    ratesclient.ProviderExchangeRateAPI,
			handler:     answer(http.StatusOK, `{"result":"error","error-type":"unsupported-code"}`),
			wantErr:     ratesclient.ErrNotFound,
			wantOutcome: "not_found",
			wantCalls:   1,
		},
		{
			name:        "exchangerate-api refusing the key is rejected",
			provider:    ratesclient.ProviderExchangeRateAPI,
			handler:     answer(http.StatusForbidden, `{"result":"error","error-type":"invalid-key"}`),
			wantErr:     ratesclient.ErrRejected,
			wantOutcome: "rejected",
			wantCalls:   3,
		},
		{
			name:        "exchangerate-api 503 is unavailable",
			provider:    ratesclient.ProviderExchangeRateAPI,
			handler:     answer(http.StatusServiceUnavailable, ``),
			wantErr:     ratesclient.ErrUnavailable,
			wantOutcome: "unavailable",
			wantCalls:   3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeProvider(t, tt.handler)
			obs := &recordingObserver{}
			c := newClient(t, ratesclient.Config{
				BaseURL:  fake.srv.URL + "/v1",
				Provider: tt.provider,
				Timeout:  50 * time.Millisecond,
				Observer: obs,
			})
			date := tt.date
			if date.IsZero() {
				date = day("2024-09-10")
			}

			_, err := c.Quotes(context.Background(), date, "USD")
			assertErr(t, err, tt.wantErr, tt.wantMsg)
			if got := ratesclient.Outcome(err); got != tt.wantOutcome {
				t.Errorf("Outcome = %q, want %q", got, tt.wantOutcome)
			}
			if got := fake.calls.Load(); got != tt.wantCalls {
				t.Errorf("server calls = %d, want %d", got, tt.wantCalls)
			}
			if got := obs.callCount(); got != int(tt.wantCalls) {
				t.Errorf("observed calls = %d, want %d", got, tt.wantCalls)
			}
			for _, e := range obs.errs() {
				if got := ratesclient.Outcome(e); got != tt.wantOutcome {
					t.Errorf("observed outcome = %q, want %q", got, tt.wantOutcome)
				}
			}
			// A failure is not cached: the next ask reaches the server again.
			_, _ = c.Quotes(context.Background(), date, "USD")
			if got := fake.calls.Load(); got != 2*tt.wantCalls {
				t.Errorf("server calls after second ask = %d, want %d", got, 2*tt.wantCalls)
			}
		})
	}
}

// assertErr checks that err wraps want (and not the other sentinel) and that
// its message contains msg.
func assertErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Errorf("err = %q, want it to wrap %q", err, want)
	}
	other := ratesclient.ErrUnavailable
	if errors.Is(want, ratesclient.ErrUnavailable) {
		other = ratesclient.ErrNotFound
	}
	if errors.Is(err, other) {
		t.Errorf("err = %q wraps both sentinels", err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("err = %q, want it to contain %q", err, msg)
	}
}

func TestQuotesConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	obs := &recordingObserver{}
	c := newClient(t, ratesclient.Config{BaseURL: "http://" + addr + "/v1", Observer: obs})

	_, err = c.Quotes(context.Background(), day("2024-09-10"), "USD")
	assertErr(t, err, ratesclient.ErrUnavailable, "after 3 attempts")
	if got := ratesclient.Outcome(err); got != "unavailable" {
		t.Errorf("Outcome = %q, want unavailable", got)
	}
	if got := obs.callCount(); got != 3 {
		t.Errorf("observed calls = %d, want 3", got)
	}
	for _, e := range obs.errs() {
		if e == nil {
			t.Errorf("observed a call without error")
		}
	}
}

func TestQuotesRetriesThenSucceeds(t *testing.T) {
	var n atomic.Int64
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			answer(http.StatusBadGateway, "")(w, r)
			return
		}
		answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`)(w, r)
	})
	obs := &recordingObserver{}
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Observer: obs})

	got, err := c.Quotes(context.Background(), day("2024-09-10"), "USD")
	if err != nil {
		t.Fatalf("Quotes: %v", err)
	}
	if diff := cmp.Diff(quote("1.1031"), got.Rates["USD"], quoteCmp); diff != "" {
		t.Errorf("USD (-want +got):\n%s", diff)
	}
	if got := fake.calls.Load(); got != 2 {
		t.Errorf("server calls = %d, want 2", got)
	}
	errs := obs.errs()
	if len(errs) != 2 || !errors.Is(errs[0], ratesclient.ErrUnavailable) || errs[1] != nil {
		t.Errorf("observed call errors = %v, want [unavailable, nil]", errs)
	}
}

func TestQuotesNoRetriesWhenDisabled(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusInternalServerError, ""))
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Retries: -1})

	_, err := c.Quotes(context.Background(), day("2024-09-10"), "USD")
	assertErr(t, err, ratesclient.ErrUnavailable, "500")
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("server calls = %d, want 1", got)
	}
}

func TestQuotesCachesFinalAnswers(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`))
	obs := &recordingObserver{}
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Observer: obs})

	first, err := c.Quotes(context.Background(), day("2024-09-10"), "USD")
	if err != nil {
		t.Fatalf("first Quotes: %v", err)
	}
	second, err := c.Quotes(context.Background(), time.Date(2024, 9, 10, 18, 0, 0, 0, time.UTC), "usd", "EUR")
	if err != nil {
		t.Fatalf("second Quotes: %v", err)
	}
	if diff := cmp.Diff(first, second, quoteCmp); diff != "" {
		t.Errorf("cached answer differs (-first +second):\n%s", diff)
	}
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("server calls = %d, want 1", got)
	}
	if diff := cmp.Diff([]bool{false, true}, obs.hits()); diff != "" {
		t.Errorf("cache hits (-want +got):\n%s", diff)
	}
}

func TestQuotesCoalescesConcurrentAsks(t *testing.T) {
	const n = 10
	obs := &recordingObserver{allMissed: make(chan struct{}), wantMisses: n}
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		// Answer only when every goroutine has missed the cache and is
		// waiting, so that without coalescing each would call the server.
		select {
		case <-obs.allMissed:
		case <-time.After(5 * time.Second):
		}
		answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`)(w, r)
	})
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Observer: obs})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			q, err := c.Quotes(context.Background(), day("2024-09-10"), "USD")
			if err == nil && q.Rates["USD"].Text != "1.1031" {
				err = fmt.Errorf("quote %v", q.Rates["USD"])
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Quotes: %v", err)
		}
	}
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("server calls = %d, want 1", got)
	}
}

func TestQuotesHonoursCallerContext(t *testing.T) {
	release := make(chan struct{})
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`)(w, r)
	})
	t.Cleanup(func() { close(release) })
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Timeout: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Quotes(ctx, day("2024-09-10"), "USD")
		done <- err
	}()
	for fake.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ratesclient.ErrUnavailable) {
			t.Errorf("err = %v, want it to wrap context.Canceled and ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Quotes did not return after its context was cancelled")
	}
}

func TestQuotesCacheBound(t *testing.T) {
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		d := strings.TrimPrefix(r.URL.Path, "/v1/")
		answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"`+d+`","rates":{"USD":1.1}}`)(w, r)
	})
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", CacheSize: 2})
	ask := func(date string, wantCalls int64) {
		t.Helper()
		if _, err := c.Quotes(context.Background(), day(date), "USD"); err != nil {
			t.Fatalf("Quotes %s: %v", date, err)
		}
		if got := fake.calls.Load(); got != wantCalls {
			t.Errorf("after %s: server calls = %d, want %d", date, got, wantCalls)
		}
	}
	ask("2024-09-02", 1)
	ask("2024-09-03", 2)
	ask("2024-09-02", 2) // cached; now the most recently used
	ask("2024-09-04", 3) // evicts 2024-09-03
	ask("2024-09-02", 3)
	ask("2024-09-04", 3)
	ask("2024-09-03", 4)
}

func TestQuotesRefusesWhatIsNoQuestion(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusInternalServerError, ""))
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1"})

	for _, codes := range [][]string{{""}, {"US"}, {"USDX"}, {"U$D"}, {"ÜSD"}, {"USD", "eu"}, {}, {"EUR"}, {"eur", "EUR"}} {
		_, err := c.Quotes(context.Background(), day("2024-09-10"), codes...)
		assertErr(t, err, ratesclient.ErrNotFound, "")
	}
	if got := fake.calls.Load(); got != 0 {
		t.Errorf("server calls = %d, want 0", got)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		target   string
		handler  http.HandlerFunc
		wantURL  string
		wantErr  error
		wantMsg  string
	}{
		{
			name: "frankfurter quotes the target", target: "USD",
			handler: answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-20","rates":{"JPY":161.08,"USD":1.1166}}`),
			wantURL: "/v1/latest?base=EUR",
		},
		{
			name: "EUR needs only an answer", target: "eur",
			handler: answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-20","rates":{"USD":1.1166}}`),
			wantURL: "/v1/latest?base=EUR",
		},
		{
			name: "a target not quoted", target: "XOF",
			handler: answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-20","rates":{"USD":1.1166}}`),
			wantURL: "/v1/latest?base=EUR", wantErr: ratesclient.ErrNotFound, wantMsg: "hold none for XOF",
		},
		{
			name: "a not found for the latest euro quotes is a wrong URL", target: "USD",
			handler: answer(http.StatusNotFound, `{"message":"not found"}`),
			wantURL: "/v1/latest?base=EUR", wantErr: ratesclient.ErrRejected,
		},
		{
			name: "a path it does not serve", target: "USD",
			handler: answer(http.StatusNotFound, `{"status":404,"message":"not found"}`),
			wantURL: "/v1/latest?base=EUR", wantErr: ratesclient.ErrRejected,
		},
		{
			name: "a broken provider", target: "USD",
			handler: answer(http.StatusOK, `<html>`),
			wantURL: "/v1/latest?base=EUR", wantErr: ratesclient.ErrBadAnswer,
		},
		{
			name: "exchangerate-api quotes the target", provider: ratesclient.ProviderExchangeRateAPI, target: "USD",
			handler: answer(http.StatusOK, `{"base":"EUR","date":"2024-09-20","rates":{"EUR":1,"USD":1.1166}}`),
			wantURL: "/v1/latest/EUR",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeProvider(t, tt.handler)
			c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Provider: tt.provider})
			err := c.Check(context.Background(), tt.target)
			if tt.wantErr == nil && err != nil {
				t.Fatalf("Check: %v", err)
			}
			if tt.wantErr != nil {
				assertErr(t, err, tt.wantErr, tt.wantMsg)
			}
			if diff := cmp.Diff([]string{tt.wantURL}, fake.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ratesclient.Config
		wantErr string
	}{
		{name: "defaults", cfg: ratesclient.Config{BaseURL: "http://127.0.0.1:8090/v1"}},
		{name: "exchangerate-api", cfg: ratesclient.Config{BaseURL: "https://api.exchangerate-api.com/v4", Provider: "exchangerate-api"}},
		{name: "no base URL", cfg: ratesclient.Config{}, wantErr: "BaseURL is required"},
		{name: "relative base URL", cfg: ratesclient.Config{BaseURL: "/v1"}, wantErr: "absolute http(s) URL"},
		{name: "ftp base URL", cfg: ratesclient.Config{BaseURL: "ftp://example.com/v1"}, wantErr: "absolute http(s) URL"},
		{name: "base URL with query", cfg: ratesclient.Config{BaseURL: "http://h/v1?x=1"}, wantErr: "query"},
		{name: "unknown provider", cfg: ratesclient.Config{BaseURL: "http://h/v1", Provider: "ecb"}, wantErr: "unknown Provider"},
		{name: "negative timeout", cfg: ratesclient.Config{BaseURL: "http://h/v1", Timeout: -1}, wantErr: "negative"},
		{name: "negative cache", cfg: ratesclient.Config{BaseURL: "http://h/v1", CacheSize: -1}, wantErr: "negative"},
		{name: "negative provisional TTL", cfg: ratesclient.Config{BaseURL: "http://h/v1", ProvisionalTTL: -1}, wantErr: "negative"},
		{name: "too many retries", cfg: ratesclient.Config{BaseURL: "http://h/v1", Retries: 100}, wantErr: "Retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ratesclient.New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewDoesNotModifyCallerHTTPClient(t *testing.T) {
	hc := &http.Client{}
	if _, err := ratesclient.New(ratesclient.Config{BaseURL: "http://h/v1", HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.Transport != nil || hc.Timeout != 0 {
		t.Errorf("caller's http.Client was modified: %+v", hc)
	}
}

func TestQuotesUsesCallerHTTPClient(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1}}`))
	rt := &countingTransport{next: http.DefaultTransport}
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", HTTPClient: &http.Client{Transport: rt}})
	if _, err := c.Quotes(context.Background(), day("2024-09-10"), "USD"); err != nil {
		t.Fatal(err)
	}
	if got := rt.n.Load(); got != 1 {
		t.Errorf("transport round trips = %d, want 1", got)
	}
}

func BenchmarkQuotesCached(b *testing.B) {
	srv := httptest.NewServer(answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`))
	b.Cleanup(srv.Close)
	c, err := ratesclient.New(ratesclient.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	date := day("2024-09-10")
	if _, err := c.Quotes(ctx, date, "USD"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Quotes(ctx, date, "USD"); err != nil {
			b.Fatal(err)
		}
	}
}

// recordingObserver records what the client reports. When allMissed is set,
// it is closed once wantMisses cache misses were seen.
type recordingObserver struct {
	mu         sync.Mutex
	callErrs   []error
	hitLog     []bool
	misses     int
	wantMisses int
	allMissed  chan struct{}
}

func (o *recordingObserver) ObserveCall(_ string, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.callErrs = append(o.callErrs, err)
}

func (o *recordingObserver) ObserveCacheHit(hit bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hitLog = append(o.hitLog, hit)
	if !hit {
		o.misses++
		if o.allMissed != nil && o.misses == o.wantMisses {
			close(o.allMissed)
		}
	}
}

func (o *recordingObserver) callCount() int { return len(o.errs()) }

func (o *recordingObserver) errs() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]error(nil), o.callErrs...)
}

func (o *recordingObserver) hits() []bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]bool(nil), o.hitLog...)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}
