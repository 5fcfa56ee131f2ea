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
// is in the past and "latest" is 2024-09-20.
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

// rateCmp compares decimals by value and exact text.
var rateCmp = cmp.Comparer(func(a, b decimal.Decimal) bool {
	return a.Equal(b) && a.String() == b.String()
})

func TestRateParsesAnswers(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		from, to string
		date     time.Time
		body     string
		wantURL  string
		want     ratesclient.Rate
	}{
		{
			name:     "frankfurter keeps every digit",
			provider: ratesclient.ProviderFrankfurter,
			from:     "USD", to: "EUR", date: day("2024-09-10"),
			body:    `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.904981234567890123}}`,
			wantURL: "/v1/2024-09-10?base=USD&symbols=EUR",
			want:    ratesclient.Rate{From: "USD", To: "EUR", Date: day("2024-09-10"), Value: decimal.RequireFromString("0.904981234567890123")},
		},
		{
			name:     "frankfurter weekend answers friday",
			provider: "", // default provider
			from:     "usd", to: "jpy", date: time.Date(2024, 9, 14, 23, 30, 0, 0, time.UTC),
			body:    `{"amount":1.0,"base":"USD","date":"2024-09-13","rates":{"JPY":140.93313}}`,
			wantURL: "/v1/2024-09-14?base=USD&symbols=JPY",
			want:    ratesclient.Rate{From: "USD", To: "JPY", Date: day("2024-09-13"), Value: decimal.RequireFromString("140.93313")},
		},
		{
			name:     "frankfurter calendar day is taken in UTC",
			provider: ratesclient.ProviderFrankfurter,
			from:     "GBP", to: "EUR", date: time.Date(2024, 9, 11, 1, 0, 0, 0, time.FixedZone("UTC+3", 3*3600)),
			body:    `{"amount":1,"base":"GBP","date":"2024-09-10","rates":{"EUR":1.1867}}`,
			wantURL: "/v1/2024-09-10?base=GBP&symbols=EUR",
			want:    ratesclient.Rate{From: "GBP", To: "EUR", Date: day("2024-09-10"), Value: decimal.RequireFromString("1.1867")},
		},
		{
			name:     "frankfurter today asks latest",
			provider: ratesclient.ProviderFrankfurter,
			from:     "USD", to: "EUR", date: fixedNow.Add(time.Hour),
			body:    `{"amount":1.0,"base":"USD","date":"2024-09-20","rates":{"EUR":0.89558}}`,
			wantURL: "/v1/latest?base=USD&symbols=EUR",
			want:    ratesclient.Rate{From: "USD", To: "EUR", Date: day("2024-09-20"), Value: decimal.RequireFromString("0.89558")},
		},
		{
			name:     "frankfurter future asks latest",
			provider: ratesclient.ProviderFrankfurter,
			from:     "USD", to: "EUR", date: day("2030-01-01"),
			body:    `{"amount":1.0,"base":"USD","date":"2024-09-20","rates":{"EUR":0.89558}}`,
			wantURL: "/v1/latest?base=USD&symbols=EUR",
			want:    ratesclient.Rate{From: "USD", To: "EUR", Date: day("2024-09-20"), Value: decimal.RequireFromString("0.89558")},
		},
		{
			name:     "exchangerate-api keeps every digit and its date",
			provider: ratesclient.ProviderExchangeRateAPI,
			from:     "USD", to: "EUR", date: day("2024-09-02"),
			body:    `{"base":"USD","date":"2024-09-11","time_last_updated":1726012801,"rates":{"USD":1,"EUR":0.904981234567890123,"JPY":142.5}}`,
			wantURL: "/v4/latest/USD",
			want:    ratesclient.Rate{From: "USD", To: "EUR", Date: day("2024-09-11"), Value: decimal.RequireFromString("0.904981234567890123")},
		},
		{
			name:     "exchangerate-api exponent notation",
			provider: ratesclient.ProviderExchangeRateAPI,
			from:     "IDR", to: "EUR", date: day("2024-09-11"),
			body:    `{"base":"IDR","date":"2024-09-11","time_last_updated":1726012801,"rates":{"EUR":5.87e-5}}`,
			wantURL: "/v4/latest/IDR",
			want:    ratesclient.Rate{From: "IDR", To: "EUR", Date: day("2024-09-11"), Value: decimal.RequireFromString("0.0000587")},
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

			got, err := c.Rate(context.Background(), tt.from, tt.to, tt.date)
			if err != nil {
				t.Fatalf("Rate: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, rateCmp); diff != "" {
				t.Errorf("Rate (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tt.wantURL}, fake.requests()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRateErrors(t *testing.T) {
	hang := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	tests := []struct {
		name      string
		provider  string
		handler   http.HandlerFunc
		date      time.Time
		wantErr   error
		wantCalls int64 // with Retries 2
		wantMsg   string
	}{
		{
			name:      "404 is not found, not retried",
			handler:   answer(http.StatusNotFound, `{"message":"not found"}`),
			wantErr:   ratesclient.ErrNotFound,
			wantCalls: 1,
			wantMsg:   "rate USD->EUR for 2024-09-10: frankfurter answered 404 Not Found",
		},
		{
			name:      "422 is not found",
			handler:   answer(http.StatusUnprocessableEntity, `{"message":"invalid"}`),
			wantErr:   ratesclient.ErrNotFound,
			wantCalls: 1,
		},
		{
			name:      "500 is unavailable after retries",
			handler:   answer(http.StatusInternalServerError, `oops`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
			wantMsg:   "after 3 attempts: rate USD->EUR for 2024-09-10: frankfurter answered 500",
		},
		{
			name:      "429 is unavailable after retries",
			handler:   answer(http.StatusTooManyRequests, `slow down`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
		},
		{
			name:      "timeout is unavailable after retries",
			handler:   hang,
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
			wantMsg:   "context deadline exceeded",
		},
		{
			name:      "malformed json is unavailable",
			handler:   answer(http.StatusOK, `{"amount":1.0,"base":"USD","rates":{"EUR":0.9`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
			wantMsg:   "malformed answer",
		},
		{
			name:      "html instead of json is unavailable",
			handler:   answer(http.StatusOK, `<html>maintenance</html>`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
		},
		{
			name:      "missing target is not found",
			handler:   answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"JPY":140.1}}`),
			wantErr:   ratesclient.ErrNotFound,
			wantCalls: 1,
			wantMsg:   `rate USD->EUR for 2024-09-10: provider does not know currency "EUR": not found`,
		},
		{
			name:      "zero rate is never used",
			handler:   answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0}}`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
			wantMsg:   "non-positive rate",
		},
		{
			name:      "negative rate is never used",
			handler:   answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":-0.9}}`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
		},
		{
			name:      "null rate is never used",
			handler:   answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":null}}`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
		},
		{
			name:      "wrong base is unavailable",
			handler:   answer(http.StatusOK, `{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"EUR":1}}`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
		},
		{
			name:      "amount other than one is unavailable",
			handler:   answer(http.StatusOK, `{"amount":10,"base":"USD","date":"2024-09-10","rates":{"EUR":9.05}}`),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
		},
		{
			name:      "answer dated after the day asked is not found",
			handler:   answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"1999-01-04","rates":{"EUR":0.85}}`),
			date:      day("1990-01-01"),
			wantErr:   ratesclient.ErrNotFound,
			wantCalls: 1,
		},
		{
			name:      "exchangerate-api missing EUR is not found, never 1.0",
			provider:  ratesclient.ProviderExchangeRateAPI,
			handler:   answer(http.StatusOK, `{"base":"USD","date":"2024-09-11","time_last_updated":1726012801,"rates":{"USD":1,"JPY":142.5}}`),
			wantErr:   ratesclient.ErrNotFound,
			wantCalls: 1,
			wantMsg:   `provider does not know currency "EUR": not found`,
		},
		{
			name:      "exchangerate-api 404 is not found",
			provider:  ratesclient.ProviderExchangeRateAPI,
			handler:   answer(http.StatusNotFound, `{"result":"error","error-type":"unsupported-code"}`),
			wantErr:   ratesclient.ErrNotFound,
			wantCalls: 1,
		},
		{
			name:      "exchangerate-api 503 is unavailable",
			provider:  ratesclient.ProviderExchangeRateAPI,
			handler:   answer(http.StatusServiceUnavailable, ``),
			wantErr:   ratesclient.ErrUnavailable,
			wantCalls: 3,
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

			_, err := c.Rate(context.Background(), "USD", "EUR", date)
			assertErr(t, err, tt.wantErr, tt.wantMsg)
			if got := fake.calls.Load(); got != tt.wantCalls {
				t.Errorf("server calls = %d, want %d", got, tt.wantCalls)
			}
			if got := obs.callCount(); got != int(tt.wantCalls) {
				t.Errorf("observed calls = %d, want %d", got, tt.wantCalls)
			}
			// A failure is not cached: the next ask reaches the server again.
			_, _ = c.Rate(context.Background(), "USD", "EUR", date)
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

func TestRateConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	obs := &recordingObserver{}
	c := newClient(t, ratesclient.Config{BaseURL: "http://" + addr + "/v1", Observer: obs})

	_, err = c.Rate(context.Background(), "USD", "EUR", day("2024-09-10"))
	assertErr(t, err, ratesclient.ErrUnavailable, "after 3 attempts")
	if got := obs.callCount(); got != 3 {
		t.Errorf("observed calls = %d, want 3", got)
	}
	for _, e := range obs.errs() {
		if e == nil {
			t.Errorf("observed a call without error")
		}
	}
}

func TestRateRetriesThenSucceeds(t *testing.T) {
	var n atomic.Int64
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			answer(http.StatusBadGateway, "")(w, r)
			return
		}
		answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9065}}`)(w, r)
	})
	obs := &recordingObserver{}
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Observer: obs})

	got, err := c.Rate(context.Background(), "USD", "EUR", day("2024-09-10"))
	if err != nil {
		t.Fatalf("Rate: %v", err)
	}
	if want := decimal.RequireFromString("0.9065"); !got.Value.Equal(want) {
		t.Errorf("Value = %s, want %s", got.Value, want)
	}
	if got := fake.calls.Load(); got != 2 {
		t.Errorf("server calls = %d, want 2", got)
	}
	errs := obs.errs()
	if len(errs) != 2 || !errors.Is(errs[0], ratesclient.ErrUnavailable) || errs[1] != nil {
		t.Errorf("observed call errors = %v, want [unavailable, nil]", errs)
	}
}

func TestRateNoRetriesWhenDisabled(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusInternalServerError, ""))
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Retries: -1})

	_, err := c.Rate(context.Background(), "USD", "EUR", day("2024-09-10"))
	assertErr(t, err, ratesclient.ErrUnavailable, "500")
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("server calls = %d, want 1", got)
	}
}

