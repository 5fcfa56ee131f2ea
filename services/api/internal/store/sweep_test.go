package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// listIDs lists every page of f and returns the ids in order.
func listIDs(t *testing.T, s *Store, f transactions.Filter) []string {
	t.Helper()
	var ids []string
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("pagination does not end")
		}
		p, err := s.List(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			ids = append(ids, r.Transaction.ID)
		}
		if p.Next == "" {
			return ids
		}
		f.Cursor = p.Next
	}
}

func indexed(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT transaction_id, status FROM status_index`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range must(pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ ID, Status string }])) {
		got[r.ID] = r.Status
	}
	return got
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestStatusListingsAreExactBeforeAndAfterTheSweep(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	// t0 to t7, a second apart; t6 and t7 are u2's.
	var items []transactions.Entry
	for i := range 8 {
		it := newTx(t, fmt.Sprintf("t%d", i), "1", "USD")
		it.ReceivedAt = received.Add(time.Duration(i) * time.Second)
		if i >= 6 {
			it.Transaction.UserID = "u2"
		}
		items = append(items, it)
	}
	if _, err := s.Insert(ctx, items); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"t0": "received", "t1": "received", "t2": "received", "t3": "received", "t4": "received", "t5": "received", "t6": "received", "t7": "received"}, indexed(t, pool)); diff != "" {
		t.Fatalf("status_index after the insert (-want +got):\n%s", diff)
	}
	// Outcomes: t1, t3 and t7 failed, t0, t2 and t4 processed.
	for id, status := range map[string]string{"t1": "failed", "t3": "failed", "t7": "failed", "t0": "processed", "t2": "processed", "t4": "processed"} {
		var err error
		if status == "failed" {
			_, err = pool.Exec(ctx, `INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at) VALUES ('acme', $1, 'failed', 'x', now())`, id)
		} else {
			_, err = pool.Exec(ctx, `INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, processed_at, rate_rule)
				VALUES ('acme', $1, 'processed', 1, 'EUR', 1, '2024-09-11', now(), 'day')`, id)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, tt := range []struct {
			f    transactions.Filter
			want []string
		}{
			{transactions.Filter{Status: txmodel.StatusReceived}, []string{"t6", "t5"}},
			{transactions.Filter{Status: txmodel.StatusFailed}, []string{"t7", "t3", "t1"}},
			{transactions.Filter{Status: txmodel.StatusProcessed}, []string{"t4", "t2", "t0"}},
			{transactions.Filter{Status: txmodel.StatusFailed, UserID: "u2"}, []string{"t7"}},
			{transactions.Filter{Status: txmodel.StatusReceived, UserID: "u1"}, []string{"t5"}},
			{transactions.Filter{Status: txmodel.StatusFailed, UserID: "u3"}, nil},
		} {
			tt.f.Tenant, tt.f.Limit = "acme", 1 // a page each: the cursor walks the index
			if diff := cmp.Diff(tt.want, listIDs(t, s, tt.f)); diff != "" {
				t.Errorf("%s: List(%+v) (-want +got):\n%s", when, tt.f, diff)
			}
		}
	}
	check("before the sweep")

	processed, failed, news, err := s.Sweep(ctx, 2) // two rounds and a bit
	if err != nil {
		t.Fatal(err)
	}
	total := processed + failed
	for total < 6 {
		p, f, n, err := s.Sweep(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		news += n
		if p+f == 0 {
			t.Fatalf("sweeps settled %d of 6", total)
		}
		total, processed, failed = total+p+f, processed+p, failed+f
	}
	if processed != 3 || failed != 3 || news != 0 {
		t.Errorf("swept %d processed and %d failed with %d webhook messages, want 3 and 3 and none (no endpoint)", processed, failed, news)
	}
	if diff := cmp.Diff(map[string]string{"t1": "failed", "t3": "failed", "t5": "received", "t6": "received", "t7": "failed"}, indexed(t, pool)); diff != "" {
		t.Errorf("status_index after the sweep (-want +got):\n%s", diff)
	}
	check("after the sweep")

	// txctl reprocess: the failed outcome forgotten, the transaction
	// queued again, and received once more.
	if _, err := pool.Exec(ctx, `SELECT forget_failed_outcomes('acme', ARRAY['t3'])`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `SELECT enqueue_transactions('acme', ARRAY['t3'], ARRAY['\x7b7d'::bytea], ARRAY['{}'::jsonb])`); err != nil {
		t.Fatal(err)
	}
	if got := listIDs(t, s, transactions.Filter{Tenant: "acme", Limit: 50, Status: txmodel.StatusReceived}); !cmp.Equal(got, []string{"t6", "t5", "t3"}) {
		t.Errorf("received after reprocessing t3 = %v, want t6 t5 t3", got)
	}
	if got := indexed(t, pool)["t3"]; got != "received" {
		t.Errorf("t3 in status_index after reprocessing: %q, want received", got)
	}
}
