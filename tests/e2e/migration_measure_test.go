//go:build measure

// The measurement of the tenants migrations on a large table, kept out of
// the ordinary suite by a build tag: seeding ten million rows takes
// minutes. `make measure-migration` runs it (ROWS=10000000 by default).
package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
)

// TestMeasureTenantMigration fills a database of the previous release
// with ROWS transactions and their conversions, then applies this
// release's migrations while a writer of the previous version inserts a
// transaction every 10 ms and a reader reads one, and reports how long
// each migration took and how long the writer and the reader waited.
func TestMeasureTenantMigration(t *testing.T) {
	rows := 10_000_000
	if s := os.Getenv("ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("ROWS=%q: %v", s, err)
		}
		rows = n
	}
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	migrateUpTo(t, dbURL, "services/api/schema/migrations", "api_schema_version", 3)
	migrateUpTo(t, dbURL, "services/converter/schema/migrations", "converter_schema_version", 3)
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	start := time.Now()
	if _, err := pool.Exec(ctx, `
		INSERT INTO transactions (transaction_id, user_id, amount, currency, occurred_at, received_at)
		SELECT 'tx-' || i, 'user-' || (i % 100000), 100.00, 'USD', timestamptz '2024-09-11' + i * interval '1 ms', timestamptz '2024-09-11' + i * interval '1 ms'
		FROM generate_series(1, $1) AS i`, rows); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO conversions (transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, processed_at)
		SELECT 'tx-' || i, 'processed', 90.56, 'EUR', 0.9055510278, '2024-09-11', now()
		FROM generate_series(1, $1) AS i`, rows); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"transactions", "conversions"} {
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+table); err != nil {
			t.Fatal(err)
		}
	}
	var size string
	if err := pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('transactions') + pg_total_relation_size('conversions'))`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d transactions and conversions (%s with their indexes) in %s", rows, size, time.Since(start).Round(time.Second))

	// The writer and the reader of the previous version, until the key
	// swap (00006) ends the writer's kind of insert.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var writes, reads []time.Duration
	var refusedAt []time.Duration // since the migrations started
	var firstRefusal string
	migrating := time.Now() // reset when the migrations start
	probe := func(kind string, every time.Duration, f func(i int) error) {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
			t0 := time.Now()
			err := f(i)
			d := time.Since(t0)
			mu.Lock()
			if kind == "write" {
				writes = append(writes, d)
				if err != nil {
					refusedAt = append(refusedAt, time.Since(migrating))
					if firstRefusal == "" {
						firstRefusal = err.Error()
					}
				}
			} else {
				reads = append(reads, d)
			}
			mu.Unlock()
		}
	}
	wg.Add(2)
	go probe("write", 10*time.Millisecond, func(i int) error {
		_, err := pool.Exec(ctx, `INSERT INTO transactions (transaction_id, user_id, amount, currency, occurred_at, received_at)
			VALUES ($1, 'u', 1, 'EUR', now(), now()) ON CONFLICT (transaction_id) DO NOTHING`, fmt.Sprint("during-", i))
		return err
	})
	go probe("read", 10*time.Millisecond, func(i int) error {
		var n int
		return pool.QueryRow(ctx, `SELECT count(*) FROM transactions WHERE transaction_id = $1`, fmt.Sprint("tx-", 1+i%rows)).Scan(&n)
	})

	mu.Lock()
	migrating = time.Now()
	mu.Unlock()
	var keySwap time.Duration // when the api's 00006 began, since the migrations started
	for _, m := range []struct{ dir, table string }{
		{"services/converter/schema/migrations", "converter_schema_version"},
		{"services/api/schema/migrations", "api_schema_version"},
	} {
		for v := 4; v <= 6; v++ {
			t0 := time.Now()
			if m.table == "api_schema_version" && v == 6 {
				keySwap = t0.Sub(migrating)
			}
			migrateUpTo(t, dbURL, m.dir, m.table, v)
			t.Logf("%s %05d: %s", m.table, v, time.Since(t0).Round(time.Millisecond))
		}
	}
	t.Logf("all migrations: %s", time.Since(migrating).Round(time.Millisecond))
	close(stop)
	wg.Wait()
	for kind, ds := range map[string][]time.Duration{"write": writes, "read": reads} {
		slices.Sort(ds)
		if len(ds) == 0 {
			continue
		}
		t.Logf("%s probes during the migrations: %d, p50 %s, p99 %s, max %s", kind, len(ds),
			ds[len(ds)/2].Round(time.Microsecond), ds[len(ds)*99/100].Round(time.Microsecond), ds[len(ds)-1].Round(time.Millisecond))
	}
	before := 0
	for _, at := range refusedAt {
		if at < keySwap {
			before++
		}
	}
	t.Logf("writes of the previous version refused: %d before the api's 00006 began (at %s), %d after (the first: %s)",
		before, keySwap.Round(time.Millisecond), len(refusedAt)-before, firstRefusal)
	if before > 0 {
		t.Errorf("%d writes of the previous version refused before the key swap", before)
	}
	var tenant string
	if err := pool.QueryRow(ctx, `SELECT tenant FROM transactions WHERE transaction_id = 'tx-1'`).Scan(&tenant); err != nil || tenant != "default" {
		t.Errorf("tx-1 after the migrations: tenant %q, %v; want default", tenant, err)
	}
}