func TestRateCachesPastDates(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9065}}`))
	obs := &recordingObserver{}
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Observer: obs})

	first, err := c.Rate(context.Background(), "USD", "EUR", day("2024-09-10"))
	if err != nil {
		t.Fatalf("first Rate: %v", err)
	}
	second, err := c.Rate(context.Background(), "usd", "eur", time.Date(2024, 9, 10, 18, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatalf("second Rate: %v", err)
	}
	if diff := cmp.Diff(first, second, rateCmp); diff != "" {
		t.Errorf("cached rate differs (-first +second):\n%s", diff)
	}
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("server calls = %d, want 1", got)
	}
	if diff := cmp.Diff([]bool{false, true}, obs.hits()); diff != "" {
		t.Errorf("cache hits (-want +got):\n%s", diff)
	}
}

func TestRateLatestExpires(t *testing.T) {
	tests := []struct {
		name     string
		provider string
		body     string
		date     time.Time
	}{
		{
			name: "frankfurter latest",
			body: `{"amount":1.0,"base":"USD","date":"2024-09-20","rates":{"EUR":0.89558}}`,
			date: fixedNow,
		},
		{
			name:     "exchangerate-api for a past date",
			provider: ratesclient.ProviderExchangeRateAPI,
			body:     `{"base":"USD","date":"2024-09-20","time_last_updated":1726012801,"rates":{"EUR":0.89558}}`,
			date:     day("2024-01-02"),
		},
		{
			name: "frankfurter recent day answered with an earlier date",
			body: `{"amount":1.0,"base":"USD","date":"2024-09-13","rates":{"EUR":0.9024}}`,
			date: day("2024-09-19"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeProvider(t, answer(http.StatusOK, tt.body))
			var clock clock
			clock.set(fixedNow)
			c := newClient(t, ratesclient.Config{
				BaseURL:   fake.srv.URL + "/v1",
				Provider:  tt.provider,
				LatestTTL: time.Minute,
				Now:       clock.now,
			})
			ask := func(wantCalls int64) {
				t.Helper()
				if _, err := c.Rate(context.Background(), "USD", "EUR", tt.date); err != nil {
					t.Fatalf("Rate: %v", err)
				}
				if got := fake.calls.Load(); got != wantCalls {
					t.Errorf("server calls = %d, want %d", got, wantCalls)
				}
			}
			ask(1)
			clock.set(fixedNow.Add(59 * time.Second))
			ask(1)
			clock.set(fixedNow.Add(61 * time.Second))
			ask(2)
		})
	}
}

func TestRateCoalescesConcurrentAsks(t *testing.T) {
	const n = 10
	obs := &recordingObserver{allMissed: make(chan struct{}), wantMisses: n}
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		// Answer only when every goroutine has missed the cache and is
		// waiting, so that without coalescing each would call the server.
		select {
		case <-obs.allMissed:
		case <-time.After(5 * time.Second):
		}
		answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9065}}`)(w, r)
	})
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Observer: obs})

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			r, err := c.Rate(context.Background(), "USD", "EUR", day("2024-09-10"))
			if err == nil && r.Value.String() != "0.9065" {
				err = fmt.Errorf("value %s", r.Value)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Rate: %v", err)
		}
	}
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("server calls = %d, want 1", got)
	}
}

