// Package worker turns queue deliveries into conversions: it decodes each
// message, runs the use case inside a CONSUMER span that continues the
// api's trace, and settles the delivery by the outcome: ack once recorded,
// retry later through the delay queues while the rates provider is away,
// dead-letter what cannot be read or what outlived every retry.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/convert"
)

// Converter is the use case.
type Converter interface {
	// Process converts and records; errors wrap convert.ErrRatesUnavailable
	// (retry later) or store.ErrUnavailable (the database stayed away).
	Process(ctx context.Context, tx txmodel.Transaction, attempts int) (convert.Result, error)
	// Fail records a failure with its reason.
	Fail(ctx context.Context, transactionID, reason string, attempts int) (convert.Result, error)
}

var _ Converter = (*convert.Service)(nil)

// Retrier schedules a delivery for later or dead-letters it; both ack it
// once the broker confirmed the copy.
type Retrier interface {
	// Retry returns an error wrapping amqpx.ErrRetriesExhausted when no
	// retry is left.
	Retry(ctx context.Context, d amqpx.Delivery, reason string) error
	DeadLetter(ctx context.Context, d amqpx.Delivery, reason string) error
}

var _ Retrier = (*amqpx.Retrier)(nil)

// Worker handles deliveries of the work queue.
type Worker struct {
	conv    Converter
	retrier Retrier
	queue   string
	log     *slog.Logger
	metrics *telemetry.Metrics
	tracer  trace.Tracer
	prop    propagation.TextMapPropagator
	now     func() time.Time

	// The series every message touches, looked up once: a lookup by
	// name builds the prefixed name, an allocation per message.
	consumed, processed *metrics.Counter
	handling, latency   *metrics.PrometheusHistogram
}

// New returns a Worker for deliveries of queue and registers its metrics
// in m.
func New(conv Converter, retrier Retrier, queue string, log *slog.Logger, m *telemetry.Metrics, now func() time.Time) *Worker {
	// Every series exists at zero from the start, so that dashboards and
	// alerts see a rate of zero, not an absent series, before the first
	// failure or dead letter.
	for _, name := range []string{
		"messages_consumed_total", "messages_requeued_total", "messages_retried_total", "messages_duplicate_total",
		"transactions_processed_total", "transactions_failed_total",
		telemetry.MetricName("messages_dead_lettered_total", "reason", "retries_exhausted"),
		telemetry.MetricName("messages_dead_lettered_total", "reason", "invalid_message"),
	} {
		m.Counter(name)
	}
	return &Worker{
		conv: conv, retrier: retrier, queue: queue, log: log, metrics: m, now: now,
		consumed:  m.Counter("messages_consumed_total"),
		processed: m.Counter("transactions_processed_total"),
		handling:  m.Histogram("message_handling_duration_seconds", telemetry.LatencyBuckets()),
		latency:   m.Histogram("pipeline_latency_seconds", telemetry.LatencyBuckets()),
		tracer:    otel.Tracer("github.com/txpersister/txpersister/services/converter/internal/worker"),
		prop:      otel.GetTextMapPropagator(),
	}
}

// Handle processes and settles one delivery; it is an amqpx.Handler.
func (w *Worker) Handle(ctx context.Context, d amqpx.Delivery) {
	start := w.now()
	ctx = w.prop.Extract(ctx, amqpx.HeaderCarrier(d.Headers))
	// RabbitMQ's conventions: the destination is the exchange the message
	// was published to (with its routing key); the queue it was consumed
	// from is the subscription.
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "rabbitmq"),
		attribute.String("messaging.operation.name", "process"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", d.Exchange),
		attribute.String("messaging.destination.subscription.name", w.queue),
		attribute.String("messaging.message.id", d.MessageId),
		attribute.Int("messaging.rabbitmq.message.delivery_tag", int(d.DeliveryTag)), //nolint:gosec // G115: a channel's delivery count, far below 2^63
		attribute.Int("messaging.rabbitmq.attempt", amqpx.Attempt(d)),
	}
	if d.RoutingKey != "" {
		attrs = append(attrs, attribute.String("messaging.rabbitmq.destination.routing_key", d.RoutingKey))
	}
	ctx, span := w.tracer.Start(ctx, "process "+w.queue,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	defer span.End()
	w.consumed.Inc()
	log := w.log.With("transaction_id", d.MessageId, "attempt", amqpx.Attempt(d)+1)

	err := w.handle(ctx, d, log)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		// The delivery could not be settled as it should: give it back for
		// redelivery rather than drop it.
		if nerr := d.Nack(true); nerr != nil && !errors.Is(nerr, amqpx.ErrAlreadySettled) {
			log.ErrorContext(ctx, "nack failed; the broker redelivers after the channel closes", "err", nerr)
		}
		w.metrics.Counter("messages_requeued_total").Inc()
		log.WarnContext(ctx, "message requeued", "err", err)
	}
	w.handling.UpdateDuration(start)
}

