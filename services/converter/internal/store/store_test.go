package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	"github.com/txpersister/txpersister/libs/txmodel"
)

func newStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	if err := Migrate(context.Background(), url, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return New(pool), pool
}

func dec(t *testing.T, s string) txmodel.Decimal {
	t.Helper()
	d, err := txmodel.ParseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSaveFirstOutcomeStands(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	eur, jpy := txmodel.MustCurrency("EUR"), txmodel.MustCurrency("JPY")
	at := time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)
	processed := txmodel.Conversion{
		TransactionID: "t1", Status: txmodel.StatusProcessed,
		Converted:   txmodel.Money{Amount: dec(t, "75.3"), Currency: eur},
		Rate:        txmodel.Rate{From: jpy, To: eur, Value: dec(t, "0.0061"), Date: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)},
		ProcessedAt: at,
	}
	saved, err := s.Save(ctx, processed, 1)
	if err != nil || !saved {
		t.Fatalf("first save: saved=%v err=%v", saved, err)
	}
	// A redelivery that now fails, or converts again, changes nothing.
	failed := txmodel.Conversion{TransactionID: "t1", Status: txmodel.StatusFailed, FailureReason: "late failure", ProcessedAt: at.Add(time.Hour)}
	if saved, err := s.Save(ctx, failed, 2); err != nil || saved {
		t.Fatalf("second save: saved=%v err=%v, want not saved", saved, err)
	}
	if saved, err := s.Save(ctx, processed, 3); err != nil || saved {
		t.Fatalf("third save: saved=%v err=%v, want not saved", saved, err)
	}
	var status, amount, rate, date string
	var attempts int
	var reason *string
	err = pool.QueryRow(ctx, `SELECT status, converted_amount::text, exchange_rate::text, rate_date::text, attempts, failure_reason FROM conversions WHERE transaction_id = 't1'`).
		Scan(&status, &amount, &rate, &date, &attempts, &reason)
	if err != nil {
		t.Fatal(err)
	}
	if status != "processed" || amount != "75.30" || rate != "0.0061" || date != "2024-09-10" || attempts != 1 || reason != nil {
		t.Errorf("stored %s %s %s %s %d %v", status, amount, rate, date, attempts, reason)
	}
}

func TestSaveFailed(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	c := txmodel.Conversion{TransactionID: "f1", Status: txmodel.StatusFailed, FailureReason: "no rate for XYZ", ProcessedAt: time.Now()}
	if saved, err := s.Save(ctx, c, 6); err != nil || !saved {
		t.Fatalf("save: saved=%v err=%v", saved, err)
	}
	var reason string
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT failure_reason, attempts FROM conversions WHERE transaction_id = 'f1'`).Scan(&reason, &attempts); err != nil {
		t.Fatal(err)
	}
	if reason != "no rate for XYZ" || attempts != 6 {
		t.Errorf("stored %q after %d attempts", reason, attempts)
	}
	if _, err := s.Save(ctx, txmodel.Conversion{TransactionID: "x", Status: txmodel.StatusReceived}, 1); err == nil {
		t.Error("saving a received status succeeded")
	}
}

func TestSaveUnavailable(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/x?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = New(pool).Save(context.Background(), txmodel.Conversion{TransactionID: "f", Status: txmodel.StatusFailed, FailureReason: "x", ProcessedAt: time.Now()}, 1)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
}

func TestSaveBatchReportsEachOutcome(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	eur, usd := txmodel.MustCurrency("EUR"), txmodel.MustCurrency("USD")
	now := time.Now().UTC()
	processed := func(id, amount string) Outcome {
		return Outcome{Attempts: 1, Conversion: txmodel.Conversion{
			TransactionID: id, Status: txmodel.StatusProcessed,
			Converted: txmodel.Money{Amount: dec(t, amount), Currency: eur},
			Rate:      txmodel.Rate{From: usd, To: eur, Value: dec(t, "0.9"), Date: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)}, ProcessedAt: now,
		}}
	}
	failed := Outcome{Attempts: 6, Conversion: txmodel.Conversion{TransactionID: "f", Status: txmodel.StatusFailed, FailureReason: "gone", ProcessedAt: now}}
	if _, err := s.Save(ctx, processed("old", "1.00").Conversion, 1); err != nil {
		t.Fatal(err)
	}
	saved, err := s.SaveBatch(ctx, []Outcome{processed("a", "1.00"), failed, processed("old", "2.00"), processed("a", "3.00"), processed("b", "4.50")})
	if err != nil {
		t.Fatal(err)
	}
	want := []bool{true, true, false, false, true}
	for i := range want {
		if saved[i] != want[i] {
			t.Errorf("saved = %v, want %v", saved, want)
			break
		}
	}
	var a, old, b string
	if err := pool.QueryRow(ctx, `SELECT
		(SELECT converted_amount::text FROM conversions WHERE transaction_id = 'a'),
		(SELECT converted_amount::text FROM conversions WHERE transaction_id = 'old'),
		(SELECT converted_amount::text FROM conversions WHERE transaction_id = 'b')`).Scan(&a, &old, &b); err != nil {
		t.Fatal(err)
	}
	if a != "1.00" || old != "1.00" || b != "4.50" {
		t.Errorf("stored a=%s old=%s b=%s, want the first outcomes 1.00, 1.00, 4.50", a, old, b)
	}
}

func TestBatchSaverSharesRoundTrips(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	b := s.Batched(pgkit.BatchConfig{Flushers: 2, MaxSize: 50})
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := txmodel.Conversion{TransactionID: fmt.Sprint("t", i), Status: txmodel.StatusFailed, FailureReason: "x", ProcessedAt: time.Now()}
			if saved, err := b.Save(context.Background(), c, 1); err != nil || !saved {
				t.Errorf("Save %d: %v %v", i, saved, err)
			}
		}()
	}
	wg.Wait()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM conversions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 100 {
		t.Errorf("%d outcomes stored, want 100", n)
	}
}
