package worker

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

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/convert"
	"github.com/txpersister/txpersister/services/converter/internal/store"
)

// idConverter processes each transaction as errs says for its id (nil:
// processed), safely from concurrent items.
type idConverter struct {
	errs      map[string]error
	mu        sync.Mutex
	processed []string
}

func (c *idConverter) Process(_ context.Context, tenant string, tx txmodel.Transaction, _ int) (convert.Result, error) {
	if err := c.errs[tx.ID]; err != nil {
		return convert.Result{}, err
	}
	c.mu.Lock()
	c.processed = append(c.processed, tenant+"/"+tx.ID)
	c.mu.Unlock()
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{Tenant: tenant, TransactionID: tx.ID, Status: txmodel.StatusProcessed}}, nil
}

func (c *idConverter) Fail(_ context.Context, tenant, id, reason string, _ int) (convert.Result, error) {
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{Tenant: tenant, TransactionID: id, Status: txmodel.StatusFailed, FailureReason: reason}}, nil
}

// copyRetrier records the copies a Retrier would publish, safely from
// concurrent items, and acks like amqpx.Retrier.
type copyRetrier struct {
	mu     sync.Mutex
	copies []amqpx.Message
}

func (r *copyRetrier) keep(d amqpx.Delivery, queue string) error {
	r.mu.Lock()
	r.copies = append(r.copies, amqpx.Republish(d.Delivery, "", queue, nil))
	r.mu.Unlock()
	return d.Ack()
}

func (r *copyRetrier) Retry(_ context.Context, d amqpx.Delivery, _ string) error {
	return r.keep(d, "retry")
}

func (r *copyRetrier) Wait(_ context.Context, d amqpx.Delivery, _ string) error {
	return r.keep(d, "wait")
}

func (r *copyRetrier) DeadLetter(_ context.Context, d amqpx.Delivery, reason string) error {
	return r.keep(d, "dlq: "+reason)
}

func batchOf(t *testing.T, ids ...string) []byte {
	t.Helper()
	var items []txmodel.BatchItem
	for _, id := range ids {
		tx, err := txmodel.ParseTransaction([]byte(fmt.Sprintf(`{"transaction_id": %q, "user_id": "u", "amount": 1, "currency": "USD", "timestamp": "2024-09-11T00:00:00"}`, id)), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: "acme", Transaction: tx, ReceivedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, txmodel.BatchItem{MessageID: id, Headers: map[string]string{txmodel.MessageTenantHeader: "acme"}, Body: b})
	}
	b, err := txmodel.EncodeBatch(items)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func batchDelivery(body []byte) (amqpx.Delivery, *acker) {
	a := &acker{}
	return amqpx.NewDelivery(amqp.Delivery{Acknowledger: a, Body: body, Type: txmodel.BatchMessageType, MessageId: "outbox-1+4", DeliveryTag: 7}), a
}

// TestBatchSettlesEachTransaction: each transaction of a batch has its
// own outcome; one that needs a retry or waits is handed on alone, as the
// single message it would have been; the batch is acked once all are
// settled.
func TestBatchSettlesEachTransaction(t *testing.T) {
	conv := &idConverter{errs: map[string]error{
		"c": fmt.Errorf("x: %w", convert.ErrRatesUnavailable),
		"d": fmt.Errorf("x: %w", &convert.WaitError{Asked: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), Latest: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)}),
	}}
	r := &copyRetrier{}
	m := telemetry.NewMetrics("test_")
	w := New(conv, r, amqpx.Topology{Queue: "q"}, discard(), m, time.Now, WithItemConcurrency(2))
	d, a := batchDelivery(batchOf(t, "a", "b", "c", "d", "e"))
	w.Handle(context.Background(), d)
	if !a.acked || a.nacked {
		t.Errorf("batch acked %v, nacked %v; want acked", a.acked, a.nacked)
	}
	slices.Sort(conv.processed)
	if want := []string{"acme/a", "acme/b", "acme/e"}; !slices.Equal(conv.processed, want) {
		t.Errorf("processed %v, want %v", conv.processed, want)
	}
	var handedOn []string
	for _, c := range r.copies {
		handedOn = append(handedOn, c.RoutingKey+":"+c.MessageID)
		e, err := txmodel.DecodeMessage(c.Body)
		if c.Type != txmodel.MessageType || err != nil || e.Transaction.ID != c.MessageID || c.Headers[txmodel.MessageTenantHeader] != "acme" {
			t.Errorf("copy %s: type %q, tenant header %v, %+v, %v; want the single message of %s", c.MessageID, c.Type, c.Headers[txmodel.MessageTenantHeader], e, err, c.MessageID)
		}
	}
	slices.Sort(handedOn)
	if want := []string{"retry:c", "wait:d"}; !slices.Equal(handedOn, want) {
		t.Errorf("handed on %v, want %v", handedOn, want)
	}
	if got := m.Counter("messages_consumed_total").Get(); got != 5 {
		t.Errorf("messages_consumed_total = %d, want one per transaction, 5", got)
	}
	if got := m.Counter("batch_messages_consumed_total").Get(); got != 1 {
		t.Errorf("batch_messages_consumed_total = %d, want 1", got)
	}
}

