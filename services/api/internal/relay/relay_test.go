package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/store"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/schema"
)

// fakePublisher records confirmed messages; while down, it confirms nothing.
type fakePublisher struct {
	mu        sync.Mutex
	down      bool
	published []amqpx.Message
	failures  int
}

func (p *fakePublisher) Publish(_ context.Context, msgs ...amqpx.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		p.failures++
		return fmt.Errorf("publish: %w", amqpx.ErrNotConfirmed)
	}
	p.published = append(p.published, msgs...)
	return nil
}

func (p *fakePublisher) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

func (p *fakePublisher) snapshot() ([]amqpx.Message, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]amqpx.Message(nil), p.published...), p.failures
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	url := pgtest.NewDatabase(t, schema.Migrate)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return store.New(pool)
}

func insert(t *testing.T, st *store.Store, ids ...string) {
	t.Helper()
	now := time.Now()
	var items []transactions.Entry
	for _, id := range ids {
		tx, err := txmodel.ParseTransaction([]byte(`{"transaction_id": "`+id+`", "user_id": "u", "amount": 1, "currency": "USD", "timestamp": "2024-09-11T00:00:00"}`), now)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: "acme", Transaction: tx, ReceivedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, transactions.Entry{
			Tenant: "acme", Transaction: tx, ReceivedAt: now, Message: msg,
			Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		})
	}
	if _, err := st.Insert(context.Background(), items); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelayPublishesAndCatchesUpAfterAnOutage: entries committed while the
// broker confirms nothing stay in the outbox, and all of them are published
// once it is back, each exactly as the converter expects it.
func TestRelayPublishesAndCatchesUpAfterAnOutage(t *testing.T) {
	t.Parallel()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	st := newStore(t)
	pub := &fakePublisher{down: true}
	// A long poll period: only Wake and the retry backoff wake it.
	r := New(st, Config{Exchange: "transactions", RoutingKey: "convert", BatchSize: 3, PollPeriod: time.Minute},
		slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, pub) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	insert(t, st, "a", "b", "c", "d", "e")
	r.Wake()
	waitFor(t, "failed publishes during the outage", func() bool { _, f := pub.snapshot(); return f >= 2 })
	if n, _, err := st.OutboxStats(context.Background()); err != nil || n != 5 {
		t.Fatalf("outbox during the outage holds %d (err %v), want 5", n, err)
	}

	pub.setDown(false)
	waitFor(t, "every entry published", func() bool { p, _ := pub.snapshot(); return len(p) >= 5 })
	waitFor(t, "an empty outbox", func() bool { n, _, err := st.OutboxStats(context.Background()); return err == nil && n == 0 })

	// After the outage, a new commit is relayed at once on its writer's
	// Wake, long before the minute-long poll period.
	insert(t, st, "f")
	r.Wake()
	waitFor(t, "the entry committed after the outage", func() bool { p, _ := pub.snapshot(); return len(p) == 6 })

	got, _ := pub.snapshot()
	seen := map[string]bool{}
	for _, m := range got {
		seen[m.MessageID] = true
		if m.Exchange != "transactions" || m.RoutingKey != "convert" || m.ContentType != txmodel.MessageContentType || m.Type != txmodel.MessageType {
			t.Errorf("message %s routed as %+v", m.MessageID, m)
		}
		e, err := txmodel.DecodeMessage(m.Body)
		if err != nil || e.Transaction.ID != m.MessageID || e.Tenant != "acme" || m.Headers[txmodel.MessageTenantHeader] != "acme" {
			t.Errorf("message %s: tenant %q, header %v, err %v; want the tenant acme in body and header", m.MessageID, e.Tenant, m.Headers[txmodel.MessageTenantHeader], err)
		}
		// The PRODUCER span continues the request's trace.
		tp, _ := m.Headers["traceparent"].(string)
		if len(tp) < 36 || tp[3:35] != "0af7651916cd43dd8448eb211c80319c" {
			t.Errorf("message %s traceparent %q does not continue the request's trace", m.MessageID, tp)
		}
	}
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		if !seen[id] {
			t.Errorf("transaction %s never published", id)
		}
	}
}

