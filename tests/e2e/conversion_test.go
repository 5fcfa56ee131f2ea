package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	"github.com/txpersister/txpersister/libs/txmodel"
)

// recompute is what a client can do with a processed transaction's
// provenance: amount × q(target) ÷ q(currency), one half-even rounding.
func recompute(t *testing.T, res map[string]any) string {
	t.Helper()
	quotes, _ := res["rate_quotes"].(map[string]any)
	base, _ := res["rate_quote_base"].(string)
	q := func(code string) txmodel.Decimal {
		if code == base {
			return mustDecimal(t, "1")
		}
		s, ok := quotes[code].(string)
		if !ok {
			t.Fatalf("no quote of %s in %v", code, res)
		}
		return mustDecimal(t, s)
	}
	cur, target := res["currency"].(string), res["target_currency"].(string)
	amount := txmodel.Money{Amount: mustDecimal(t, res["amount"].(string)), Currency: txmodel.MustCurrency(cur)}
	return txmodel.ConvertQuoted(amount, q(cur), q(target), txmodel.MustCurrency(target)).String()
}

func mustDecimal(t *testing.T, s string) txmodel.Decimal {
	t.Helper()
	d, err := txmodel.ParseDecimal(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return d
}

// TestConversionShowsItsProvenance: a processed transaction says which
// provider, rule, day and quotes converted it, and its amount can be
// recomputed from them; the largest amount the API accepts is exact to the
// cent (through the provider's rounded 1/q it was off by 416.55 EUR).
func TestConversionShowsItsProvenance(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	for _, b := range []string{
		body("prov-usd", `"999999999999999.99"`, "USD", "2024-09-11T10:00:00Z"),
		body("prov-jpy", `12345`, "JPY", "2024-09-14T10:00:00Z"),
		body("prov-eur", `10`, "EUR", "2024-09-11T10:00:00Z"),
	} {
		if code, res := s.post("/v1/transactions", b); code != http.StatusCreated {
			t.Fatalf("POST: %d %v", code, res)
		}
	}
	usd := s.waitStatus("prov-usd", 30*time.Second, "processed", "failed")
	if usd["converted_amount"] != "905551027800416.54" || usd["rate_provider"] != "frankfurter" || usd["rate_rule"] != "day" ||
		usd["rate_quote_base"] != "EUR" || fmt.Sprint(usd["rate_quotes"]) != "map[USD:1.1043]" || usd["rate_date"] != "2024-09-11" {
		t.Errorf("USD: %v", usd)
	}
	jpy := s.waitStatus("prov-jpy", 30*time.Second, "processed", "failed")
	if jpy["rate_date"] != "2024-09-13" || fmt.Sprint(jpy["rate_quotes"]) != "map[JPY:156.17]" {
		t.Errorf("JPY on a Saturday: %v, want Friday's quote", jpy)
	}
	for _, res := range []map[string]any{usd, jpy} {
		if got := recompute(t, res); got != res["converted_amount"] {
			t.Errorf("%s recomputed from its provenance: %s, stored %s", res["transaction_id"], got, res["converted_amount"])
		}
	}
	eur := s.waitStatus("prov-eur", 30*time.Second, "processed", "failed")
	if eur["converted_amount"] != "10.00" || eur["exchange_rate"] != "1" || eur["rate_provider"] != nil || eur["rate_quotes"] != nil || eur["rate_rule"] != "day" {
		t.Errorf("EUR to EUR: %v, want rate 1, no provider", eur)
	}
}

// TestRateRuleAsOf: with RATE_RULE=as-of, a transaction before 16:00 in
// Frankfurt takes the day before's rate, one after it that day's; to
// another TARGET_CURRENCY, from both quotes.
func TestRateRuleAsOf(t *testing.T) {
	t.Parallel()
	s := start(t, options{converterEnv: []string{"RATE_RULE=as-of", "TARGET_CURRENCY=USD"}})
	for _, b := range []string{
		body("asof-before", `1000`, "JPY", "2024-09-11T13:59:00Z"), // 15:59 in Frankfurt
		body("asof-after", `1000`, "JPY", "2024-09-11T14:00:00Z"),
	} {
		if code, res := s.post("/v1/transactions", b); code != http.StatusCreated {
			t.Fatalf("POST: %d %v", code, res)
		}
	}
	for id, want := range map[string]struct{ date, quotes, amount string }{
		// 1000 × 1.1031 ÷ 157.81 and 1000 × 1.1043 ÷ 156.6 (Python's decimal, half-even).
		"asof-before": {"2024-09-10", "map[JPY:157.81 USD:1.1031]", "6.99"},
		"asof-after":  {"2024-09-11", "map[JPY:156.6 USD:1.1043]", "7.05"},
	} {
		res := s.waitStatus(id, 30*time.Second, "processed", "failed")
		if res["rate_rule"] != "as-of" || res["rate_date"] != want.date || fmt.Sprint(res["rate_quotes"]) != want.quotes ||
			res["target_currency"] != "USD" || res["converted_amount"] != want.amount || recompute(t, res) != want.amount {
			t.Errorf("%s: %v, want %s USD at the quotes of %s %s", id, res, want.amount, want.date, want.quotes)
		}
	}
}

// TestStaleRatesAreRefused: ratesd's built-in table ends on 2024-09-20; a
// transaction of today fails at once, naming the day it asked for and the
// provider's latest, instead of being converted at 2024's rates.
func TestStaleRatesAreRefused(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	now := time.Now().UTC()
	if code, res := s.post("/v1/transactions", body("stale", `100`, "USD", now.Format(time.RFC3339))); code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, res)
	}
	res := s.waitStatus("stale", 30*time.Second, "processed", "failed")
	reason := fmt.Sprint(res["failure_reason"])
	if res["status"] != "failed" || !strings.Contains(reason, "no exchange rate for "+now.Format(time.DateOnly)) ||
		!strings.Contains(reason, "is of 2024-09-20") {
		t.Errorf("today at the built-in table: %v, want failed naming %s and 2024-09-20", res, now.Format(time.DateOnly))
	}
	if got := metric(t, s.convAdmin, "txpersister_rate_age_seconds_sum"); got < 365*24*3600 {
		t.Errorf("the rate's age counted as %v s, want more than a year", got)
	}
}

