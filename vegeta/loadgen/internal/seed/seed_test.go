package seed

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	apischema "github.com/txpersister/txpersister/services/api/schema"
	converterschema "github.com/txpersister/txpersister/services/converter/schema"
)

func TestSeedWritesTheRealSchemaAndAppends(t *testing.T) {
	// As a superuser (the test's role) the seeder skips the api's trigger
	// and writes the status index itself; keepTriggers seeds as any other
	// role would, the trigger adding every transaction.
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepTriggers=%v", keep), func(t *testing.T) { testSeed(t, keep) })
	}
}

func testSeed(t *testing.T, keepTriggers bool) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewDatabase(t, apischema.Migrate, converterschema.Migrate))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	c := Defaults
	c.Rows, c.Users, c.FailedEvery, c.Pending, c.Chunk = 1000, 7, 100, 10, 300
	c.keepTriggers = keepTriggers
	var progress []int64
	c.Progress = func(done int64) { progress = append(progress, done) }
	r, err := Run(ctx, conn, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.First != 1 || r.Last != 1000 {
		t.Errorf("first run seeded %d to %d, want 1 to 1000", r.First, r.Last)
	}
	if diff := cmp.Diff([]int64{300, 600, 900, 1000}, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}

	// What the api and the converter publish of their tables.
	type counts struct{ Stored, Processed, Failed, Received, Users, JPYFractions int }
	count := func() counts {
		var n counts
		err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE c.status = 'processed'), count(*) FILTER (WHERE c.status = 'failed'),
			count(*) FILTER (WHERE c.transaction_id IS NULL), count(DISTINCT t.user_id), count(*) FILTER (WHERE t.currency = 'JPY' AND t.amount <> trunc(t.amount))
			FROM accepted_transactions t LEFT JOIN conversion_outcomes c USING (tenant, transaction_id) WHERE t.tenant = 'default'`).
			Scan(&n.Stored, &n.Processed, &n.Failed, &n.Received, &n.Users, &n.JPYFractions)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// 10 failed (every 100th: 100 to 1000), the last 10 received (991 to
	// 1000, 1000 among them), 981 processed.
	if diff := cmp.Diff(counts{Stored: 1000, Processed: 981, Failed: 9, Received: 10, Users: 7}, count()); diff != "" {
		t.Errorf("after the first run (-want +got):\n%s", diff)
	}

	// The api's status index (its schema 00007 on), as its sweeper leaves
	// it: the failed and the received, nothing processed.
	var hasIndex bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('status_index') IS NOT NULL`).Scan(&hasIndex); err != nil {
		t.Fatal(err)
	}
	if hasIndex {
		var failed, received int
		if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE status = 'received') FROM status_index`).
			Scan(&failed, &received); err != nil {
			t.Fatal(err)
		}
		if failed != 9 || received != 10 {
			t.Errorf("status_index holds %d failed and %d received, want 9 and 10", failed, received)
		}
	}

	c.Pending, c.Progress = 0, nil
	r, err = Run(ctx, conn, c)
	if err != nil {
		t.Fatal(err)
	}
	if r.First != 1001 || r.Last != 2000 {
		t.Errorf("second run seeded %d to %d, want 1001 to 2000", r.First, r.Last)
	}
	if diff := cmp.Diff(counts{Stored: 2000, Processed: 1971, Failed: 19, Received: 10, Users: 7}, count()); diff != "" {
		t.Errorf("after the second run (-want +got):\n%s", diff)
	}

	var newest time.Time
	var converted, rate, quote, quoteType string
	if err := conn.QueryRow(ctx, `SELECT max(received_at) FROM transactions`).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	if want := c.Origin.Add(1999 * c.Spacing); !newest.Equal(want) {
		t.Errorf("newest received_at %s, want %s", newest, want)
	}
	// seed-0000000001 is GBP 0.02 (i % 5 = 1), at 0.8420 to the euro.
	if err := conn.QueryRow(ctx, `SELECT converted_amount::text, exchange_rate::text, rate_quotes->>'GBP', jsonb_typeof(rate_quotes->'GBP') FROM conversions WHERE transaction_id = 'seed-0000000001'`).
		Scan(&converted, &rate, &quote, &quoteType); err != nil {
		t.Fatal(err)
	}
	// Quotes are exact decimals, written as JSON strings as the converter
	// writes them (the api reads them so).
	if converted != "0.02" || quote != "0.8420" || quoteType != "string" {
		t.Errorf("seed-0000000001 converted to %s at quote %s, a JSON %s (rate %s), want 0.02 at 0.8420, a string", converted, quote, quoteType, rate)
	}
}

func TestSeedRefusesABadConfig(t *testing.T) {
	c := Defaults
	c.Rows, c.Pending, c.Users = 10, 11, 0
	if _, err := Run(context.Background(), nil, c); err == nil {
		t.Fatal("a config with pending > rows and no users was accepted")
	}
}
