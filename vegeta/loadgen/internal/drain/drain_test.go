package drain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	apischema "github.com/txpersister/txpersister/services/api/schema"
	converterschema "github.com/txpersister/txpersister/services/converter/schema"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newDB returns a pool on a fresh database with both services' schemas.
func newDB(t *testing.T) *pgxpool.Pool {
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

var start = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// insert adds a transaction received at received and, unless status is "",
// its outcome at received+latency.
func insert(t *testing.T, db *pgxpool.Pool, id string, received time.Time, status string, latency time.Duration) {
	t.Helper()
	insertIn(t, db, "default", id, received, status, latency)
}

// insertIn is insert into tenant's transactions.
func insertIn(t *testing.T, db *pgxpool.Pool, tenant, id string, received time.Time, status string, latency time.Duration) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at)
		VALUES ($1, $2, 'u1', 10.50, 'USD', '2024-09-11T00:00:00Z', $3)`, tenant, id, received); err != nil {
		t.Fatal(err)
	}
	if status == "" {
		return
	}
	addOutcomeIn(t, db, tenant, id, status, received.Add(latency))
}

func addOutcome(t *testing.T, db *pgxpool.Pool, id, status string, at time.Time) {
	t.Helper()
	addOutcomeIn(t, db, "default", id, status, at)
}

func addOutcomeIn(t *testing.T, db *pgxpool.Pool, tenant, id, status string, at time.Time) {
	t.Helper()
	var err error
	if status == "processed" {
		_, err = db.Exec(context.Background(), `INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, processed_at)
			VALUES ($1, $2, 'processed', 9.48, 'EUR', 0.9024456277, '2024-09-11', $3)`, tenant, id, at)
	} else {
		_, err = db.Exec(context.Background(), `INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at)
			VALUES ($1, $2, 'failed', 'no rate', $3)`, tenant, id, at)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestWaitAllProcessed(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	// Ten transactions received 100 ms apart; transaction i takes
	// (i+1)*10 ms end to end; the 10th failed. Another run's rows and an
	// id that only looks like this run's must not count.
	for i := range 10 {
		status := "processed"
		if i == 9 {
			status = "failed"
		}
		insert(t, db, "load-r1-"+strconv.Itoa(i+1), start.Add(time.Duration(i)*100*time.Millisecond), status, time.Duration(i+1)*10*time.Millisecond)
	}
	insert(t, db, "load-r2-1", start, "", 0)
	insert(t, db, "load-r1x-1", start, "", 0)
	insert(t, db, "other", start, "", 0)

	end := start.Add(time.Second)
	r, err := Wait(context.Background(), db, Options{Run: "r1", Expect: 10, Drain: time.Second, Since: start, AttackEnd: end})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 10 || r.Processed != 9 || r.Failed != 1 || r.Pending != 0 || r.Missing != 0 || r.Lost != 0 || !r.Drained {
		t.Errorf("report %+v: want 10 accepted, 9 processed, 1 failed, drained, nothing lost", r)
	}
	if err := r.Err(); err != nil {
		t.Errorf("Err() = %v, want nil", err)
	}
	// percentile_cont interpolates: over 10..100 ms, p50 = 55, p90 = 91,
	// p95 = 95.5, p99 = 99.1.
	want := Latency{P50: 55, P90: 91, P95: 95.5, P99: 99.1, Max: 100}
	if r.Latency == nil || *r.Latency != want {
		t.Errorf("latency %+v, want %+v", r.Latency, want)
	}
	// The last outcome: received at +900 ms, 100 ms later, i.e. at the
	// attack's end.
	if r.LastOutcomeAfterAttackSeconds == nil || *r.LastOutcomeAfterAttackSeconds != 0 {
		t.Errorf("last outcome after attack %v, want 0", r.LastOutcomeAfterAttackSeconds)
	}
	// 10 received over the 1 s attack; 10 outcomes by +1 s.
	if r.InPerSecond != 10 || r.OutPerSecond != 10 {
		t.Errorf("throughput in %v out %v, want 10 and 10", r.InPerSecond, r.OutPerSecond)
	}
	if r.FirstReceived == nil || !r.FirstReceived.Equal(start) || r.LastReceived == nil || !r.LastReceived.Equal(start.Add(900*time.Millisecond)) {
		t.Errorf("received from %v to %v, want %v to +900ms", r.FirstReceived, r.LastReceived, start)
	}
	var shell strings.Builder
	if err := r.WriteShell(&shell); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"accepted=10\n", "\nlost=0\n", "\ndrained=yes\n", "\nlast_outcome_after_attack_seconds=0.000\n", "\ne2e_p99_ms=99.100\n", "\nin_per_second=10.0\n"} {
		if !strings.Contains(shell.String(), want) {
			t.Errorf("shell report lacks %q:\n%s", want, shell.String())
		}
	}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"accepted (rows)           10", "p99 99.1ms", "nothing lost"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestWaitPendingIsLost(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	insert(t, db, "load-p-1", start, "processed", 20*time.Millisecond)
	insert(t, db, "load-p-2", start, "", 0)
	insert(t, db, "load-p-3", start, "", 0)

	r, err := Wait(context.Background(), db, Options{Run: "p", Expect: -1, Drain: 50 * time.Millisecond, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 3 || r.Processed != 1 || r.Pending != 2 || r.Lost != 2 || r.Drained || r.Expected != nil {
		t.Errorf("report %+v: want 3 accepted, 1 processed, 2 pending and lost, not drained, nothing expected", r)
	}
	if !errors.Is(r.Err(), ErrLost) {
		t.Errorf("Err() = %v, want one wrapping ErrLost", r.Err())
	}
	var text strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "LOST") || !strings.Contains(text.String(), "drained           NO") {
		t.Errorf("text report does not say it lost transactions:\n%s", text.String())
	}
}

func TestWaitFewerRowsThanAnswersIsLost(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	insert(t, db, "load-m-1", start, "processed", time.Millisecond)
	insert(t, db, "load-m-2", start, "processed", time.Millisecond)

	r, err := Wait(context.Background(), db, Options{Run: "m", Expect: 5, Drain: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 2 || r.Pending != 0 || r.Missing != 3 || r.Lost != 3 || !r.Drained {
		t.Errorf("report %+v: want 2 accepted, drained, 3 missing and lost", r)
	}
	if !errors.Is(r.Err(), ErrLost) {
		t.Errorf("Err() = %v, want one wrapping ErrLost", r.Err())
	}
}

func TestWaitSeesLateOutcomes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	insert(t, db, "load-late-1", start, "", 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(100 * time.Millisecond)
		if _, err := db.Exec(context.Background(), `INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at)
			VALUES ('default', 'load-late-1', 'failed', 'no rate', $1)`, start.Add(time.Second)); err != nil {
			t.Errorf("add the outcome: %v", err)
		}
	}()
	r, err := Wait(context.Background(), db, Options{Run: "late", Expect: 1, Drain: 10 * time.Second, Poll: 20 * time.Millisecond})
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if !r.Drained || r.Lost != 0 || r.Failed != 1 {
		t.Errorf("report %+v: want the outcome found, nothing lost", r)
	}
	if r.Latency == nil || r.Latency.Max != 1000 {
		t.Errorf("latency %+v, want max 1000 ms", r.Latency)
	}
}

func TestWaitNoRows(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	r, err := Wait(context.Background(), db, Options{Run: "none", Expect: 0, Drain: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 0 || r.Lost != 0 || !r.Drained || r.Latency != nil || r.FirstReceived != nil {
		t.Errorf("report %+v: want an empty, drained report", r)
	}
}

func TestWaitSinceSkipsOlderRows(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	insert(t, db, "load-s-1", start.Add(-2*SinceMargin), "", 0) // an earlier run with the same id: not looked at
	insert(t, db, "load-s-2", start, "processed", time.Millisecond)
	r, err := Wait(context.Background(), db, Options{Run: "s", Expect: -1, Drain: time.Second, Since: start})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 1 || r.Lost != 0 {
		t.Errorf("report %+v: want only the row received since the start", r)
	}
}

func TestWaitSinceFindsEveryTenant(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	insertIn(t, db, "acme", "load-m-1", start, "processed", time.Millisecond)
	insertIn(t, db, "default", "load-m-2", start, "failed", time.Millisecond)
	insertIn(t, db, "zeta", "load-m-3", start, "", 0)
	insertIn(t, db, "zeta", "other-1", start, "", 0)
	r, err := Wait(context.Background(), db, Options{Run: "m", Expect: 3, Drain: 50 * time.Millisecond, Poll: 10 * time.Millisecond, Since: start})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted != 3 || r.Processed != 1 || r.Failed != 1 || r.Pending != 1 {
		t.Errorf("report %+v: want the run's 3 rows of its 3 tenants, one of each outcome", r)
	}
}

// TestFilterSinceUsesAnIndex checks that, given the attack's start, the
// run's rows are found through an index and not by reading the whole of
// transactions (seconds a poll at 50 million rows).
func TestFilterSinceUsesAnIndex(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := context.Background()
	for i := range 200 {
		insertIn(t, db, "t"+strconv.Itoa(i%3), "seed-"+strconv.Itoa(i), start.Add(-time.Duration(i)*time.Hour), "processed", time.Millisecond)
	}
	if _, err := db.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	tenants, err := storedTenants(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"t0", "t1", "t2"}, tenants); diff != "" {
		t.Errorf("storedTenants (-want +got):\n%s", diff)
	}
	conn, err := db.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// Sequential scans priced out: the plan shows which index serves.
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	where, args := filter(Options{Run: "x", Since: start}, tenants)
	rows, err := conn.Query(ctx, `EXPLAIN SELECT count(*) FROM accepted_transactions t
		LEFT JOIN conversion_outcomes c USING (tenant, transaction_id) WHERE `+where, args...)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	// The index must be searched by tenant and time of receipt: a
	// condition on received_at alone, not the index's first column, is
	// checked against every entry.
	bounded := false
	for _, line := range plan {
		if strings.Contains(line, "Index Cond:") && strings.Contains(line, "tenant = ANY") && strings.Contains(line, "received_at >=") {
			bounded = true
		}
	}
	if !bounded {
		t.Errorf("the run's rows are not found by an index on their time of receipt:\n%s", strings.Join(plan, "\n"))
	}
}

func TestWaitErrors(t *testing.T) {
	t.Parallel()
	if _, err := Wait(context.Background(), nil, Options{Run: "bad_run"}); err == nil {
		t.Error("Wait accepted a run id with a LIKE wildcard")
	}
	db := newDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Wait(ctx, db, Options{Run: "c", Drain: time.Minute}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v, want one wrapping context.Canceled", err)
	}
}
