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

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/schema"
	converterschema "github.com/txpersister/txpersister/services/converter/schema"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newStore returns a Store on a fresh database with both services' schemas.
func newStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	// The converter's schema is the real one, so the two cannot drift
	// apart unnoticed.
	url := pgtest.NewDatabase(t, schema.Migrate, converterschema.Migrate)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return New(pool), pool
}

var received = time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)

func newTx(t *testing.T, id, amount, currency string) transactions.Entry {
	t.Helper()
	tx, err := txmodel.ParseTransaction([]byte(fmt.Sprintf(
		`{"transaction_id": %q, "user_id": "u1", "amount": %q, "currency": %q, "timestamp": "2024-09-11T00:00:00"}`,
		id, amount, currency)), received)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: "acme", Transaction: tx, ReceivedAt: received})
	if err != nil {
		t.Fatal(err)
	}
	return transactions.Entry{Tenant: "acme", Transaction: tx, ReceivedAt: received, Message: msg, Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
}

func outcomes(rs []transactions.Result) []transactions.Outcome {
	out := make([]transactions.Outcome, len(rs))
	for i, r := range rs {
		out[i] = r.Outcome
	}
	return out
}

func TestInsertCreatesReplaysAndConflicts(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()

	rs, err := s.Insert(ctx, []transactions.Entry{newTx(t, "a", "100", "USD"), newTx(t, "b", "5", "JPY")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]transactions.Outcome{transactions.Created, transactions.Created}, outcomes(rs)); diff != "" {
		t.Fatalf("first insert (-want +got):\n%s", diff)
	}

	// "100.00" is the same amount as "100"; a different amount is another transaction.
	rs, err = s.Insert(ctx, []transactions.Entry{newTx(t, "a", "100.00", "USD"), newTx(t, "b", "6", "JPY"), newTx(t, "c", "1", "EUR"), newTx(t, "c", "1", "EUR"), newTx(t, "c", "2", "EUR")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]transactions.Outcome{transactions.Replayed, transactions.Conflict, transactions.Created, transactions.Replayed, transactions.Conflict}, outcomes(rs)); diff != "" {
		t.Fatalf("second insert (-want +got):\n%s", diff)
	}
	if got := rs[1].Record.Transaction.Amount.String(); got != "5" {
		t.Errorf("conflict returns the stored amount %q, want 5", got)
	}

	// One outbox entry per created transaction, nothing for replays.
	var ids []string
	rows, _ := pool.Query(ctx, "SELECT transaction_id FROM outbox ORDER BY id")
	ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, ids); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
}

func TestInsertConcurrentRetriesStoreOnce(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	const n = 20
	var wg sync.WaitGroup
	got := make([]transactions.Outcome, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := s.Insert(ctx, []transactions.Entry{newTx(t, "same", "42.10", "USD")})
			errs[i] = err
			if err == nil {
				got[i] = rs[0].Outcome
			}
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("insert %d: %v", i, errs[i])
		}
		switch got[i] {
		case transactions.Created:
			created++
		case transactions.Replayed:
		default:
			t.Errorf("insert %d: outcome %v, want Created or Replayed", i, got[i])
		}
	}
	if created != 1 {
		t.Errorf("%d inserts created the transaction, want exactly 1", created)
	}
	var outbox int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	if outbox != 1 {
		t.Errorf("outbox has %d entries, want 1", outbox)
	}
}

func TestGetReadsConversion(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	if _, err := s.Insert(ctx, []transactions.Entry{newTx(t, "p", "100", "USD"), newTx(t, "f", "1", "BHD"), newTx(t, "r", "7", "JPY"), newTx(t, "old", "100", "USD")}); err != nil {
		t.Fatal(err)
	}
	_, err := pool.Exec(ctx, `INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, processed_at,
			rate_provider, rate_rule, rate_base, rate_quotes)
		VALUES ('acme', 'p', 'processed', 90.56, 'EUR', 0.9055510278, '2024-09-10', now(), 'frankfurter', 'day', 'EUR', '{"USD": "1.1043"}'),
		       ('acme', 'old', 'processed', 90.50, 'EUR', 0.90498, '2024-09-10', now(), NULL, NULL, NULL, NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at) VALUES ('acme', 'f', 'failed', 'no rate', now())`)
	if err != nil {
		t.Fatal(err)
	}

	p, err := s.Get(ctx, "acme", "p")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status() != txmodel.StatusProcessed || p.Conversion.Converted.String() != "90.56" || p.Conversion.Rate.Value.String() != "0.9055510278" ||
		p.Conversion.Rate.Date.Format(time.DateOnly) != "2024-09-10" || p.Transaction.Amount.String() != "100.00" {
		t.Errorf("processed record = %+v %+v", p, p.Conversion)
	}
	want := txmodel.RateSource{Provider: "frankfurter", Rule: txmodel.RateRuleDay, Base: "EUR", Quotes: map[string]string{"USD": "1.1043"}}
	if diff := cmp.Diff(want, p.Conversion.Rate.Source); diff != "" {
		t.Errorf("provenance (-want +got):\n%s", diff)
	}
	old, err := s.Get(ctx, "acme", "old")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(txmodel.RateSource{}, old.Conversion.Rate.Source); diff != "" || old.Conversion.Converted.String() != "90.50" {
		t.Errorf("a conversion recorded before provenance: %+v (-want +got):\n%s", old.Conversion, diff)
	}
	f, err := s.Get(ctx, "acme", "f")
	if err != nil {
		t.Fatal(err)
	}
	if f.Status() != txmodel.StatusFailed || f.Conversion.FailureReason != "no rate" || f.Transaction.Amount.String() != "1.000" {
		t.Errorf("failed record = %+v %+v", f, f.Conversion)
	}
	r, err := s.Get(ctx, "acme", "r")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status() != txmodel.StatusReceived || r.Transaction.Amount.String() != "7" || !r.ReceivedAt.Equal(received) {
		t.Errorf("received record = %+v", r)
	}
	if _, err := s.Get(ctx, "acme", "missing"); !errors.Is(err, transactions.ErrNotFound) {
		t.Errorf("Get(missing) err = %v, want ErrNotFound", err)
	}
}

