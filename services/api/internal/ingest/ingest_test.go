package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// slowStore creates everything it is given, one round trip per Insert that
// takes a while, and counts the round trips.
type slowStore struct {
	Store
	inserts atomic.Int64
	items   atomic.Int64
	mu      sync.Mutex
	headers []map[string]string
}

func (s *slowStore) Insert(_ context.Context, items []transactions.Entry) ([]transactions.Result, error) {
	s.inserts.Add(1)
	s.items.Add(int64(len(items)))
	time.Sleep(20 * time.Millisecond)
	out := make([]transactions.Result, len(items))
	s.mu.Lock()
	for i, it := range items {
		out[i] = transactions.Result{Outcome: transactions.Created, Record: transactions.Record{Transaction: it.Transaction, ReceivedAt: it.ReceivedAt}}
		s.headers = append(s.headers, it.Headers)
	}
	s.mu.Unlock()
	return out, nil
}

func tx(t *testing.T, id string) txmodel.Transaction {
	t.Helper()
	got, err := txmodel.ParseTransaction([]byte(fmt.Sprintf(`{"transaction_id": %q, "user_id": "u", "amount": 1, "currency": "USD", "timestamp": "2024-09-11T00:00:00"}`, id)), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestConcurrentAcceptsShareRoundTrips(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	st := &slowStore{}
	svc := New(st, time.Now, BatchConfig{Flushers: 2, MaxSize: 100}, nil)
	defer svc.Close()
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each request has its own trace, which must travel with its own transaction.
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{byte(i + 1), 1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled})
			ctx := trace.ContextWithSpanContext(context.Background(), sc)
			res, err := svc.Accept(ctx, "acme", tx(t, fmt.Sprint("t", i)))
			if err != nil || res.Outcome != transactions.Created || res.Record.Transaction.ID != fmt.Sprint("t", i) {
				t.Errorf("Accept %d = %+v, %v", i, res, err)
			}
		}()
	}
	wg.Wait()
	if st.items.Load() != n {
		t.Fatalf("%d transactions written, want %d", st.items.Load(), n)
	}
	if st.inserts.Load() > n/4 {
		t.Errorf("%d round trips for %d concurrent requests: they were not shared", st.inserts.Load(), n)
	}
	seen := map[string]bool{}
	for _, h := range st.headers {
		seen[h["traceparent"]] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct trace contexts stored, want %d", len(seen), n)
	}
}

// outcomeStore answers every Insert with one outcome, or fails.
type outcomeStore struct {
	Store
	outcome transactions.Outcome
	err     error
}

func (s outcomeStore) Insert(_ context.Context, items []transactions.Entry) ([]transactions.Result, error) {
	if s.err != nil {
		return nil, s.err
	}
	out := make([]transactions.Result, len(items))
	for i := range out {
		out[i] = transactions.Result{Outcome: s.outcome}
	}
	return out, nil
}

// TestCommittedWakesTheRelayOnlyForNewEntries: committed (the relay's
// Wake) follows every commit that created transactions, through Accept and
// AcceptBatch, and no commit that created none.
func TestCommittedWakesTheRelayOnlyForNewEntries(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store outcomeStore
		want  int
	}{
		{"created", outcomeStore{outcome: transactions.Created}, 2},
		{"replayed", outcomeStore{outcome: transactions.Replayed}, 0},
		{"conflict", outcomeStore{outcome: transactions.Conflict}, 0},
		{"failed", outcomeStore{err: transactions.ErrUnavailable}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			svc := New(tt.store, time.Now, BatchConfig{Flushers: 1, MaxSize: 10}, func() { calls.Add(1) })
			defer svc.Close()
			_, _ = svc.Accept(context.Background(), "acme", tx(t, "a"))
			_, _ = svc.AcceptBatch(context.Background(), "acme", []txmodel.Transaction{tx(t, "b"), tx(t, "c")})
			if got := calls.Load(); got != int64(tt.want) {
				t.Errorf("committed called %d times, want %d", got, tt.want)
			}
		})
	}
}
