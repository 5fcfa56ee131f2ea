package store

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/internal/webhooks"
	"github.com/txpersister/txpersister/services/api/internal/wire"
)

func newEndpoint(tenant string, events ...string) webhooks.Endpoint {
	return webhooks.Endpoint{
		Tenant: tenant, ID: webhooks.NewEndpointID(), URL: "https://example.com/hook", Events: events,
		Secret: webhooks.NewSecret(), CreatedAt: received,
	}
}

func TestEndpointsAreTheTenants(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := newEndpoint("acme", webhooks.EventProcessed), newEndpoint("other", webhooks.EventFailed)
	for _, e := range []webhooks.Endpoint{a, b} {
		if err := s.CreateEndpoint(ctx, e, 2); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Endpoints(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]webhooks.Endpoint{a}, got); diff != "" {
		t.Errorf("acme's endpoints (-want +got):\n%s", diff)
	}
	if _, err := s.Endpoint(ctx, "acme", b.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("another tenant's endpoint: %v, want ErrNotFound", err)
	}
	if err := s.DeleteEndpoint(ctx, "acme", b.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("deleting another tenant's endpoint: %v, want ErrNotFound", err)
	}
	until := received.Add(24 * time.Hour)
	rotated, err := s.RotateSecret(ctx, "acme", a.ID, "whsec_bmV3", until)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Secret != "whsec_bmV3" || rotated.PreviousSecret != a.Secret || !rotated.PreviousSecretUntil.Equal(until) {
		t.Errorf("rotated: secret %q, previous %q until %v; want the new one, %q until %v", rotated.Secret, rotated.PreviousSecret, rotated.PreviousSecretUntil, a.Secret, until)
	}
	if got := rotated.Secrets(until.Add(-time.Second)); len(got) != 2 {
		t.Errorf("secrets during the overlap: %d, want both", len(got))
	}
	if got := rotated.Secrets(until); len(got) != 1 || got[0] != "whsec_bmV3" {
		t.Errorf("secrets after the overlap: %v, want the new one only", got)
	}
	if err := s.DeleteEndpoint(ctx, "acme", a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Endpoint(ctx, "acme", a.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("a deleted endpoint: %v, want ErrNotFound", err)
	}
}

func TestCreateEndpointKeepsToTheLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	const limit, tries = 3, 12
	var wg sync.WaitGroup
	errs := make([]error, tries)
	for i := range tries {
		wg.Go(func() { errs[i] = s.CreateEndpoint(ctx, newEndpoint("acme", webhooks.EventProcessed), limit) })
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		case !errors.Is(err, webhooks.ErrLimit):
			t.Errorf("CreateEndpoint: %v, want nil or ErrLimit", err)
		}
	}
	if created != limit {
		t.Errorf("%d endpoints created by %d at once, want the limit, %d", created, tries, limit)
	}
}

