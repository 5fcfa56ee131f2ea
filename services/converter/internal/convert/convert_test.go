package convert

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/store"
)

// fakeRates answers from a table keyed by "FROM>TO"; err, when set, is the
// answer to everything.
type fakeRates struct {
	table map[string]string
	date  time.Time
	err   error
	calls int
}

func (f *fakeRates) Rate(_ context.Context, from, to string, date time.Time) (ratesclient.Rate, error) {
	f.calls++
	if f.err != nil {
		return ratesclient.Rate{}, f.err
	}
	v, ok := f.table[from+">"+to]
	if !ok {
		return ratesclient.Rate{}, fmt.Errorf("rate %s->%s: %w", from, to, ratesclient.ErrNotFound)
	}
	d, _ := txmodel.ParseDecimal(v)
	answered := date
	if !f.date.IsZero() {
		answered = f.date
	}
	return ratesclient.Rate{From: from, To: to, Date: answered, Value: d}, nil
}

// fakeStore records outcomes in memory; down makes the first n saves fail as
// if PostgreSQL were away.
type fakeStore struct {
	mu    sync.Mutex
	saved map[string]txmodel.Conversion
	down  int
}

func (f *fakeStore) Save(_ context.Context, c txmodel.Conversion, _ int) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down > 0 {
		f.down--
		return false, fmt.Errorf("save: %w", store.ErrUnavailable)
	}
	if _, ok := f.saved[c.TransactionID]; ok {
		return false, nil
	}
	f.saved[c.TransactionID] = c
	return true, nil
}

var clock = func() time.Time { return time.Date(2024, 9, 12, 8, 0, 0, 0, time.UTC) }

