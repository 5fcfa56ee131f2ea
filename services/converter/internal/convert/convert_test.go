package convert

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/raterule"
	"github.com/txpersister/txpersister/services/converter/internal/store"
)

// fakeRates answers from a table of quotes per EUR by code, dated date (the
// day asked when zero), final unless provisional; err, when set, is the
// answer to everything. It records the days asked.
type fakeRates struct {
	mu          sync.Mutex
	table       map[string]string
	date        time.Time
	provisional bool
	err         error
	asked       []time.Time
}

func (f *fakeRates) Quotes(_ context.Context, day time.Time, codes ...string) (ratesclient.Quotes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, day)
	if f.err != nil {
		return ratesclient.Quotes{}, f.err
	}
	q := ratesclient.Quotes{Provider: "fake", Asked: day, Date: day, Rates: map[string]ratesclient.Quote{}, Final: !f.provisional}
	if !f.date.IsZero() {
		q.Date = f.date
	}
	for _, code := range codes {
		if code == ratesclient.Base {
			continue
		}
		text, ok := f.table[code]
		if !ok {
			return ratesclient.Quotes{}, fmt.Errorf("fake has no quote of %s: %w", code, ratesclient.ErrNotFound)
		}
		v, err := txmodel.ParseDecimal(text)
		if err != nil {
			panic(err)
		}
		q.Rates[code] = ratesclient.Quote{Value: v, Text: text}
	}
	return q, nil
}

func (f *fakeRates) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.asked)
}

// fakeStore records outcomes in memory; down makes the first n saves fail as
// if PostgreSQL were away; refuse refuses the outcomes it says yes to.
type fakeStore struct {
	mu     sync.Mutex
	saved  map[string]txmodel.Conversion
	down   int
	refuse func(txmodel.Conversion) bool
}

func newFakeStore() *fakeStore { return &fakeStore{saved: map[string]txmodel.Conversion{}} }

func (f *fakeStore) Save(_ context.Context, c txmodel.Conversion, _ int) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down > 0 {
		f.down--
		return false, fmt.Errorf("save: %w", store.ErrUnavailable)
	}
	if f.refuse != nil && f.refuse(c) {
		return false, fmt.Errorf("save: %w: ERROR: date/time field value out of range (SQLSTATE 22008)", store.ErrRefused)
	}
	if c.Tenant != txmodel.DefaultTenant {
		return false, fmt.Errorf("save: tenant %q, want the one Process was given", c.Tenant)
	}
	if _, ok := f.saved[c.TransactionID]; ok {
		return false, nil
	}
	f.saved[c.TransactionID] = c
	return true, nil
}

var clock = func() time.Time { return time.Date(2024, 9, 12, 8, 0, 0, 0, time.UTC) }

func dayRule() raterule.Rule {
	p, err := raterule.ParsePublication(raterule.DefaultPublication)
	if err != nil {
		panic(err)
	}
	return raterule.Rule{Kind: txmodel.RateRuleDay, Publication: p, MaxAgeDays: 5}
}

