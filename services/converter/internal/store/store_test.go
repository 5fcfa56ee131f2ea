package store

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
