package worker

import (
	"context"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/txmodel"
)

// handleBatch processes the transactions of a batch message, each as if
// it had come alone: its own delivery, its own trace (a child of its own
// trace context, which it carries), its own outcome. A transaction that
// needs a retry, waits for its rate or has failed is handed on alone (a
// delay queue, the wait queue, the DLQ). The batch is acked once every
// transaction is committed or handed on; if one could not be (the
// database or the broker away, the converter stopping), the batch goes
// back to the queue whole, and its transactions done already change
// nothing when they come again (the first outcome stands).
//
// The conversions of a batch share what concurrent transactions share:
// one rate lookup per currency and day (the rates client's cache and
// single flight), and multi-row writes of the outcomes (the store's
// batch saver).
func (w *Worker) handleBatch(ctx context.Context, d amqpx.Delivery) {
	// Batches in hand are bounded too: each holds its transactions
	// decoded until the last is settled.
	w.batchSlots <- struct{}{}
	defer func() { <-w.batchSlots }()
	w.batches.Inc()
	items, err := txmodel.DecodeBatch(d.Body)
	if err != nil {
		w.undecodableBatch(ctx, d, err)
		return
	}
	links := make([]trace.Link, 0, len(items))
	ackers := make([]itemAcker, len(items))
	deliveries := make([]amqpx.Delivery, len(items))
	for i, it := range items {
		deliveries[i] = itemDelivery(d, it, &ackers[i])
		sc := trace.SpanContextFromContext(w.prop.Extract(ctx, amqpx.HeaderCarrier(deliveries[i].Headers)))
		if sc.IsValid() {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	// The batch's own span, in a trace of its own: each transaction's
	// spans belong to the transaction's trace, and this one links to them.
	_, span := w.tracer.Start(ctx, "process "+w.queue+" batch", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationSubscriptionName(w.queue),
			semconv.MessagingMessageID(d.MessageId),
			semconv.MessagingBatchMessageCount(len(items)),
		))
	defer span.End()

	var wg sync.WaitGroup
	for i := range deliveries {
		w.items <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-w.items }()
			w.handleOne(ctx, deliveries[i])
		}()
	}
	wg.Wait()
	w.settleBatch(ctx, d, ackers, span)
}

// settleBatch acks d when every transaction of it was acked (committed or
// handed on), and gives it back to the queue otherwise.
func (w *Worker) settleBatch(ctx context.Context, d amqpx.Delivery, ackers []itemAcker, span trace.Span) {
	pending := 0
	for i := range ackers {
		if ackers[i].state.Load() != itemAcked {
			pending++
		}
	}
	span.SetAttributes(attribute.Int("txpersister.batch.pending", pending))
	if pending == 0 {
		if err := d.Ack(); err != nil {
			w.log.WarnContext(ctx, "ack of a batch message failed; the broker redelivers it and its transactions change nothing", "message_id", d.MessageId, "err", err)
		}
		return
	}
	if err := d.Nack(true); err != nil {
		w.log.ErrorContext(ctx, "nack of a batch message failed; the broker redelivers after the channel closes", "message_id", d.MessageId, "err", err)
	}
	w.requeued.Inc()
	w.log.WarnContext(ctx, "batch message requeued: some of its transactions could not be settled", "message_id", d.MessageId, "pending", pending, "items", len(ackers))
}

// undecodableBatch dead-letters a batch message that is not one: none of
// its transactions can be told apart, so none has its failure recorded.
func (w *Worker) undecodableBatch(ctx context.Context, d amqpx.Delivery, cause error) {
	log := w.log.With("message_id", d.MessageId)
	if err := w.deadLetter(ctx, d, "invalid batch message: "+cause.Error(), reasonInvalidMessage, log); err != nil {
		if nerr := d.Nack(true); nerr != nil {
			log.ErrorContext(ctx, "nack failed; the broker redelivers after the channel closes", "err", nerr)
		}
		w.requeued.Inc()
		log.WarnContext(ctx, "batch message requeued", "err", err)
	}
}

// itemDelivery is the delivery a transaction of batch d would have been
// alone, settled through a: handed on alone, it is published as the
// single message it would have been.
func itemDelivery(d amqpx.Delivery, it txmodel.BatchItem, a *itemAcker) amqpx.Delivery {
	headers := make(amqp.Table, len(it.Headers))
	for k, v := range it.Headers {
		headers[k] = v
	}
	id := it.MessageID
	if len(id) > maxMessageID {
		id = "" // as the relay sends it alone: the body names it
	}
	return amqpx.NewDelivery(amqp.Delivery{
		Acknowledger: a,
		Headers:      headers,
		ContentType:  txmodel.MessageContentType,
		Type:         txmodel.MessageType,
		MessageId:    id,
		Timestamp:    d.Timestamp,
		DeliveryTag:  d.DeliveryTag,
		Redelivered:  d.Redelivered,
		Exchange:     d.Exchange,
		RoutingKey:   d.RoutingKey,
		Body:         it.Body,
	})
}

// maxMessageID is the most bytes an AMQP message-id holds.
const maxMessageID = 255

// The states of an itemAcker.
const (
	itemPending int32 = iota
	itemAcked
	itemNacked
)

// itemAcker settles one transaction of a batch: it remembers how, and the
// batch is settled with the broker once all are.
type itemAcker struct{ state atomic.Int32 }

func (a *itemAcker) Ack(uint64, bool) error { a.state.Store(itemAcked); return nil }

// Nack, with or without requeue, leaves the transaction to the batch's
// redelivery: the worker hands a failed transaction on itself (the DLQ),
// and never asks the broker to drop one.
func (a *itemAcker) Nack(uint64, bool, bool) error { a.state.Store(itemNacked); return nil }

func (a *itemAcker) Reject(uint64, bool) error { a.state.Store(itemNacked); return nil }