// TestBatchRequeuedWhenATransactionCannotBeSettled: the database away for
// one transaction gives the whole batch back; the others, recorded, change
// nothing when they come again.
func TestBatchRequeuedWhenATransactionCannotBeSettled(t *testing.T) {
	conv := &idConverter{errs: map[string]error{"b": fmt.Errorf("x: %w", store.ErrUnavailable)}}
	w := New(conv, &copyRetrier{}, amqpx.Topology{Queue: "q"}, discard(), telemetry.NewMetrics("test_"), time.Now)
	d, a := batchDelivery(batchOf(t, "a", "b", "c"))
	w.Handle(context.Background(), d)
	if a.acked || !a.nacked || !a.requeued {
		t.Errorf("batch acked %v, nacked %v, requeued %v; want requeued", a.acked, a.nacked, a.requeued)
	}
	if len(conv.processed) != 2 {
		t.Errorf("processed %v, want a and c", conv.processed)
	}
}

// TestUndecodableBatchIsDeadLettered: a batch that cannot be read goes to
// the DLQ whole, saying why.
func TestUndecodableBatchIsDeadLettered(t *testing.T) {
	r := &copyRetrier{}
	m := telemetry.NewMetrics("test_")
	w := New(&idConverter{}, r, amqpx.Topology{Queue: "q"}, discard(), m, time.Now)
	d, a := batchDelivery([]byte(`{"version": 1, "items": []}`))
	w.Handle(context.Background(), d)
	if !a.acked || len(r.copies) != 1 || !strings.HasPrefix(r.copies[0].RoutingKey, "dlq: invalid batch message") || r.copies[0].Type != txmodel.BatchMessageType {
		t.Errorf("acked %v, copies %+v; want the batch in the DLQ", a.acked, r.copies)
	}
	if got := m.Counter(telemetry.MetricName("messages_dead_lettered_total", "reason", "invalid_message")).Get(); got != 1 {
		t.Errorf("dead-lettered invalid = %d, want 1", got)
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// nopConverter processes every transaction, recording nothing.
type nopConverter struct{}

func (nopConverter) Process(_ context.Context, tenant string, tx txmodel.Transaction, _ int) (convert.Result, error) {
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{Tenant: tenant, TransactionID: tx.ID, Status: txmodel.StatusProcessed}}, nil
}

func (nopConverter) Fail(_ context.Context, tenant, id, reason string, _ int) (convert.Result, error) {
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{Tenant: tenant, TransactionID: id, Status: txmodel.StatusFailed, FailureReason: reason}}, nil
}

// BenchmarkHandleBatch is the worker's own cost of a batch message of 100
// transactions, every one processed: decoding, the per-transaction
// deliveries, spans (the global tracer, a no-op here), logger and metrics,
// and the settling; the conversion and its write are a no-op. Logs go to a
// JSON handler at warn, as in the load runs (LOG_LEVEL=warn).
func BenchmarkHandleBatch(b *testing.B) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("tx-%03d", i)
	}
	t := &testing.T{}
	body := batchOf(t, ids...)
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := New(nopConverter{}, &copyRetrier{}, amqpx.Topology{Queue: "q"}, log, telemetry.NewMetrics("bench_"), time.Now)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, a := batchDelivery(body)
		w.Handle(ctx, d)
		if !a.acked {
			b.Fatal("batch not acked")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(ids)), "ns/tx")
}