// ecbFile serves an ECB history file that the test can extend, as the ECB
// does once a day.
type ecbFile struct {
	mu   sync.Mutex
	rows []string // "2024-09-11,1.1043," newest first
}

func (f *ecbFile) add(row string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = append([]string{row}, f.rows...)
}

func (f *ecbFile) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprint(w, "Date,USD,JPY,\n"+strings.Join(f.rows, "\n")+"\n")
}

// TestTodaysTransactionWaitsForTheDaysRate: a transaction of today, while
// the provider has only yesterday's rate and today is not over in its
// calendar, waits (received, counted, logged) without using up its retries;
// once the day's rate is published it is converted at it.
//
// The provider's calendar is UTC-12 here (RATES_PUBLISHED_AT), where
// today's UTC day ends twelve hours after it does in UTC: so the day is
// never over while the test runs, at whatever hour it runs.
func TestTodaysTransactionWaitsForTheDaysRate(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	today := now.Format(time.DateOnly)
	file := &ecbFile{}
	file.add(now.AddDate(0, 0, -2).Format(time.DateOnly) + ",1.1000,150.00,")
	file.add(now.AddDate(0, 0, -1).Format(time.DateOnly) + ",1.1100,151.00,")
	src := httptest.NewServer(file)
	t.Cleanup(src.Close)

	s := start(t, options{
		ratesdEnv: []string{"ECB_SOURCE=" + src.URL + "/eurofxref-hist.csv", "ECB_REFRESH=200ms"},
		// One retry only: a wait must not use it up.
		retryDelays:  "200ms",
		converterEnv: []string{"RATES_PUBLISHED_AT=16:00 Etc/GMT+12", "RATES_PENDING_RETRY=1s"},
	})
	if code, res := s.post("/v1/transactions", body("today", `100`, "USD", now.Format(time.RFC3339))); code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, res)
	}
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, s.convAdmin, "txpersister_messages_waiting_total") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the transaction was not parked three times within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, res := s.get("/v1/transactions/today"); code != http.StatusOK || res["status"] != "received" {
		t.Errorf("while the day's rate is not published: %d %v, want received", code, res)
	}
	if got := metric(t, s.convAdmin, "txpersister_transactions_waiting"); got != 1 {
		t.Errorf("transactions waiting = %v, want 1", got)
	}
	if got := metric(t, s.convAdmin, "txpersister_messages_retried_total"); got != 0 {
		t.Errorf("waiting used up %v retries", got)
	}
	logs, _ := os.ReadFile(s.logs["converter"])
	if !strings.Contains(string(logs), `"msg":"transaction waits for the day's rate"`) || !strings.Contains(string(logs), `"rate_day":"`+today+`"`) {
		t.Errorf("no log line says the transaction waits for %s's rate", today)
	}

	file.add(today + ",1.1234,152.00,")
	res := s.waitStatus("today", 30*time.Second, "processed", "failed")
	if res["status"] != "processed" || res["rate_date"] != today || fmt.Sprint(res["rate_quotes"]) != "map[USD:1.1234]" || res["converted_amount"] != "89.02" {
		t.Errorf("after the day's rate: %v, want 100 ÷ 1.1234 = 89.02 at %s's rate", res, today)
	}
}