func (w *Worker) handle(ctx context.Context, d amqpx.Delivery, log *slog.Logger) error {
	attempts := amqpx.Attempt(d) + 1
	tx, receivedAt, err := txmodel.DecodeMessage(d.Body)
	if err != nil {
		return w.undecodable(ctx, d, err, attempts, log)
	}
	res, err := w.conv.Process(ctx, tx, attempts)
	switch {
	case err == nil:
		if err := d.Ack(); err != nil {
			// Recorded already: a redelivery will find it so and change nothing.
			log.WarnContext(ctx, "ack after recording failed", "err", err)
		}
		w.recorded(ctx, res, receivedAt, log)
		return nil
	case errors.Is(err, convert.ErrRatesUnavailable):
		return w.retry(ctx, d, tx.ID, err, attempts, log)
	default:
		return err
	}
}

// retry schedules d for later, or records the failure and dead-letters it
// when no retry is left.
func (w *Worker) retry(ctx context.Context, d amqpx.Delivery, id string, cause error, attempts int, log *slog.Logger) error {
	err := w.retrier.Retry(ctx, d, cause.Error())
	if err == nil {
		w.metrics.Counter("messages_retried_total").Inc()
		log.WarnContext(ctx, "rates provider unavailable; retry scheduled", "err", cause)
		return nil
	}
	if !errors.Is(err, amqpx.ErrRetriesExhausted) {
		return fmt.Errorf("schedule retry: %w", err)
	}
	reason := fmt.Sprintf("rates provider unavailable after %d attempts: %v", attempts, cause)
	res, err := w.conv.Fail(ctx, id, reason, attempts)
	if err != nil {
		return err
	}
	if err := w.retrier.DeadLetter(ctx, d, reason); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	w.metrics.Counter(telemetry.MetricName("messages_dead_lettered_total", "reason", "retries_exhausted")).Inc()
	w.recorded(ctx, res, time.Time{}, log)
	return nil
}

// undecodable dead-letters a message that is not a valid transaction and,
// when it names its transaction, records the failure so its status says so.
func (w *Worker) undecodable(ctx context.Context, d amqpx.Delivery, cause error, attempts int, log *slog.Logger) error {
	reason := "invalid message: " + cause.Error()
	if id := messageTransactionID(d); id != "" {
		res, err := w.conv.Fail(ctx, id, reason, attempts)
		if err != nil {
			return err
		}
		w.recorded(ctx, res, time.Time{}, log)
	}
	if err := w.retrier.DeadLetter(ctx, d, reason); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	w.metrics.Counter(telemetry.MetricName("messages_dead_lettered_total", "reason", "invalid_message")).Inc()
	log.ErrorContext(ctx, "message dead-lettered", "reason", reason)
	return nil
}

// messageTransactionID is the transaction a message is about: its AMQP
// message id, or the transaction_id inside a body that is JSON but invalid.
func messageTransactionID(d amqpx.Delivery) string {
	if d.MessageId != "" {
		return d.MessageId
	}
	var m struct {
		ID string `json:"transaction_id"`
	}
	if json.Unmarshal(d.Body, &m) == nil {
		return m.ID
	}
	return ""
}

// recorded logs and counts an outcome.
func (w *Worker) recorded(ctx context.Context, res convert.Result, receivedAt time.Time, log *slog.Logger) {
	c := res.Conversion
	if !res.Recorded {
		w.metrics.Counter("messages_duplicate_total").Inc()
		log.InfoContext(ctx, "outcome recorded before; nothing changed")
		return
	}
	switch c.Status {
	case txmodel.StatusProcessed:
		w.processed.Inc()
		if !receivedAt.IsZero() {
			w.latency.Update(c.ProcessedAt.Sub(receivedAt).Seconds())
		}
		// The attributes cost allocations; build them only to be written.
		if log.Enabled(ctx, slog.LevelInfo) {
			log.InfoContext(ctx, "transaction processed", "converted_amount", c.Converted.String(), "target_currency", c.Converted.Currency.Code(),
				"exchange_rate", c.Rate.Value.String(), "rate_date", c.Rate.Date.Format(time.DateOnly))
		}
	default:
		w.metrics.Counter("transactions_failed_total").Inc()
		log.WarnContext(ctx, "transaction failed", "reason", c.FailureReason)
	}
}