func TestMessageIDFitsAnAMQPShortString(t *testing.T) {
	for _, tt := range []struct{ id, want string }{
		{"tx-1", "tx-1"},
		{strings.Repeat("a", 128), strings.Repeat("a", 128)},
		{strings.Repeat("é", 127), strings.Repeat("é", 127)}, // 254 bytes
		{strings.Repeat("é", 128), ""},                       // 256 bytes
		{strings.Repeat("😀", txmodel.MaxIDLength), ""},       // 512 bytes
	} {
		if got := messageID(tt.id); got != tt.want {
			t.Errorf("messageID(%d bytes) = %d bytes, want %d", len(tt.id), len(got), len(tt.want))
		}
	}
}

// TestRelayPacksBatches: with MessageMax above 1, entries travel in batch
// messages of at most MessageMax items, each item the message it would
// have been alone, with its own trace context and tenant; an entry whose
// payload is no JSON object travels alone.
func TestRelayPacksBatches(t *testing.T) {
	t.Parallel()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	st := newStore(t)
	insert(t, st, "a", "b", "c", "d", "e")
	one, err := txmodel.ParseDecimal("1")
	if err != nil {
		t.Fatal(err)
	}
	bad := transactions.Entry{
		Tenant:      "acme",
		Transaction: txmodel.Transaction{ID: "z", UserID: "u", Amount: txmodel.Money{Amount: one, Currency: txmodel.MustCurrency("EUR")}, Timestamp: time.Now()},
		ReceivedAt:  time.Now(), Message: []byte("not json"),
	}
	if _, err := st.Insert(context.Background(), []transactions.Entry{bad}); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	m := telemetry.NewMetrics("test_")
	r := New(st, Config{Exchange: "transactions", RoutingKey: "convert", BatchSize: 10, PollPeriod: time.Minute, MessageMax: 2},
		slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, pub) }()
	waitFor(t, "an empty outbox", func() bool { n, _, err := st.OutboxStats(context.Background()); return err == nil && n == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	got, _ := pub.snapshot()
	var ids []string
	batches := 0
	for _, msg := range got {
		if msg.Type == txmodel.MessageType {
			ids = append(ids, msg.MessageID)
			if msg.MessageID != "z" {
				t.Errorf("%s travelled alone, want in a batch", msg.MessageID)
			}
			continue
		}
		batches++
		items, err := txmodel.DecodeBatch(msg.Body)
		if err != nil || msg.Type != txmodel.BatchMessageType || len(items) > 2 {
			t.Fatalf("batch %s: type %q, %d items, %v", msg.MessageID, msg.Type, len(items), err)
		}
		for _, it := range items {
			ids = append(ids, it.MessageID)
			e, err := txmodel.DecodeMessage(it.Body)
			if err != nil || e.Transaction.ID != it.MessageID || it.Headers[txmodel.MessageTenantHeader] != "acme" {
				t.Errorf("item %s: %+v, headers %v, %v", it.MessageID, e, it.Headers, err)
			}
			if tp := it.Headers["traceparent"]; len(tp) < 36 || tp[3:35] != "0af7651916cd43dd8448eb211c80319c" {
				t.Errorf("item %s traceparent %q does not continue the request's trace", it.MessageID, tp)
			}
		}
	}
	slices.Sort(ids)
	if want := []string{"a", "b", "c", "d", "e", "z"}; !slices.Equal(ids, want) || batches != 3 {
		t.Errorf("published %v in %d batches, want %v in 3", ids, batches, want)
	}
	var out strings.Builder
	m.WritePrometheus(&out)
	for _, series := range []string{"test_outbox_published_total 6", "test_outbox_messages_published_total 4"} {
		if !strings.Contains(out.String(), series) {
			t.Errorf("metrics lack %q", series)
		}
	}
}