// TestHostileProvider: a provider that answers nonsense with status 200, or
// a 404 whose body no database would store, is an outage: each transaction
// is retried, then failed with a reason that can be stored and read, and
// the converter keeps running.
func TestHostileProvider(t *testing.T) {
	t.Parallel()
	// By the currency asked for: the answer of a provider gone wrong.
	answers := map[string]struct {
		status int
		body   string
	}{
		"USD": {200, `{"amount":1.0,"base":"EUR","date":"2024-09-11","rates":{"USD":0}}`},
		"JPY": {200, `{"amount":1.0,"base":"EUR","date":"2024-09-11","rates":{"JPY":-156.6}}`},
		"GBP": {200, `{"amount":1.0,"base":"EUR","date":"2024-09-11","rates":{"GBP":1e-2147483647}}`},
		"CHF": {200, `<html><body>Welcome to nginx!</body></html>`},
		"CAD": {200, `{"amount":1.0,"base":"USD","date":"2024-09-11","rates":{"CAD":1.35}}`},
		"SEK": {404, "bad\x00\xff body"},
	}
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/latest" { // the readiness check
			fmt.Fprint(w, `{"amount":1.0,"base":"EUR","date":"2024-09-20","rates":{"USD":1.1166}}`)
			return
		}
		a, ok := answers[r.URL.Query().Get("symbols")]
		if !ok {
			http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
			return
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(provider.Close)
	s := start(t, options{ratesURL: provider.URL + "/v1", retryDelays: "100ms,200ms"})
	for code := range answers {
		if c, res := s.post("/v1/transactions", body("hostile-"+code, `100`, code, "2024-09-11T10:00:00Z")); c != http.StatusCreated {
			t.Fatalf("POST %s: %d %v", code, c, res)
		}
	}
	for code := range answers {
		res := s.waitStatus("hostile-"+code, 60*time.Second, "processed", "failed")
		reason := fmt.Sprint(res["failure_reason"])
		if res["status"] != "failed" || !strings.HasPrefix(reason, "rates provider unavailable after 3 attempts") || strings.ContainsRune(reason, 0) {
			t.Errorf("%s: %v, want failed after 3 attempts, with a reason", code, res)
		}
	}
	if got := metric(t, s.convAdmin, `txpersister_rates_requests_total{provider="frankfurter",outcome="bad_answer"}`); got < 5*3 {
		t.Errorf("bad answers counted: %v, want at least 15", got)
	}
	if got := metric(t, s.convAdmin, `txpersister_rates_requests_total{provider="frankfurter",outcome="rejected"}`); got < 3 {
		t.Errorf("rejected answers counted: %v, want at least 3", got)
	}
	if resp, err := http.Get(s.convAdmin + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("converter not ready after the hostile answers: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestMisconfiguredProviderIsAnOutage: RATES_API_URL without its /v1 is not
// a verdict that the currency has no rate: the converter says it is not
// ready, naming the provider, counts rejected calls, and retries the
// transaction until its retries run out.
func TestMisconfiguredProviderIsAnOutage(t *testing.T) {
	t.Parallel()
	s := start(t, options{ratesURL: "{ratesd}", retryDelays: "100ms,200ms", converterUnready: true})
	resp, err := http.Get(s.convAdmin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "rates provider") {
		t.Errorf("/readyz: %d %s, want 503 naming the rates provider", resp.StatusCode, b)
	}
	if code, res := s.post("/v1/transactions", body("misconfigured", `100`, "USD", "2024-09-11T10:00:00Z")); code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, res)
	}
	res := s.waitStatus("misconfigured", 60*time.Second, "processed", "failed")
	if reason := fmt.Sprint(res["failure_reason"]); res["status"] != "failed" || !strings.HasPrefix(reason, "rates provider unavailable after 3 attempts") ||
		!strings.Contains(reason, "request rejected") {
		t.Errorf("%v, want failed as an outage after 3 attempts", res)
	}
	if got := metric(t, s.convAdmin, `txpersister_rates_requests_total{provider="frankfurter",outcome="rejected"}`); got < 3 {
		t.Errorf("rejected calls counted: %v, want at least 3", got)
	}
	if got := metric(t, s.convAdmin, `txpersister_rates_requests_total{provider="frankfurter",outcome="not_found"}`); got != 0 {
		t.Errorf("a wrong URL counted as %v not-found answers", got)
	}
}

// TestExchangeRateAPIProvider: with RATES_PROVIDER=exchangerate-api (served
// by ratesd's /v4), which knows only the latest rates, every day gets the
// latest quotes, and says so in rate_date and rate_provider.
func TestExchangeRateAPIProvider(t *testing.T) {
	t.Parallel()
	s := start(t, options{ratesURL: "{ratesd}/v4", converterEnv: []string{"RATES_PROVIDER=exchangerate-api"}})
	if code, res := s.post("/v1/transactions", body("erapi", `100`, "USD", "2024-09-11T10:00:00Z")); code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, res)
	}
	res := s.waitStatus("erapi", 30*time.Second, "processed", "failed")
	// ratesd's latest day is 2024-09-20: 100 ÷ 1.1166.
	if res["status"] != "processed" || res["rate_provider"] != "exchangerate-api" || res["rate_date"] != "2024-09-20" ||
		res["converted_amount"] != "89.56" || recompute(t, res) != "89.56" {
		t.Errorf("%v, want 89.56 EUR at 2024-09-20's quote from exchangerate-api", res)
	}
}