func TestRateHonoursCallerContext(t *testing.T) {
	release := make(chan struct{})
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9065}}`)(w, r)
	})
	t.Cleanup(func() { close(release) })
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", Timeout: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Rate(ctx, "USD", "EUR", day("2024-09-10"))
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
		t.Fatal("Rate did not return after its context was cancelled")
	}
}

func TestRateCacheBound(t *testing.T) {
	fake := newFakeProvider(t, func(w http.ResponseWriter, r *http.Request) {
		d := strings.TrimPrefix(r.URL.Path, "/v1/")
		answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"`+d+`","rates":{"EUR":0.9}}`)(w, r)
	})
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", CacheSize: 2})
	ask := func(date string, wantCalls int64) {
		t.Helper()
		if _, err := c.Rate(context.Background(), "USD", "EUR", day(date)); err != nil {
			t.Fatalf("Rate %s: %v", date, err)
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

func TestRateWithoutProvider(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusInternalServerError, ""))
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1"})

	got, err := c.Rate(context.Background(), "eur", "EUR", day("2024-09-14"))
	if err != nil {
		t.Fatalf("same currency: %v", err)
	}
	want := ratesclient.Rate{From: "EUR", To: "EUR", Date: day("2024-09-14"), Value: decimal.NewFromInt(1)}
	if diff := cmp.Diff(want, got, rateCmp); diff != "" {
		t.Errorf("same currency (-want +got):\n%s", diff)
	}

	for _, code := range []string{"", "US", "USDX", "U$D", "ÜSD"} {
		_, err := c.Rate(context.Background(), code, "EUR", day("2024-09-10"))
		assertErr(t, err, ratesclient.ErrNotFound, "invalid currency code")
	}
	if got := fake.calls.Load(); got != 0 {
		t.Errorf("server calls = %d, want 0", got)
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

func TestRateUsesCallerHTTPClient(t *testing.T) {
	fake := newFakeProvider(t, answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9}}`))
	rt := &countingTransport{next: http.DefaultTransport}
	c := newClient(t, ratesclient.Config{BaseURL: fake.srv.URL + "/v1", HTTPClient: &http.Client{Transport: rt}})
	if _, err := c.Rate(context.Background(), "USD", "EUR", day("2024-09-10")); err != nil {
		t.Fatal(err)
	}
	if got := rt.n.Load(); got != 1 {
		t.Errorf("transport round trips = %d, want 1", got)
	}
}

func BenchmarkRateCached(b *testing.B) {
	srv := httptest.NewServer(answer(http.StatusOK, `{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9065}}`))
	b.Cleanup(srv.Close)
	c, err := ratesclient.New(ratesclient.Config{BaseURL: srv.URL + "/v1"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	date := day("2024-09-10")
	if _, err := c.Rate(ctx, "USD", "EUR", date); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Rate(ctx, "USD", "EUR", date); err != nil {
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