func asOfRule() raterule.Rule {
	r := dayRule()
	r.Kind = txmodel.RateRuleAsOf
	return r
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

func tx(t *testing.T, amount, currency, ts string) txmodel.Transaction {
	t.Helper()
	got, err := txmodel.ParseTransaction([]byte(fmt.Sprintf(`{"transaction_id": "t-%s-%s", "user_id": "u", "amount": %q, "currency": %q, "timestamp": %q}`,
		amount, currency, amount, currency, ts)), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// ecb is a day of the ECB's quotes per EUR (2024-09-11).
var ecb = map[string]string{"USD": "1.1043", "JPY": "156.6", "BHD": "0.41617", "GBP": "0.84375", "IDR": "17020.19"}

func TestProcessConvertsFromTheQuotes(t *testing.T) {
	tests := []struct {
		target, amount, currency string
		want, wantRate           string
		wantQuotes               map[string]string
	}{
		// X to EUR is amount ÷ q(X), not amount × a rounded 1/q.
		{"EUR", "100", "USD", "90.56", "0.9055510278", map[string]string{"USD": "1.1043"}},
		{"EUR", "12345", "JPY", "78.83", "0.006385696041", map[string]string{"JPY": "156.6"}},
		{"EUR", "1.234", "BHD", "2.97", "2.402864214", map[string]string{"BHD": "0.41617"}},
		{"EUR", "999999999999999.99", "USD", "905551027800416.54", "0.9055510278", map[string]string{"USD": "1.1043"}},
		// X to T is amount × q(T) ÷ q(X), one rounding.
		{"JPY", "100.00", "USD", "14181", "141.809291", map[string]string{"JPY": "156.6", "USD": "1.1043"}},
		{"JPY", "999999999999999.99", "USD", "141809290953545231", "141.809291", map[string]string{"JPY": "156.6", "USD": "1.1043"}},
		{"GBP", "1000000.00", "IDR", "49.57", "0.00004957347715", map[string]string{"GBP": "0.84375", "IDR": "17020.19"}},
		// EUR to T is amount × q(T).
		{"USD", "250.00", "EUR", "276.08", "1.1043", map[string]string{"USD": "1.1043"}},
	}
	for _, tt := range tests {
		t.Run(tt.currency+">"+tt.target+" "+tt.amount, func(t *testing.T) {
			rates := &fakeRates{table: ecb}
			svc := New(rates, newFakeStore(), txmodel.MustCurrency(tt.target), dayRule(), clock)
			res, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, tt.amount, tt.currency, "2024-09-11T10:00:00Z"), 1)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Conversion
			if !res.Recorded || c.Status != txmodel.StatusProcessed || c.Converted.String() != tt.want || c.Converted.Currency.Code() != tt.target {
				t.Errorf("converted %s %s, want %s %s (%+v)", c.Converted, c.Converted.Currency, tt.want, tt.target, res)
			}
			if got := c.Rate.Value.String(); got != tt.wantRate {
				t.Errorf("effective rate %s, want %s", got, tt.wantRate)
			}
			want := txmodel.RateSource{Provider: "fake", Rule: txmodel.RateRuleDay, Base: "EUR", Quotes: tt.wantQuotes}
			if diff := cmp.Diff(want, c.Rate.Source); diff != "" {
				t.Errorf("source (-want +got):\n%s", diff)
			}
			if got := c.Rate.Date.Format(time.DateOnly); got != "2024-09-11" || !res.Asked.Equal(day("2024-09-11")) || !res.Quoted.Equal(day("2024-09-11")) {
				t.Errorf("rate date %s, asked %v, quoted %v", got, res.Asked, res.Quoted)
			}
		})
	}
}

func TestProcessSameCurrencyAsksNoProvider(t *testing.T) {
	rates := &fakeRates{err: errors.New("must not be asked")}
	svc := New(rates, newFakeStore(), txmodel.MustCurrency("EUR"), asOfRule(), clock)
	res, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, "10", "EUR", "2024-09-11T10:00:00Z"), 1)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Conversion
	if c.Converted.String() != "10.00" || c.Rate.Value.String() != "1" || rates.calls() != 0 {
		t.Errorf("same currency: %+v after %d calls", c, rates.calls())
	}
	if diff := cmp.Diff(txmodel.RateSource{Rule: txmodel.RateRuleAsOf}, c.Rate.Source); diff != "" {
		t.Errorf("source (-want +got):\n%s", diff)
	}
	// as-of: before 16:00 in Berlin, the rule names the day before.
	if got := c.Rate.Date.Format(time.DateOnly); got != "2024-09-10" {
		t.Errorf("rate date %s, want the as-of day 2024-09-10", got)
	}
}

func TestProcessAsksTheDayTheRuleNames(t *testing.T) {
	tests := []struct {
		name string
		rule raterule.Rule
		ts   string
		want string
	}{
		{"day: the UTC day", dayRule(), "2024-09-13T23:30:00-02:00", "2024-09-14"},
		{"as-of: before publication in Berlin, the day before", asOfRule(), "2024-09-13T13:59:00Z", "2024-09-12"},
		{"as-of: after publication", asOfRule(), "2024-09-13T14:00:00Z", "2024-09-13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rates := &fakeRates{table: ecb}
			svc := New(rates, newFakeStore(), txmodel.MustCurrency("EUR"), tt.rule, clock)
			res, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, "1", "USD", tt.ts), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(rates.asked) != 1 || rates.asked[0].Format(time.DateOnly) != tt.want {
				t.Errorf("asked for %v, want %s", rates.asked, tt.want)
			}
			if got := res.Conversion.Rate.Source.Rule; got != tt.rule.Kind {
				t.Errorf("rule %q, want %q", got, tt.rule.Kind)
			}
		})
	}
}

