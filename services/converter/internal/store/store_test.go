package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/batch"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/schema"
)

func newStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t, schema.Migrate)
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
		Tenant: "acme", TransactionID: "t1", Status: txmodel.StatusProcessed,
		Converted:   txmodel.Money{Amount: dec(t, "75.3"), Currency: eur},
		Rate:        txmodel.Rate{From: jpy, To: eur, Value: dec(t, "0.0061"), Date: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)},
		ProcessedAt: at,
	}
	saved, err := s.Save(ctx, processed, 1)
	if err != nil || !saved {
		t.Fatalf("first save: saved=%v err=%v", saved, err)
	}
	// A redelivery that now fails, or converts again, changes nothing.
	failed := txmodel.Conversion{Tenant: "acme", TransactionID: "t1", Status: txmodel.StatusFailed, FailureReason: "late failure", ProcessedAt: at.Add(time.Hour)}
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
	c := txmodel.Conversion{Tenant: "acme", TransactionID: "f1", Status: txmodel.StatusFailed, FailureReason: "no rate for XYZ", ProcessedAt: time.Now()}
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
	if _, err := s.Save(ctx, txmodel.Conversion{Tenant: "acme", TransactionID: "x", Status: txmodel.StatusReceived}, 1); err == nil {
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
	_, err = New(pool).Save(context.Background(), txmodel.Conversion{Tenant: "acme", TransactionID: "f", Status: txmodel.StatusFailed, FailureReason: "x", ProcessedAt: time.Now()}, 1)
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
			Tenant: "acme", TransactionID: id, Status: txmodel.StatusProcessed,
			Converted: txmodel.Money{Amount: dec(t, amount), Currency: eur},
			Rate:      txmodel.Rate{From: usd, To: eur, Value: dec(t, "0.9"), Date: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)}, ProcessedAt: now,
		}}
	}
	failed := Outcome{Attempts: 6, Conversion: txmodel.Conversion{Tenant: "acme", TransactionID: "f", Status: txmodel.StatusFailed, FailureReason: "gone", ProcessedAt: now}}
	if _, err := s.Save(ctx, processed("old", "1.00").Conversion, 1); err != nil {
		t.Fatal(err)
	}
	saved, err := s.SaveBatch(ctx, []Outcome{processed("a", "1.00"), failed, processed("old", "2.00"), processed("a", "3.00"), processed("b", "4.50")})
	if err != nil {
		t.Fatal(err)
	}
	want := []Saved{{Recorded: true}, {Recorded: true}, {}, {}, {Recorded: true}}
	if diff := cmp.Diff(want, saved, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("saved (-want +got):\n%s", diff)
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

// TestSaveIsPerTenant: the same transaction id under two tenants is two
// transactions, each with its own outcome; within a tenant the first
// outcome stands.
func TestSaveIsPerTenant(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	outcome := func(tenant, reason string) Outcome {
		return Outcome{Attempts: 1, Conversion: txmodel.Conversion{Tenant: tenant, TransactionID: "42", Status: txmodel.StatusFailed, FailureReason: reason, ProcessedAt: now}}
	}
	saved, err := s.SaveBatch(ctx, []Outcome{outcome("acme", "a"), outcome("globex", "g"), outcome("acme", "again")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Saved{{Recorded: true}, {Recorded: true}, {}}, saved, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("saved (-want +got):\n%s", diff)
	}
	rows, err := pool.Query(ctx, `SELECT tenant || ':' || failure_reason FROM conversion_outcomes WHERE transaction_id = '42' ORDER BY tenant`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme:a", "globex:g"}, got); diff != "" {
		t.Errorf("outcomes of 42 (-want +got):\n%s", diff)
	}
	if _, err := s.Save(ctx, outcome("", "x").Conversion, 1); !errors.Is(err, ErrRefused) {
		t.Errorf("an outcome without a tenant: err = %v, want ErrRefused", err)
	}
}

func TestBatchSaverSharesRoundTrips(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	b := s.Batched(batch.Config{Flushers: 2, MaxSize: 50})
	defer b.Close()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := txmodel.Conversion{Tenant: "acme", TransactionID: fmt.Sprint("t", i), Status: txmodel.StatusFailed, FailureReason: "x", ProcessedAt: time.Now()}
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

func TestSaveKeepsProvenance(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	eur, usd, jpy := txmodel.MustCurrency("EUR"), txmodel.MustCurrency("USD"), txmodel.MustCurrency("JPY")
	at := time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)
	day := time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)
	quoted := txmodel.Conversion{
		Tenant: "acme", TransactionID: "q", Status: txmodel.StatusProcessed, ProcessedAt: at,
		Converted: txmodel.Money{Amount: dec(t, "14181"), Currency: jpy},
		Rate: txmodel.Rate{From: usd, To: jpy, Value: dec(t, "141.809291"), Date: day, Source: txmodel.RateSource{
			Provider: "frankfurter", Rule: txmodel.RateRuleAsOf, Base: "EUR", Quotes: map[string]string{"USD": "1.1043", "JPY": "156.60"},
		}},
	}
	same := txmodel.Conversion{
		Tenant: "acme", TransactionID: "same", Status: txmodel.StatusProcessed, ProcessedAt: at,
		Converted: txmodel.Money{Amount: dec(t, "1.00"), Currency: eur},
		Rate:      txmodel.Rate{From: eur, To: eur, Value: dec(t, "1"), Date: day, Source: txmodel.RateSource{Rule: txmodel.RateRuleDay}},
	}
	for _, c := range []txmodel.Conversion{quoted, same} {
		if saved, err := s.Save(ctx, c, 1); err != nil || !saved {
			t.Fatalf("save %s: saved=%v err=%v", c.TransactionID, saved, err)
		}
	}
	type row struct {
		Provider, Rule, Base, Quotes *string
	}
	got := map[string]row{}
	for _, id := range []string{"q", "same"} {
		var r row
		if err := pool.QueryRow(ctx, `SELECT rate_provider, rate_rule, rate_base, rate_quotes::text FROM conversions WHERE transaction_id = $1`, id).
			Scan(&r.Provider, &r.Rule, &r.Base, &r.Quotes); err != nil {
			t.Fatal(err)
		}
		got[id] = r
	}
	str := func(s string) *string { return &s }
	want := map[string]row{
		// The quote's text as the provider wrote it: "156.60", not 156.6.
		"q":    {Provider: str("frankfurter"), Rule: str("as-of"), Base: str("EUR"), Quotes: str(`{"JPY": "156.60", "USD": "1.1043"}`)},
		"same": {Rule: str("day")},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("provenance (-want +got):\n%s", diff)
	}
}

// TestSaveBatchIsolatesWhatPostgreSQLRefuses: an outcome PostgreSQL
// refuses (a year it has not, a NUL in text) fails alone; its batch-mates
// are recorded, in a batch of the store and through the BatchSaver.
func TestSaveBatchIsolatesWhatPostgreSQLRefuses(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	eur := txmodel.MustCurrency("EUR")
	now := time.Now().UTC()
	processed := func(id string, day time.Time) Outcome {
		return Outcome{Attempts: 1, Conversion: txmodel.Conversion{
			Tenant: "acme", TransactionID: id, Status: txmodel.StatusProcessed, ProcessedAt: now,
			Converted: txmodel.Money{Amount: dec(t, "1.00"), Currency: eur},
			Rate:      txmodel.Rate{From: eur, To: eur, Value: dec(t, "1"), Date: day, Source: txmodel.RateSource{Rule: txmodel.RateRuleDay}},
		}}
	}
	failed := func(id, reason string) Outcome {
		return Outcome{Attempts: 1, Conversion: txmodel.Conversion{Tenant: "acme", TransactionID: id, Status: txmodel.StatusFailed, FailureReason: reason, ProcessedAt: now}}
	}
	year0 := time.Date(0, 6, 15, 0, 0, 0, 0, time.UTC)
	good := time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)
	saved, err := s.SaveBatch(ctx, []Outcome{
		processed("a", good), processed("y0", year0), failed("nul", "bad\x00 body"), failed("b", "fine"), processed("y0", good),
	})
	if err != nil {
		t.Fatalf("SaveBatch: %v", err)
	}
	if !saved[0].Recorded || !saved[3].Recorded || saved[4].Recorded || saved[4].Err != nil {
		t.Errorf("batch-mates: %+v", saved)
	}
	for _, i := range []int{1, 2} {
		if saved[i].Recorded || !errors.Is(saved[i].Err, ErrRefused) {
			t.Errorf("outcome %d = %+v, want refused", i, saved[i])
		}
	}
	if !strings.Contains(saved[1].Err.Error(), "22008") || !strings.Contains(saved[2].Err.Error(), "22021") {
		t.Errorf("refusals do not name their SQLSTATE: %v; %v", saved[1].Err, saved[2].Err)
	}

	b := s.Batched(batch.Config{Flushers: 1, MaxSize: 10, Window: 50 * time.Millisecond})
	defer b.Close()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, o := range []Outcome{processed("c", good), processed("y0-again", year0), failed("d", "fine")} {
		wg.Go(func() {
			var ok bool
			ok, errs[i] = b.Save(ctx, o.Conversion, 1)
			if errs[i] == nil && !ok {
				errs[i] = fmt.Errorf("%s not recorded", o.Conversion.TransactionID)
			}
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrRefused) {
		t.Errorf("BatchSaver errors = %v, want nil, refused, nil", errs)
	}

	var ids []string
	rows, err := pool.Query(ctx, `SELECT transaction_id FROM conversions ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "d"}, ids); diff != "" {
		t.Errorf("stored (-want +got):\n%s", diff)
	}
}

// TestBatchSaverWaitsOutAnOutage: while PostgreSQL cannot be reached, Save
// keeps trying; once it can, the outcome is recorded. When ctx ends first,
// the error says PostgreSQL was away.
func TestBatchSaverWaitsOutAnOutage(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t, schema.Migrate)
	// A port nobody listens on yet; later a proxy to PostgreSQL.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	host, port, _ := net.SplitHostPort(addr)
	cfg.ConnConfig.Host = host
	p, _ := strconv.Atoi(port)
	cfg.ConnConfig.Port = uint16(p) //nolint:gosec // G115: a TCP port
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := New(pool).Batched(batch.Config{Flushers: 1, MaxSize: 10})
	t.Cleanup(b.Close)
	failed := func(id string) txmodel.Conversion {
		return txmodel.Conversion{Tenant: "acme", TransactionID: id, Status: txmodel.StatusFailed, FailureReason: "x", ProcessedAt: time.Now()}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.Save(ctx, failed("gave-up"), 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("PostgreSQL away until ctx ends: err = %v, want ErrUnavailable", err)
	}

	go func() {
		time.Sleep(300 * time.Millisecond)
		proxy(t, addr, target)
	}()
	saved, err := b.Save(context.Background(), failed("waited"), 1)
	if err != nil || !saved {
		t.Fatalf("after PostgreSQL came: saved=%v err=%v", saved, err)
	}
}

// proxy forwards every connection to addr on to target until the test ends.
func proxy(t *testing.T, addr, target string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Error(err)
		return
	}
	t.Cleanup(func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			up, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer up.Close()
			go func() { _, _ = io.Copy(up, c) }()
			_, _ = io.Copy(c, up)
		}()
	}
}
