package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	"github.com/txpersister/txpersister/libs/txmodel"
	apischema "github.com/txpersister/txpersister/services/api/schema"
	converterschema "github.com/txpersister/txpersister/services/converter/schema"
)

// newPool returns a pool on a fresh database with both services' schemas.
func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := pgtest.NewDatabase(t, apischema.Migrate, converterschema.Migrate)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var (
	received = time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)
	day1     = time.Date(2024, 9, 12, 0, 0, 0, 0, time.UTC)
	day2     = time.Date(2024, 9, 13, 0, 0, 0, 0, time.UTC)
)

// seed stores transactions "p1", "p2" (processed), "f1" (failed on day1
// with a provider reason), "f2" (failed on day2, provider), "f3" (failed on
// day2, no rate) and "r1" (received, not converted), and two outbox
// entries.
func seed(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	stmts := []string{
		`INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at) VALUES
			('default', 'p1', 'u1', 10.50, 'USD', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z'),
			('default', 'p2', 'u1', 7, 'JPY', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z'),
			('default', 'f1', 'u2', 100.25, 'USD', '2024-09-10T23:59:59.123456Z', '2024-09-11T12:00:00Z'),
			('default', 'f2', 'u2', 3, 'GBP', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z'),
			('default', 'f3', 'u3', 0.001, 'BHD', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z'),
			('default', 'r1', 'u3', 5, 'EUR', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z')`,
		`INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, failure_reason, attempts, processed_at) VALUES
			('default', 'p1', 'processed', 9.45, 'EUR', 0.9, '2024-09-11', NULL, 1, '2024-09-12T01:00:00Z'),
			('default', 'p2', 'processed', 0.04, 'EUR', 0.0062, '2024-09-11', NULL, 2, '2024-09-13T01:00:00Z'),
			('default', 'f1', 'failed', NULL, NULL, NULL, NULL, 'rates provider: 503 Service Unavailable', 6, '2024-09-12T01:00:00Z'),
			('default', 'f2', 'failed', NULL, NULL, NULL, NULL, 'rates provider: 503 Service Unavailable', 6, '2024-09-13T01:00:00Z'),
			('default', 'f3', 'failed', NULL, NULL, NULL, NULL, 'no rate for BHD', 1, '2024-09-13T02:00:00Z')`,
		`INSERT INTO outbox (tenant, transaction_id, payload, created_at) VALUES
			('default', 'r1', 'x', '2024-09-11T12:00:01Z'), ('default', 'r1', 'y', '2024-09-11T12:00:02Z')`,
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

func TestOutboxAndCountByStatus(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	s := New(pool)
	ctx := context.Background()

	ob, err := s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Outbox{}, ob); diff != "" {
		t.Errorf("empty outbox (-want +got):\n%s", diff)
	}
	counts, err := s.CountByStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[txmodel.Status]int64{"received": 0, "processed": 0, "failed": 0}, counts); diff != "" {
		t.Errorf("empty counts (-want +got):\n%s", diff)
	}

	seed(t, pool)
	ob, err = s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Outbox{Backlog: 2, Oldest: time.Date(2024, 9, 11, 12, 0, 1, 0, time.UTC)}, ob); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	counts, err = s.CountByStatus(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[txmodel.Status]int64{"received": 1, "processed": 2, "failed": 3}, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// conversionRow is a conversions row as text, to compare before and after.
type conversionRow struct {
	ID, Status, Converted, Rate, Reason, Attempts, ProcessedAt string
}

func conversions(t *testing.T, pool *pgxpool.Pool) []conversionRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT transaction_id, status, coalesce(converted_amount::text, ''), coalesce(exchange_rate::text, ''),
		       coalesce(failure_reason, ''), attempts::text, processed_at::text
		FROM conversions ORDER BY transaction_id`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[conversionRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// outboxEntry is an outbox row; Payload is decoded.
type outboxEntry struct {
	TransactionID string
	Headers       string
	Transaction   txmodel.Transaction
	ReceivedAt    time.Time
}

// outboxAfter returns the outbox entries for transactions other than r1
// (the seed's), their payloads decoded with the converter's decoder.
func outboxAfter(t *testing.T, pool *pgxpool.Pool) []outboxEntry {
	t.Helper()
	//nolint:rowserrcheck // pgx.ForEachRow below checks rows.Err
	rows, err := pool.Query(context.Background(),
		`SELECT transaction_id, headers::text, payload FROM outbox WHERE transaction_id <> 'r1' ORDER BY transaction_id, id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []outboxEntry
	var e outboxEntry
	var payload []byte
	_, err = pgx.ForEachRow(rows, []any{&e.TransactionID, &e.Headers, &payload}, func() error {
		m, err := txmodel.DecodeMessage(payload)
		if err != nil || m.Tenant != txmodel.DefaultTenant {
			t.Errorf("outbox entry for %s: payload of tenant %q does not decode: %v", e.TransactionID, m.Tenant, err)
		}
		out = append(out, outboxEntry{TransactionID: e.TransactionID, Headers: e.Headers, Transaction: m.Transaction, ReceivedAt: m.ReceivedAt})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustTx(t *testing.T, id, user, amount, currency string, at time.Time) txmodel.Transaction {
	t.Helper()
	c, err := txmodel.LookupCurrency(currency)
	if err != nil {
		t.Fatal(err)
	}
	d, err := txmodel.ParseDecimal(amount)
	if err != nil {
		t.Fatal(err)
	}
	return txmodel.Transaction{ID: id, UserID: user, Amount: txmodel.Money{Amount: d, Currency: c}, Timestamp: at}
}

func TestReprocess(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 9, 11, 8, 0, 0, 0, time.UTC)
	f1 := outboxEntry{
		TransactionID: "f1", Headers: "{}", ReceivedAt: received,
		Transaction: mustTx(t, "f1", "u2", "100.25", "USD", time.Date(2024, 9, 10, 23, 59, 59, 123456000, time.UTC)),
	}
	f2 := outboxEntry{TransactionID: "f2", Headers: "{}", ReceivedAt: received, Transaction: mustTx(t, "f2", "u2", "3", "GBP", at)}
	f3 := outboxEntry{TransactionID: "f3", Headers: "{}", ReceivedAt: received, Transaction: mustTx(t, "f3", "u3", "0.001", "BHD", at)}

	tests := []struct {
		name   string
		filter Filter
		want   []string
		queued []outboxEntry
	}{
		{"every failed", Filter{}, []string{"f1", "f2", "f3"}, []outboxEntry{f1, f2, f3}},
		{
			"by id, skipping processed, received and unknown ones",
			Filter{IDs: []string{"p1", "f2", "r1", "nope", "f1"}},
			[]string{"f1", "f2"},
			[]outboxEntry{f1, f2},
		},
		{"processed ids only", Filter{IDs: []string{"p1", "p2"}}, nil, nil},
		{"by reason", Filter{ReasonLike: "rates provider:%"}, []string{"f1", "f2"}, []outboxEntry{f1, f2}},
		{"reason pattern is case-sensitive", Filter{ReasonLike: "NO RATE%"}, nil, nil},
		{"since, inclusive", Filter{Since: time.Date(2024, 9, 13, 1, 0, 0, 0, time.UTC)}, []string{"f2", "f3"}, []outboxEntry{f2, f3}},
		{"until, exclusive", Filter{Until: time.Date(2024, 9, 13, 1, 0, 0, 0, time.UTC)}, []string{"f1"}, []outboxEntry{f1}},
		{"reason and window", Filter{ReasonLike: "%503%", Since: day2, Until: day2.Add(24 * time.Hour)}, []string{"f2"}, []outboxEntry{f2}},
		{"window before everything", Filter{Since: day1.Add(-48 * time.Hour), Until: day1}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := newPool(t)
			seed(t, pool)
			s := New(pool)
			ctx := context.Background()
			before := conversions(t, pool)

			res, err := s.Reprocess(ctx, tt.filter, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, res.IDs); diff != "" {
				t.Errorf("reprocessed (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.queued, outboxAfter(t, pool)); diff != "" {
				t.Errorf("outbox entries (-want +got):\n%s", diff)
			}
			// Exactly the reprocessed outcomes are gone; every other row,
			// processed ones above all, is as it was.
			var wantRows []conversionRow
			for _, r := range before {
				if !slices.Contains(tt.want, r.ID) {
					wantRows = append(wantRows, r)
				}
			}
			if diff := cmp.Diff(wantRows, conversions(t, pool)); diff != "" {
				t.Errorf("conversions after (-want +got):\n%s", diff)
			}

			// A second run finds nothing left to do.
			again, err := s.Reprocess(ctx, tt.filter, 0, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(again.IDs) != 0 || again.Batches != 0 {
				t.Errorf("second run reprocessed %v in %d batches, want nothing", again.IDs, again.Batches)
			}
			if diff := cmp.Diff(tt.queued, outboxAfter(t, pool)); diff != "" {
				t.Errorf("outbox entries after a second run (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantRows, conversions(t, pool)); diff != "" {
				t.Errorf("conversions after a second run (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReprocessDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	seed(t, pool)
	s := New(pool)
	ctx := context.Background()
	before := conversions(t, pool)
	ob, err := s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}

	res, err := s.Reprocess(ctx, Filter{ReasonLike: "%"}, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Reprocessed{IDs: []string{"f1", "f2", "f3"}}, res); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, conversions(t, pool)); diff != "" {
		t.Errorf("conversions after a dry run (-want +got):\n%s", diff)
	}
	after, err := s.Outbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ob, after); diff != "" {
		t.Errorf("outbox after a dry run (-want +got):\n%s", diff)
	}
}

// failMany adds n failed transactions named m000, m001, ...
func failMany(t *testing.T, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		WITH ids AS (SELECT 'm' || lpad(i::text, 3, '0') AS id FROM generate_series(0, $1 - 1) AS i),
		tx AS (
			INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at)
			SELECT 'default', id, 'u', 1, 'EUR', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z' FROM ids
		)
		INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at)
		SELECT 'default', id, 'failed', 'boom', now() FROM ids`, n)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("m%03d", i))
	}
	return ids
}

func TestReprocessInBatches(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	want := failMany(t, pool, 7)
	res, err := New(pool).Reprocess(context.Background(), Filter{}, 3, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Reprocessed{IDs: want, Batches: 3}, res); diff != "" {
		t.Errorf("reprocessed (-want +got):\n%s", diff)
	}
	var got []string
	for _, e := range outboxAfter(t, pool) {
		got = append(got, e.TransactionID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

// Two operators running the same reprocess at once queue each transaction
// once between them.
func TestReprocessConcurrentRunsQueueOnce(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	want := failMany(t, pool, 60)
	s := New(pool)
	var wg sync.WaitGroup
	results := make([]Reprocessed, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = s.Reprocess(context.Background(), Filter{}, 7, false)
		})
	}
	wg.Wait()
	var all []string
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		all = append(all, r.IDs...)
	}
	slices.Sort(all)
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("reprocessed by all runs (-want +got):\n%s", diff)
	}
	var got []string
	for _, e := range outboxAfter(t, pool) {
		got = append(got, e.TransactionID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

// TestReprocessIsPerTenant: reprocessing a tenant's failed transaction
// leaves another tenant's of the same id alone, and its message names
// the tenant.
func TestReprocessIsPerTenant(t *testing.T) {
	t.Parallel()
	pool := newPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		WITH tx AS (
			INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at)
			SELECT tenant, 'x1', 'u', 1, 'EUR', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z' FROM unnest(ARRAY['acme', 'globex']) AS tenant
		)
		INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at)
		SELECT tenant, 'x1', 'failed', 'boom', now() FROM unnest(ARRAY['acme', 'globex']) AS tenant`)
	if err != nil {
		t.Fatal(err)
	}
	res, err := New(pool).Reprocess(ctx, Filter{Tenant: "acme", IDs: []string{"x1"}}, 10, false)
	if err != nil || !slices.Equal(res.IDs, []string{"x1"}) {
		t.Fatalf("Reprocess(acme, x1) = %+v, %v", res, err)
	}
	var left []string
	rows, err := pool.Query(ctx, `SELECT tenant FROM conversion_outcomes WHERE transaction_id = 'x1'`)
	if err != nil {
		t.Fatal(err)
	}
	if left, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{"globex"}) {
		t.Errorf("outcomes left of x1: %v, want globex's only", left)
	}
	var tenant string
	var payload []byte
	if err := pool.QueryRow(ctx, `SELECT tenant, payload FROM outbox WHERE transaction_id = 'x1'`).Scan(&tenant, &payload); err != nil {
		t.Fatal(err)
	}
	m, err := txmodel.DecodeMessage(payload)
	if err != nil || tenant != "acme" || m.Tenant != "acme" {
		t.Errorf("outbox entry of tenant %q, message of %q (%v); want acme", tenant, m.Tenant, err)
	}
}