func TestProcessWaitsForAProvisionalRate(t *testing.T) {
	st := newFakeStore()
	rates := &fakeRates{table: ecb, date: day("2024-09-12"), provisional: true}
	svc := New(rates, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
	_, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, "1", "USD", "2024-09-13T07:00:00Z"), 1)
	var wait *WaitError
	if !errors.As(err, &wait) || !errors.Is(err, ErrWaiting) {
		t.Fatalf("err = %v, want a *WaitError", err)
	}
	if wait.Asked != day("2024-09-13") || wait.Latest != day("2024-09-12") {
		t.Errorf("waits for %v, latest %v", wait.Asked, wait.Latest)
	}
	if !strings.Contains(err.Error(), "the provider's latest rate on or before 2024-09-13 is of 2024-09-12") {
		t.Errorf("err = %q", err)
	}
	if len(st.saved) != 0 {
		t.Errorf("recorded %v while waiting", st.saved)
	}
}

// TestProcessRefusesAStaleRate: a rate older than the rule allows fails the
// transaction at once, naming the day asked and the provider's latest day,
// even when the answer is not final (the check comes before any waiting).
func TestProcessRefusesAStaleRate(t *testing.T) {
	for _, provisional := range []bool{false, true} {
		st := newFakeStore()
		rates := &fakeRates{table: ecb, date: day("2024-09-20"), provisional: provisional}
		svc := New(rates, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
		res, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, "1", "USD", "2026-11-30T10:00:00Z"), 1)
		if err != nil {
			t.Fatal(err)
		}
		c := res.Conversion
		want := "no exchange rate for 2026-11-30: the latest rate fake has on or before it is of 2024-09-20, 801 days earlier (at most 5 allowed)"
		if c.Status != txmodel.StatusFailed || c.FailureReason != want || !res.Recorded {
			t.Errorf("provisional %v: %+v, want failed with %q", provisional, res, want)
		}
		if !res.Quoted.Equal(day("2024-09-20")) {
			t.Errorf("quoted %v", res.Quoted)
		}
	}
	// Five days (Easter) is still fine.
	rates := &fakeRates{table: ecb, date: day("2025-04-17")}
	res, err := New(rates, newFakeStore(), txmodel.MustCurrency("EUR"), dayRule(), clock).
		Process(context.Background(), txmodel.DefaultTenant, tx(t, "1", "USD", "2025-04-22T10:00:00Z"), 1)
	if err != nil || res.Conversion.Status != txmodel.StatusProcessed {
		t.Errorf("five days: %+v, %v", res, err)
	}
}