func tx(t *testing.T, amount, currency, ts string) txmodel.Transaction {
	t.Helper()
	got, err := txmodel.ParseTransaction([]byte(fmt.Sprintf(`{"transaction_id": "t-%s-%s", "user_id": "u", "amount": %q, "currency": %q, "timestamp": %q}`,
		amount, currency, amount, currency, ts)), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestProcessConverts(t *testing.T) {
	rates := &fakeRates{table: map[string]string{"USD>EUR": "0.90498", "JPY>EUR": "0.0062785", "BHD>EUR": "2.4031"}}
	tests := []struct {
		amount, currency, want, wantRate string
	}{
		{"100", "USD", "90.50", "0.90498"},     // amount × rate, not ÷ (the original's defect)
		{"12345", "JPY", "77.51", "0.0062785"}, // 77.5080825 → 77.51
		{"1.234", "BHD", "2.97", "2.4031"},     // 2.9654254 → 2.97
		{"10.00", "EUR", "10.00", "1"},         // same currency: rate 1, no call
	}
	for _, tt := range tests {
		t.Run(tt.currency, func(t *testing.T) {
			st := &fakeStore{saved: map[string]txmodel.Conversion{}}
			svc := New(rates, st, txmodel.MustCurrency("EUR"), clock)
			calls := rates.calls
			res, err := svc.Process(context.Background(), tx(t, tt.amount, tt.currency, "2024-09-11T10:00:00Z"), 1)
			if err != nil {
				t.Fatal(err)
			}
			c := res.Conversion
			if !res.Recorded || c.Status != txmodel.StatusProcessed || c.Converted.String() != tt.want || c.Converted.Currency.Code() != "EUR" || c.Rate.Value.String() != tt.wantRate {
				t.Errorf("result = %+v, want %s EUR at %s", res, tt.want, tt.wantRate)
			}
			if c.Rate.Date.Format(time.DateOnly) != "2024-09-11" {
				t.Errorf("rate date = %v", c.Rate.Date)
			}
			if tt.currency == "EUR" && rates.calls != calls {
				t.Error("asked the provider for EUR to EUR")
			}
		})
	}
}

func TestProcessUsesTheDayOfTheTimestampInUTC(t *testing.T) {
	var asked time.Time
	rates := ratesFunc(func(_ context.Context, from, to string, date time.Time) (ratesclient.Rate, error) {
		asked = date
		// A Saturday is answered with Friday's rate.
		return ratesclient.Rate{From: from, To: to, Date: time.Date(2024, 9, 13, 0, 0, 0, 0, time.UTC), Value: mustParse("0.9")}, nil
	})
	svc := New(rates, &fakeStore{saved: map[string]txmodel.Conversion{}}, txmodel.MustCurrency("EUR"), func() time.Time { return time.Date(2024, 9, 20, 0, 0, 0, 0, time.UTC) })
	// 23:30 at -02:00 is 01:30 UTC the next day: Saturday the 14th.
	res, err := svc.Process(context.Background(), tx(t, "1", "USD", "2024-09-13T23:30:00-02:00"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if asked.Format(time.DateOnly) != "2024-09-14" {
		t.Errorf("asked for %v, want the UTC day 2024-09-14", asked)
	}
	if res.Conversion.Rate.Date.Format(time.DateOnly) != "2024-09-13" {
		t.Errorf("rate date = %v, want the day the provider answered for", res.Conversion.Rate.Date)
	}
}

type ratesFunc func(ctx context.Context, from, to string, date time.Time) (ratesclient.Rate, error)

func (f ratesFunc) Rate(ctx context.Context, from, to string, date time.Time) (ratesclient.Rate, error) {
	return f(ctx, from, to, date)
}

func mustParse(s string) txmodel.Decimal {
	d, err := txmodel.ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

func TestProcessFailures(t *testing.T) {
	st := &fakeStore{saved: map[string]txmodel.Conversion{}}
	notFound := New(&fakeRates{table: map[string]string{}}, st, txmodel.MustCurrency("EUR"), clock)
	res, err := notFound.Process(context.Background(), tx(t, "5", "CHF", "2024-09-11T00:00:00Z"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Conversion.Status != txmodel.StatusFailed || res.Conversion.FailureReason == "" || !res.Recorded {
		t.Errorf("unknown rate: %+v, want a recorded failure with a reason", res)
	}

	down := New(&fakeRates{err: fmt.Errorf("rate: %w", ratesclient.ErrUnavailable)}, st, txmodel.MustCurrency("EUR"), clock)
	_, err = down.Process(context.Background(), tx(t, "6", "CHF", "2024-09-11T00:00:00Z"), 1)
	if !errors.Is(err, ErrRatesUnavailable) {
		t.Errorf("provider down: err = %v, want ErrRatesUnavailable", err)
	}
	if _, ok := st.saved["t-6-CHF"]; ok {
		t.Error("provider down: an outcome was recorded")
	}
}

func TestProcessWaitsForTheDatabase(t *testing.T) {
	st := &fakeStore{saved: map[string]txmodel.Conversion{}, down: 3}
	svc := New(&fakeRates{table: map[string]string{"USD>EUR": "0.9"}}, st, txmodel.MustCurrency("EUR"), clock)
	res, err := svc.Process(context.Background(), tx(t, "1", "USD", "2024-09-11T00:00:00Z"), 1)
	if err != nil || !res.Recorded {
		t.Fatalf("after the database came back: %+v, %v", res, err)
	}

	st.down = 1 << 30
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = svc.Process(ctx, tx(t, "2", "USD", "2024-09-11T00:00:00Z"), 1)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("database away until shutdown: err = %v, want ErrUnavailable", err)
	}
}

func TestRedeliveryChangesNothing(t *testing.T) {
	st := &fakeStore{saved: map[string]txmodel.Conversion{}}
	svc := New(&fakeRates{table: map[string]string{"USD>EUR": "0.9"}}, st, txmodel.MustCurrency("EUR"), clock)
	x := tx(t, "1", "USD", "2024-09-11T00:00:00Z")
	if res, err := svc.Process(context.Background(), x, 1); err != nil || !res.Recorded {
		t.Fatal(res, err)
	}
	if res, err := svc.Process(context.Background(), x, 2); err != nil || res.Recorded {
		t.Errorf("redelivery: %+v %v, want not recorded", res, err)
	}
	if res, err := svc.Fail(context.Background(), x.ID, "late", 3); err != nil || res.Recorded {
		t.Errorf("late failure: %+v %v, want not recorded", res, err)
	}
	if got := st.saved[x.ID]; got.Status != txmodel.StatusProcessed {
		t.Errorf("stored %+v", got)
	}
}