// settle gives the transactions outcomes: id → "processed" or "failed".
func settle(t *testing.T, pool *pgxpool.Pool, tenant string, outcomes map[string]string) {
	t.Helper()
	for id, status := range outcomes {
		var err error
		if status == "failed" {
			_, err = pool.Exec(context.Background(), `INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at)
				VALUES ($1, $2, 'failed', 'no rate', '2024-09-11T12:00:05Z')`, tenant, id)
		} else {
			_, err = pool.Exec(context.Background(), `INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, processed_at, rate_rule)
				VALUES ($1, $2, 'processed', 0.9, 'EUR', 0.9, '2024-09-11', '2024-09-11T12:00:05Z', 'day')`, tenant, id)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func sweepAll(t *testing.T, s *Store) (messages int) {
	t.Helper()
	for {
		p, f, n, err := s.Sweep(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		messages += n
		if p+f == 0 {
			return messages
		}
	}
}

// processed stores acme's transactions ids, processed, and sweeps: the
// news of each outcome recorded. It returns how many messages the sweep
// recorded.
func processed(t *testing.T, s *Store, pool *pgxpool.Pool, ids ...string) int {
	t.Helper()
	items, outcomes := make([]transactions.Entry, len(ids)), map[string]string{}
	for i, id := range ids {
		items[i], outcomes[id] = newTx(t, id, "1", "USD"), "processed"
	}
	if _, err := s.Insert(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	settle(t, pool, "acme", outcomes)
	return sweepAll(t, s)
}

func TestSweepRecordsTheNewsOfEachOutcomeForItsSubscribers(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	// acme hears of both events at one endpoint and of failures at
	// another; other, a tenant with no endpoint, hears nothing; and quiet
	// hears of failures only, and has none.
	all, failures := newEndpoint("acme", webhooks.EventProcessed, webhooks.EventFailed), newEndpoint("acme", webhooks.EventFailed)
	for _, e := range []webhooks.Endpoint{all, failures, newEndpoint("quiet", webhooks.EventFailed)} {
		if err := s.CreateEndpoint(ctx, e, 10); err != nil {
			t.Fatal(err)
		}
	}
	var items []transactions.Entry
	for _, id := range []string{"p1", "f1", "r1"} {
		items = append(items, newTx(t, id, "1", "USD"))
	}
	other, quiet := newTx(t, "p1", "1", "USD"), newTx(t, "p1", "1", "USD")
	other.Tenant, quiet.Tenant = "other", "quiet"
	if _, err := s.Insert(ctx, append(items, other, quiet)); err != nil {
		t.Fatal(err)
	}
	settle(t, pool, "acme", map[string]string{"p1": "processed", "f1": "failed"})
	settle(t, pool, "other", map[string]string{"p1": "processed"})
	settle(t, pool, "quiet", map[string]string{"p1": "processed"})

	if n := sweepAll(t, s); n != 2 {
		t.Errorf("the sweep recorded %d messages, want 2 (p1's and f1's of acme)", n)
	}
	if n := sweepAll(t, s); n != 0 {
		t.Errorf("a second sweep recorded %d messages, want none: an outcome is news once", n)
	}
	// Each message's body is the transaction as GET answers it.
	rows, err := pool.Query(ctx, `SELECT m.transaction_id, m.event_type, d.endpoint_id, d.state, m.body
		FROM webhook_messages m JOIN webhook_deliveries d USING (tenant, message_id) WHERE m.tenant = 'acme' ORDER BY 1, 3`)
	if err != nil {
		t.Fatal(err)
	}
	type delivery struct{ ID, Event, Endpoint, State string }
	var got []delivery
	for rows.Next() {
		var d delivery
		var body []byte
		if err := rows.Scan(&d.ID, &d.Event, &d.Endpoint, &d.State, &body); err != nil {
			t.Fatal(err)
		}
		got = append(got, d)
		rec, err := s.Get(ctx, "acme", d.ID)
		if err != nil {
			t.Fatal(err)
		}
		var msg struct {
			Type, Timestamp string
			Data            wire.Transaction
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			t.Fatalf("body %s: %v", body, err)
		}
		if diff := cmp.Diff(wire.NewTransaction(rec), msg.Data); diff != "" {
			t.Errorf("%s's message data (-GET +message):\n%s", d.ID, diff)
		}
		if msg.Type != d.Event || msg.Timestamp != "2024-09-11T12:00:05Z" {
			t.Errorf("%s's message: type %q at %q, want %q at the outcome's time", d.ID, msg.Type, msg.Timestamp, d.Event)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []delivery{{"f1", webhooks.EventFailed, min(all.ID, failures.ID), "pending"}, {"f1", webhooks.EventFailed, max(all.ID, failures.ID), "pending"}, {"p1", webhooks.EventProcessed, all.ID, "pending"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestClaimLeasesRecordRetriesAndReplay(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	e := newEndpoint("acme", webhooks.EventProcessed)
	if err := s.CreateEndpoint(ctx, e, 10); err != nil {
		t.Fatal(err)
	}
	processed(t, s, pool, "p1")

	now := time.Now()
	const lease = time.Minute
	due, err := s.Claim(ctx, now, lease, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].Attempt != 1 || due[0].Try != 1 || due[0].URL != e.URL || len(due[0].Secrets) != 1 || due[0].Secrets[0] != e.Secret {
		t.Fatalf("claimed %+v, want p1's delivery, attempt 1, to the endpoint with its secret", due)
	}
	d := due[0]
	if again, err := s.Claim(ctx, now.Add(lease-time.Second), lease, 10); err != nil || len(again) != 0 {
		t.Fatalf("claimed %d during the lease (%v), want none", len(again), err)
	}
	// The lease ran out (the sender died): another takes it, attempt 2.
	later := now.Add(lease)
	again, err := s.Claim(ctx, later, lease, 10)
	if err != nil || len(again) != 1 || again[0].Attempt != 2 {
		t.Fatalf("after the lease: claimed %+v (%v), want attempt 2", again, err)
	}
	if err := s.Record(ctx, []webhooks.Result{{Due: again[0], StartedAt: later, Duration: 2 * time.Second, StatusCode: 503, Err: "answered 503", State: webhooks.StateFailed}}, 5*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	// The first sender's late record comes after the second's, and keeps
	// only its attempt: the delivery's state is the second's.
	if err := s.Record(ctx, []webhooks.Result{{Due: d, StartedAt: now, Duration: time.Second, StatusCode: 500, Err: "answered 500", State: webhooks.StatePending, Next: now.Add(time.Hour)}}, 5*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	as, err := s.Attempts(ctx, "acme", e.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []webhooks.Attempt{
		{MessageID: d.MessageID, EventType: webhooks.EventProcessed, TransactionID: "p1", Attempt: 2, StartedAt: later.UTC().Truncate(time.Microsecond), Duration: 2 * time.Second, StatusCode: 503, Error: "answered 503", State: "failed"},
		{MessageID: d.MessageID, EventType: webhooks.EventProcessed, TransactionID: "p1", Attempt: 1, StartedAt: now.UTC().Truncate(time.Microsecond), Duration: time.Second, StatusCode: 500, Error: "answered 500", State: "failed"},
	}
	if diff := cmp.Diff(want, as); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	ep, err := s.Endpoint(ctx, "acme", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ep.FailingSince.Equal(now.UTC().Truncate(time.Microsecond)) || !ep.DisabledAt.IsZero() {
		t.Errorf("endpoint failing since %v, disabled at %v; want since the first failure, enabled", ep.FailingSince, ep.DisabledAt)
	}
	// Replay from the start of the schedule.
	n, err := s.Replay(ctx, "acme", e.ID, received, received.Add(time.Hour), later)
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	if n, err := s.Replay(ctx, "acme", e.ID, received.Add(time.Hour), received.Add(2*time.Hour), later); err != nil || n != 0 {
		t.Errorf("Replay of a range without messages = %d, %v; want 0", n, err)
	}
	if _, err := s.Replay(ctx, "other", e.ID, received, received.Add(time.Hour), later); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("Replay to another tenant's endpoint: %v, want ErrNotFound", err)
	}
	third, err := s.Claim(ctx, later, lease, 10)
	if err != nil || len(third) != 1 || third[0].Attempt != 3 || third[0].Try != 1 || third[0].MessageID != d.MessageID {
		t.Fatalf("after the replay: claimed %+v (%v), want attempt 3, the schedule's first try, same webhook id", third, err)
	}
	if err := s.Record(ctx, []webhooks.Result{{Due: third[0], StartedAt: later, Duration: time.Millisecond, StatusCode: 204, State: webhooks.StateDelivered}}, 5*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if ep, _ := s.Endpoint(ctx, "acme", e.ID); !ep.FailingSince.IsZero() {
		t.Errorf("a delivery left the endpoint failing since %v", ep.FailingSince)
	}
	if b, err := s.Backlog(ctx, later); err != nil || b != (webhooks.Backlog{}) {
		t.Errorf("Backlog = %+v, %v; want none", b, err)
	}
	// Retention: a delivered message older than the cutoff goes, with its
	// deliveries and attempts; a younger one stays.
	if n, err := s.Prune(ctx, received, 10); err != nil || n != 0 {
		t.Errorf("Prune before the outcome = %d, %v; want 0", n, err)
	}
	if n, err := s.Prune(ctx, later, 10); err != nil || n != 1 {
		t.Errorf("Prune = %d, %v; want the one message", n, err)
	}
	if as, err := s.Attempts(ctx, "acme", e.ID, 10); err != nil || len(as) != 0 {
		t.Errorf("attempts after the prune: %d (%v), want none", len(as), err)
	}
}

func TestAnEndpointFailingLongEnoughIsDisabled(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t)
	ctx := context.Background()
	e := newEndpoint("acme", webhooks.EventProcessed)
	if err := s.CreateEndpoint(ctx, e, 10); err != nil {
		t.Fatal(err)
	}
	processed(t, s, pool, "p0", "p1", "p2")
	before := time.Now()
	if b, err := s.Backlog(ctx, before.Add(-time.Hour)); err != nil || b.Pending != 3 || !b.Oldest.Equal(time.Date(2024, 9, 11, 12, 0, 5, 0, time.UTC)) || !b.OldestDue.IsZero() {
		t.Errorf("Backlog an hour before they are due = %+v, %v; want 3 since the outcomes' time, none due", b, err)
	}
	if b, err := s.Backlog(ctx, before.Add(time.Hour)); err != nil || b.Pending != 3 || b.OldestDue.IsZero() || b.OldestDue.After(before) {
		t.Errorf("Backlog an hour after = %+v, %v; want 3, due since they were recorded", b, err)
	}
	const disableAfter = 5 * 24 * time.Hour
	now := time.Now()
	due, err := s.Claim(ctx, now, time.Minute, 1)
	if err != nil || len(due) != 1 {
		t.Fatalf("claimed %d (%v), want 1", len(due), err)
	}
	fail := func(d webhooks.Due, at time.Time) {
		t.Helper()
		if err := s.Record(ctx, []webhooks.Result{{Due: d, StartedAt: at, Err: "connection refused", State: webhooks.StatePending, Next: at.Add(time.Hour)}}, disableAfter); err != nil {
			t.Fatal(err)
		}
	}
	fail(due[0], now)
	next, err := s.Claim(ctx, now.Add(time.Hour), time.Minute, 1)
	if err != nil || len(next) != 1 {
		t.Fatalf("claimed %d (%v), want 1", len(next), err)
	}
	fail(next[0], now.Add(disableAfter-time.Second))
	if ep, _ := s.Endpoint(ctx, "acme", e.ID); !ep.DisabledAt.IsZero() {
		t.Fatalf("disabled after failing for less than %v", disableAfter)
	}
	last, err := s.Claim(ctx, now.Add(disableAfter), time.Minute, 1)
	if err != nil || len(last) != 1 {
		t.Fatalf("claimed %d (%v), want 1", len(last), err)
	}
	fail(last[0], now.Add(disableAfter))
	ep, err := s.Endpoint(ctx, "acme", e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ep.DisabledAt.IsZero() || ep.DisabledReason == "" {
		t.Fatalf("after failing for %v: disabled at %v (%q), want disabled with a reason", disableAfter, ep.DisabledAt, ep.DisabledReason)
	}
	if b, err := s.Backlog(ctx, now.Add(disableAfter)); err != nil || b.Pending != 0 {
		t.Errorf("Backlog of a disabled endpoint = %+v (%v), want none: its deliveries failed", b, err)
	}
	// News while disabled is kept, failed, for a replay.
	if n := processed(t, s, pool, "p9"); n != 1 {
		t.Errorf("recorded %d messages while disabled, want 1", n)
	}
	n, err := s.Replay(ctx, "acme", e.ID, received, now.Add(10*disableAfter), now.Add(disableAfter))
	if err != nil || n != 4 {
		t.Errorf("Replay = %d, %v; want all 4", n, err)
	}
	if ep, _ := s.Endpoint(ctx, "acme", e.ID); !ep.DisabledAt.IsZero() {
		t.Errorf("a replay left the endpoint disabled")
	}
	if n, err := s.Prune(ctx, now.Add(100*disableAfter), 10); err != nil || n != 0 {
		t.Errorf("Prune of messages still to send = %d, %v; want 0", n, err)
	}
	// Deleted: at once nothing is claimed or counted, and the prune
	// deletes the deliveries, then the endpoint.
	if err := s.DeleteEndpoint(ctx, "acme", e.ID); err != nil {
		t.Fatal(err)
	}
	if due, err := s.Claim(ctx, now.Add(100*disableAfter), time.Minute, 10); err != nil || len(due) != 0 {
		t.Errorf("claimed %d of a deleted endpoint (%v), want none", len(due), err)
	}
	if b, err := s.Backlog(ctx, now.Add(100*disableAfter)); err != nil || b.Pending != 0 {
		t.Errorf("Backlog of a deleted endpoint = %+v (%v), want none", b, err)
	}
	if n, err := s.Prune(ctx, received, 10); err != nil || n != 4 {
		t.Errorf("Prune after the delete = %d, %v; want its 4 deliveries", n, err)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM webhook_endpoints) + (SELECT count(*) FROM webhook_deliveries)`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("%d endpoint and delivery rows after the prune (%v), want none", rows, err)
	}
}