// TestUnquotedTargetStopsTheConverter: a TARGET_CURRENCY the provider does
// not quote stops the converter at start, saying so.
func TestUnquotedTargetStopsTheConverter(t *testing.T) {
	t.Parallel()
	build(t)
	ratesAddr := freeAddr(t)
	rd := exec.Command(binaries.ratesd)
	rd.Env = append(os.Environ(), "RATESD_ADDR="+ratesAddr, "LOG_FORMAT=json")
	startProcess(t, "ratesd", rd, true).waitReady(t, "http://"+ratesAddr+"/healthz", 60*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conv := exec.CommandContext(ctx, binaries.converter)
	conv.Env = append(os.Environ(), "DATABASE_URL="+pgtest.NewDatabase(t), "AMQP_URL="+amqptest.NewVhost(t), "ADMIN_ADDR="+freeAddr(t),
		"RATES_API_URL=http://"+ratesAddr+"/v1", "TARGET_CURRENCY=XOF", "OTEL_SDK_DISABLED=true", "LOG_FORMAT=json")
	out, err := conv.CombinedOutput()
	want := "TARGET_CURRENCY XOF: the rates provider (frankfurter at http://" + ratesAddr + "/v1) does not quote it"
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), want) {
		t.Errorf("converter with an unquoted target: %v\n%s\nwant it to stop saying %q", err, tail(out, 10), want)
	}
}

// TestLongIDsReachTheConverter: a transaction_id of 128 characters of four
// bytes each (512 bytes) is valid, but longer than an AMQP message-id can
// be (a short string, 255 bytes): accepted, it must be converted all the
// same, and the transactions behind it too.
func TestLongIDsReachTheConverter(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	long := strings.Repeat("😀", txmodel.MaxIDLength)
	for _, id := range []string{long, "after-the-long-one"} {
		if code, res := s.post("/v1/transactions", body(id, `100`, "USD", "2024-09-11T10:00:00Z")); code != http.StatusCreated {
			t.Fatalf("POST %.20q: %d %v", id, code, res)
		}
	}
	for _, id := range []string{long, "after-the-long-one"} {
		if res := s.waitStatus(url.PathEscape(id), 30*time.Second, "processed", "failed"); res["converted_amount"] != "90.56" {
			t.Errorf("%.20q: %v, want processed to 90.56", id, res)
		}
	}
}