func TestListPaginatesNewestFirst(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	var items []transactions.Entry
	for i := range 7 {
		it := newTx(t, fmt.Sprintf("tx%d", i), "1", "USD")
		it.ReceivedAt = received.Add(time.Duration(i/2) * time.Second) // pairs share received_at: the id breaks ties
		if i == 6 {
			it.Transaction.UserID = "u2"
		}
		items = append(items, it)
	}
	if _, err := s.Insert(ctx, items); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at) VALUES ('acme', 'tx1', 'failed', 'x', now())`); err != nil {
		t.Fatal(err)
	}

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		p, err := s.List(ctx, transactions.Filter{Tenant: "acme", Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Records {
			got = append(got, r.Transaction.ID)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if diff := cmp.Diff([]string{"tx6", "tx5", "tx4", "tx3", "tx2", "tx1", "tx0"}, got); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}

	filtered := []struct {
		f    transactions.Filter
		want []string
	}{
		{transactions.Filter{Tenant: "acme", Limit: 50, UserID: "u2"}, []string{"tx6"}},
		{transactions.Filter{Tenant: "acme", Limit: 50, Status: txmodel.StatusFailed}, []string{"tx1"}},
		{transactions.Filter{Tenant: "acme", Limit: 50, Status: txmodel.StatusReceived, UserID: "u1"}, []string{"tx5", "tx4", "tx3", "tx2", "tx0"}},
		{transactions.Filter{Tenant: "acme", Limit: 50, Status: txmodel.StatusProcessed}, nil},
	}
	for _, tt := range filtered {
		p, err := s.List(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range p.Records {
			ids = append(ids, r.Transaction.ID)
		}
		if diff := cmp.Diff(tt.want, ids); diff != "" {
			t.Errorf("List(%+v) (-want +got):\n%s", tt.f, diff)
		}
		if p.Next != "" {
			t.Errorf("List(%+v) next = %q on the only page", tt.f, p.Next)
		}
	}
	if _, err := s.List(ctx, transactions.Filter{Tenant: "acme", Limit: 1, Cursor: "!!"}); !errors.Is(err, transactions.ErrBadCursor) {
		t.Errorf("bad cursor err = %v, want ErrBadCursor", err)
	}
}

func TestRelayOutboxDeletesOnlyConfirmed(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Insert(ctx, []transactions.Entry{newTx(t, "a", "1", "USD"), newTx(t, "b", "2", "USD"), newTx(t, "c", "3", "USD")}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("broker down")
	if _, err := s.RelayOutbox(ctx, 2, func(context.Context, []OutboxEntry) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("RelayOutbox err = %v, want the publish error", err)
	}
	if n, _, err := s.OutboxStats(ctx); err != nil || n != 3 {
		t.Fatalf("after a failed publish the outbox holds %d (err %v), want 3", n, err)
	}

	var seen []string
	for {
		n, err := s.RelayOutbox(ctx, 2, func(_ context.Context, es []OutboxEntry) error {
			for _, e := range es {
				seen = append(seen, e.TransactionID)
				if e.Headers["traceparent"] == "" {
					t.Errorf("entry %s lost its trace context", e.TransactionID)
				}
				if _, err := txmodel.DecodeMessage(e.Payload); err != nil {
					t.Errorf("entry %s payload: %v", e.TransactionID, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, seen); diff != "" {
		t.Errorf("relayed (-want +got):\n%s", diff)
	}
	if n, _, err := s.OutboxStats(ctx); err != nil || n != 0 {
		t.Errorf("outbox holds %d (err %v), want 0", n, err)
	}
}

func TestRelayOutboxSharesWorkBetweenRelays(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Insert(ctx, []transactions.Entry{newTx(t, "a", "1", "USD"), newTx(t, "b", "2", "USD")}); err != nil {
		t.Fatal(err)
	}
	// While one relay holds entries, another one sees only the rest.
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := s.RelayOutbox(ctx, 1, func(context.Context, []OutboxEntry) error {
			close(inside)
			<-release
			return nil
		})
		done <- err
	}()
	<-inside
	var other []string
	if _, err := s.RelayOutbox(ctx, 10, func(_ context.Context, es []OutboxEntry) error {
		for _, e := range es {
			other = append(other, e.TransactionID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"b"}, other); diff != "" {
		t.Errorf("second relay saw (-want +got):\n%s", diff)
	}
}

// TestOutboxHasNoTrigger: no commit that adds outbox entries may NOTIFY
// (or do anything else behind the writer's back). A NOTIFY takes a
// database-wide lock at commit and held every writer's commit behind the
// others' WAL flushes; the relays are woken in process instead.
func TestOutboxHasNoTrigger(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t)
	rows, err := pool.Query(context.Background(), `SELECT tgname FROM pg_trigger WHERE tgrelid = 'outbox'::regclass AND NOT tgisinternal`)
	if err != nil {
		t.Fatal(err)
	}
	triggers, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(triggers) > 0 {
		t.Errorf("outbox has triggers %q, want none", triggers)
	}
}

func TestUnavailableDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s := New(pool)
	if _, err := s.Insert(ctx, []transactions.Entry{newTx(t, "a", "1", "USD")}); !errors.Is(err, transactions.ErrUnavailable) {
		t.Errorf("Insert err = %v, want ErrUnavailable", err)
	}
	if _, err := s.Get(ctx, "acme", "a"); !errors.Is(err, transactions.ErrUnavailable) {
		t.Errorf("Get err = %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, transactions.ErrUnavailable) {
		t.Errorf("Ping err = %v, want ErrUnavailable", err)
	}
}

// TestIDsArePerTenant: two tenants may use the same id; replays and
// conflicts are within a tenant; reads and lists never cross tenants.
func TestIDsArePerTenant(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	of := func(tenant string, e transactions.Entry) transactions.Entry {
		e.Tenant = tenant
		return e
	}
	rs, err := s.Insert(ctx, []transactions.Entry{of("acme", newTx(t, "42", "1", "USD")), of("globex", newTx(t, "42", "2", "USD"))})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]transactions.Outcome{transactions.Created, transactions.Created}, outcomes(rs)); diff != "" {
		t.Errorf("the same id under two tenants (-want +got):\n%s", diff)
	}
	rs, err = s.Insert(ctx, []transactions.Entry{of("globex", newTx(t, "42", "2", "USD")), of("acme", newTx(t, "42", "3", "USD"))})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]transactions.Outcome{transactions.Replayed, transactions.Conflict}, outcomes(rs)); diff != "" {
		t.Errorf("again (-want +got):\n%s", diff)
	}
	if rs[1].Record.Transaction.Amount.String() != "1.00" {
		t.Errorf("acme's conflict reports %s, want acme's stored 1.00", rs[1].Record.Transaction.Amount)
	}
	g, err := s.Get(ctx, "globex", "42")
	if err != nil || g.Transaction.Amount.String() != "2.00" || g.Tenant != "globex" {
		t.Errorf("Get(globex, 42) = %+v, %v; want globex's 2.00", g, err)
	}
	if _, err := s.Get(ctx, "initech", "42"); !errors.Is(err, transactions.ErrNotFound) {
		t.Errorf("Get(initech, 42): %v, want ErrNotFound", err)
	}
	// globex's outcome does not show on acme's transaction.
	if _, err := pool.Exec(ctx, `INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at) VALUES ('globex', '42', 'failed', 'x', now())`); err != nil {
		t.Fatal(err)
	}
	for tenant, want := range map[string]txmodel.Status{"acme": txmodel.StatusReceived, "globex": txmodel.StatusFailed} {
		p, err := s.List(ctx, transactions.Filter{Tenant: tenant, Limit: 10})
		if err != nil || len(p.Records) != 1 || p.Records[0].Status() != want {
			t.Errorf("List(%s) = %+v, %v; want its one transaction, %s", tenant, p.Records, err, want)
		}
	}
	var tenants []string
	rows, err := pool.Query(ctx, `SELECT tenant FROM outbox ORDER BY tenant`)
	if err != nil {
		t.Fatal(err)
	}
	if tenants, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"acme", "globex"}, tenants); diff != "" {
		t.Errorf("outbox tenants (-want +got):\n%s", diff)
	}
}

// TestConcurrentBatchesDoNotDeadlock: two batches holding the same new
// ids in opposite orders wait for each other in one order (the store
// sorts them), never in a cycle that PostgreSQL breaks by failing one.
func TestConcurrentBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for round := range 20 {
		var forward, backward []transactions.Entry
		for i := range 200 {
			forward = append(forward, newTx(t, fmt.Sprintf("r%d-%03d", round, i), "1", "USD"))
		}
		for i := len(forward) - 1; i >= 0; i-- {
			backward = append(backward, forward[i])
		}
		errs := make(chan error, 2)
		for _, items := range [][]transactions.Entry{forward, backward} {
			go func() {
				_, err := s.Insert(ctx, items)
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