func TestProcessFailures(t *testing.T) {
	st := newFakeStore()
	notFound := New(&fakeRates{table: map[string]string{}}, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
	res, err := notFound.Process(context.Background(), txmodel.DefaultTenant, tx(t, "5", "CHF", "2024-09-11T00:00:00Z"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conversion.Status != txmodel.StatusFailed || !strings.HasPrefix(res.Conversion.FailureReason, "no exchange rate: fake has no quote of CHF") || !res.Recorded {
		t.Errorf("unknown rate: %+v, want a recorded failure with a reason", res)
	}

	for _, cause := range []error{ratesclient.ErrUnavailable, ratesclient.ErrRejected, ratesclient.ErrBadAnswer} {
		down := New(&fakeRates{err: fmt.Errorf("quotes: %w", cause)}, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
		_, err = down.Process(context.Background(), txmodel.DefaultTenant, tx(t, "6", "CHF", "2024-09-11T00:00:00Z"), 1)
		if !errors.Is(err, ErrRatesUnavailable) {
			t.Errorf("provider %v: err = %v, want ErrRatesUnavailable", cause, err)
		}
		if _, ok := st.saved["t-6-CHF"]; ok {
			t.Errorf("provider %v: an outcome was recorded", cause)
		}
	}
}

// TestProcessRecordsTheFailureWhenTheConversionIsRefused: PostgreSQL
// refusing a processed outcome (a rate date in a year it has not) ends the
// transaction failed with the reason; refusing the failure too is an error
// wrapping store.ErrRefused.
func TestProcessRecordsTheFailureWhenTheConversionIsRefused(t *testing.T) {
	st := newFakeStore()
	st.refuse = func(c txmodel.Conversion) bool { return c.Status == txmodel.StatusProcessed }
	svc := New(&fakeRates{table: ecb}, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
	res, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, "1", "USD", "2024-09-11T00:00:00Z"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Conversion; c.Status != txmodel.StatusFailed || !strings.Contains(c.FailureReason, "the conversion could not be stored") || !strings.Contains(c.FailureReason, "22008") {
		t.Errorf("%+v, want failed with PostgreSQL's reason", c)
	}

	st = newFakeStore()
	st.refuse = func(txmodel.Conversion) bool { return true }
	svc = New(&fakeRates{table: ecb}, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
	if _, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, "1", "USD", "2024-09-11T00:00:00Z"), 1); !errors.Is(err, store.ErrRefused) {
		t.Errorf("everything refused: err = %v, want ErrRefused", err)
	}
}

func TestFailCleansTheReason(t *testing.T) {
	st := newFakeStore()
	svc := New(&fakeRates{}, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
	res, err := svc.Fail(context.Background(), txmodel.DefaultTenant, "x", "frankfurter answered 404: bad\x00\xff body\n"+strings.Repeat("y", 1000), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := st.saved["x"].FailureReason
	if got != res.Conversion.FailureReason || strings.ContainsRune(got, 0) || !strings.HasPrefix(got, "frankfurter answered 404: bad \ufffd body y") || len([]rune(got)) != txmodel.MaxReasonLength {
		t.Errorf("stored reason %q", got)
	}
}

// TestProcessPassesOnTheDatabaseOutage: the store waits PostgreSQL's
// outages out (store.BatchSaver); what it gives up on when ctx ends comes
// back as an error wrapping store.ErrUnavailable, nothing recorded.
func TestProcessPassesOnTheDatabaseOutage(t *testing.T) {
	st := newFakeStore()
	st.down = 1
	svc := New(&fakeRates{table: ecb}, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
	if _, err := svc.Process(context.Background(), txmodel.DefaultTenant, tx(t, "2", "USD", "2024-09-11T00:00:00Z"), 1); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("database away until shutdown: err = %v, want ErrUnavailable", err)
	}
	if len(st.saved) != 0 {
		t.Errorf("recorded %v", st.saved)
	}
}

func TestRedeliveryChangesNothing(t *testing.T) {
	st := newFakeStore()
	svc := New(&fakeRates{table: ecb}, st, txmodel.MustCurrency("EUR"), dayRule(), clock)
	x := tx(t, "1", "USD", "2024-09-11T00:00:00Z")
	if res, err := svc.Process(context.Background(), txmodel.DefaultTenant, x, 1); err != nil || !res.Recorded {
		t.Fatal(res, err)
	}
	if res, err := svc.Process(context.Background(), txmodel.DefaultTenant, x, 2); err != nil || res.Recorded {
		t.Errorf("redelivery: %+v %v, want not recorded", res, err)
	}
	if res, err := svc.Fail(context.Background(), txmodel.DefaultTenant, x.ID, "late", 3); err != nil || res.Recorded {
		t.Errorf("late failure: %+v %v, want not recorded", res, err)
	}
	if got := st.saved[x.ID]; got.Status != txmodel.StatusProcessed {
		t.Errorf("stored %+v", got)
	}
}

// publishingProvider is a Frankfurter that has published the ECB's quotes
// up to the day before today, and today's only from 16:00 in Berlin (by
// the test's clock).
type publishingProvider struct {
	now   func() time.Time
	calls atomic.Int64
}

func (p *publishingProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.calls.Add(1)
	asked, err := time.Parse(time.DateOnly, strings.TrimPrefix(r.URL.Path, "/v1/"))
	if err != nil {
		http.Error(w, `{"status":404,"message":"not found"}`, http.StatusNotFound)
		return
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := p.now().In(berlin)
	latest := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if now.Hour() < 16 {
		latest = latest.AddDate(0, 0, -1)
	}
	date := asked
	if latest.Before(date) {
		date = latest
	}
	for date.Weekday() == time.Saturday || date.Weekday() == time.Sunday {
		date = date.AddDate(0, 0, -1)
	}
	// A quote that differs each day, so a conversion shows which it used.
	usd := fmt.Sprintf("1.1%03d", date.YearDay())
	fmt.Fprintf(w, `{"amount":1.0,"base":"EUR","date":%q,"rates":{"USD":%s}}`, date.Format(time.DateOnly), usd)
}

// TestTheSameTransactionGetsTheSameAmountWhenever converts one transaction
// of "today" at many moments, by converters of their own (a redelivery to
// another converter, a restart, a reprocess): under each rule every
// conversion that completes has the same rate and amount, and before the
// rate is final none completes.
func TestTheSameTransactionGetsTheSameAmountWhenever(t *testing.T) {
	var mu sync.Mutex
	now := time.Time{}
	clockNow := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	provider := &publishingProvider{now: clockNow}
	srv := httptest.NewServer(provider)
	t.Cleanup(srv.Close)

	tests := []struct {
		name     string
		rule     raterule.Rule
		ts       string
		times    []string // when each converter tries, UTC
		want     string   // what each try does: wait, or ok
		wantDate string
	}{
		{
			// Wednesday 2024-09-11: waits until 16:00 in Berlin (14:00 UTC).
			name: "day rule, a weekday", rule: dayRule(), ts: "2024-09-11T06:00:00Z",
			times:    []string{"2024-09-11T06:00:01Z", "2024-09-11T13:59:59Z", "2024-09-11T14:00:00Z", "2024-09-11T23:00:00Z", "2024-09-14T09:00:00Z"},
			want:     "wait wait ok ok ok",
			wantDate: "2024-09-11",
		},
		{
			// Saturday 2024-09-14: no rate of its own; final when the day ends in Berlin.
			name: "day rule, a Saturday", rule: dayRule(), ts: "2024-09-14T10:00:00Z",
			times:    []string{"2024-09-14T10:00:01Z", "2024-09-14T21:59:59Z", "2024-09-14T22:00:00Z", "2024-09-16T15:00:00Z"},
			want:     "wait wait ok ok",
			wantDate: "2024-09-13",
		},
		{
			// as-of at 15:00 in Berlin: the 10th's rate, final at once.
			name: "as-of before publication", rule: asOfRule(), ts: "2024-09-11T13:00:00Z",
			times:    []string{"2024-09-11T13:00:01Z", "2024-09-11T15:00:00Z", "2024-09-12T09:00:00Z"},
			want:     "ok ok ok",
			wantDate: "2024-09-10",
		},
		{
			// as-of at 16:30 in Berlin: the 11th's rate, published.
			name: "as-of after publication", rule: asOfRule(), ts: "2024-09-11T14:30:00Z",
			times:    []string{"2024-09-11T14:30:01Z", "2024-09-13T09:00:00Z"},
			want:     "ok ok",
			wantDate: "2024-09-11",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := tx(t, "123456789.01", "USD", tt.ts)
			var amounts, did []string
			for _, at := range tt.times {
				mu.Lock()
				now, _ = time.Parse(time.RFC3339, at)
				mu.Unlock()
				rates, err := ratesclient.New(ratesclient.Config{BaseURL: srv.URL + "/v1", Now: clockNow, Calendar: tt.rule.Publication.Zone})
				if err != nil {
					t.Fatal(err)
				}
				res, err := New(rates, newFakeStore(), txmodel.MustCurrency("EUR"), tt.rule, clockNow).Process(context.Background(), txmodel.DefaultTenant, x, 1)
				if errors.Is(err, ErrWaiting) {
					did = append(did, "wait")
					continue
				}
				if err != nil {
					t.Fatalf("at %s: %v", at, err)
				}
				c := res.Conversion
				if got := c.Rate.Date.Format(time.DateOnly); got != tt.wantDate {
					t.Errorf("at %s: converted at the rate of %s, want %s", at, got, tt.wantDate)
				}
				did = append(did, "ok")
				amounts = append(amounts, c.Converted.String())
			}
			if got := strings.Join(did, " "); got != tt.want {
				t.Errorf("at %v: %s, want %s", tt.times, got, tt.want)
			}
			for _, a := range amounts {
				if a != amounts[0] {
					t.Errorf("amounts differ from one conversion to the next: %v", amounts)
					break
				}
			}
		})
	}
}
