// Package worker turns queue deliveries into conversions: it decodes each
// message, runs the use case inside a CONSUMER span that continues the
// api's trace, and settles the delivery by the outcome: ack once recorded;
// park it in the wait queue while its rate is not final; retry later
// through the delay queues while the rates provider is away; dead-letter,
// with the transaction recorded failed, what cannot be read, what outlived
// every retry, what PostgreSQL refuses and what made the converter panic.
// Nothing is handed back to the broker to be redelivered at once, but at
// shutdown.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/convert"
	"github.com/txpersister/txpersister/services/converter/internal/raterule"
	"github.com/txpersister/txpersister/services/converter/internal/store"
)

// Converter is the use case.
type Converter interface {
	// Process converts and records; errors wrap convert.ErrRatesUnavailable
	// (retry later), convert.ErrWaiting (a *convert.WaitError: wait for the
	// rate), store.ErrUnavailable (the database stayed away until shutdown)
	// or store.ErrRefused (the database refused even the failure).
	Process(ctx context.Context, tenant string, tx txmodel.Transaction, attempts int) (convert.Result, error)
	// Fail records a failure of tenant's transaction with its reason.
	Fail(ctx context.Context, tenant, transactionID, reason string, attempts int) (convert.Result, error)
}

var _ Converter = (*convert.Service)(nil)

// Retrier schedules a delivery for later or dead-letters it; each acks it
// once the broker confirmed the copy.
type Retrier interface {
	// Retry returns an error wrapping amqpx.ErrRetriesExhausted when no
	// retry is left.
	Retry(ctx context.Context, d amqpx.Delivery, reason string) error
	// Wait parks d for the topology's wait delay, using up no retry.
	Wait(ctx context.Context, d amqpx.Delivery, reason string) error
	DeadLetter(ctx context.Context, d amqpx.Delivery, reason string) error
}

var _ Retrier = (*amqpx.Retrier)(nil)

// Reasons a message is dead-lettered, the values of the reason label of
// messages_dead_lettered_total.
const (
	reasonRetriesExhausted = "retries_exhausted"
	reasonInvalidMessage   = "invalid_message"
	reasonRefused          = "refused"
	reasonPanic            = "panic"
)

// Worker handles deliveries of the work queue.
type Worker struct {
	conv      Converter
	retrier   Retrier
	queue     string
	waitDelay time.Duration
	log       *slog.Logger
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	now       func() time.Time
	waits     *waitTracker

	// The series, looked up once: a lookup by name builds the prefixed
	// name, an allocation per message.
	consumed, processed, failed, requeued, retried, duplicate, waiting, panics *metrics.Counter
	batches                                                                    *metrics.Counter
	// items bounds the transactions of batch messages converted at once,
	// batchSlots the batch messages in hand.
	items, batchSlots          chan struct{}
	deadLettered               map[string]*metrics.Counter
	handling, latency, rateAge *metrics.PrometheusHistogram
}

// maxBatchesInHand bounds the batch messages a Worker holds at once,
// decoded: with the relay's default of 100 transactions a message, 3,200
// transactions, three times DefaultItemConcurrency.
const maxBatchesInHand = 32

// DefaultItemConcurrency is how many transactions of batch messages are
// converted at once unless WithItemConcurrency says otherwise.
const DefaultItemConcurrency = 1024

type options struct{ itemConcurrency int }

// Option configures New.
type Option func(*options)

// WithItemConcurrency bounds the transactions of batch messages converted
// at once, across every batch in hand: a batch message holds many, and the
// consumer's own concurrency counts messages.
func WithItemConcurrency(n int) Option {
	return func(o *options) { o.itemConcurrency = n }
}

// New returns a Worker for deliveries of topo's work queue, parking the
// transactions that wait for their rate in its wait queue, and registers
// its metrics in m.
func New(conv Converter, retrier Retrier, topo amqpx.Topology, log *slog.Logger, m *telemetry.Metrics, now func() time.Time, opts ...Option) *Worker {
	topo = topo.WithDefaults()
	o := options{itemConcurrency: DefaultItemConcurrency}
	for _, opt := range opts {
		opt(&o)
	}
	w := &Worker{
		items:      make(chan struct{}, max(o.itemConcurrency, 1)),
		batchSlots: make(chan struct{}, maxBatchesInHand),
		batches:    m.Counter("batch_messages_consumed_total"),
		conv:       conv, retrier: retrier, queue: topo.Queue, waitDelay: topo.WaitDelay, log: slog.New(deferAttrs(log.Handler())), now: now,
		tracer: otel.Tracer("github.com/txpersister/txpersister/services/converter/internal/worker"),
		prop:   otel.GetTextMapPropagator(),
		waits:  newWaitTracker(topo.WaitDelay, now),
		// Every series exists at zero from the start, so that dashboards
		// and alerts see a rate of zero, not an absent series, before the
		// first failure or dead letter.
		consumed:     m.Counter("messages_consumed_total"),
		processed:    m.Counter("transactions_processed_total"),
		failed:       m.Counter("transactions_failed_total"),
		requeued:     m.Counter("messages_requeued_total"),
		retried:      m.Counter("messages_retried_total"),
		duplicate:    m.Counter("messages_duplicate_total"),
		waiting:      m.Counter("messages_waiting_total"),
		panics:       m.Counter("handler_panics_total"),
		deadLettered: map[string]*metrics.Counter{},
		handling:     m.Histogram("message_handling_duration_seconds", telemetry.LatencyBuckets()),
		latency:      m.Histogram("pipeline_latency_seconds", telemetry.LatencyBuckets()),
		rateAge:      m.Histogram("rate_age_seconds", days(0, 1, 2, 3, 4, 5, 7, 14, 30, 365)),
	}
	for _, reason := range []string{reasonRetriesExhausted, reasonInvalidMessage, reasonRefused, reasonPanic} {
		w.deadLettered[reason] = m.Counter(telemetry.MetricName("messages_dead_lettered_total", "reason", reason))
	}
	m.Gauge("transactions_waiting", func() float64 { n, _ := w.waits.read(); return float64(n) })
	m.Gauge("transactions_waiting_oldest_seconds", func() float64 { _, age := w.waits.read(); return age.Seconds() })
	return w
}

// Handle processes and settles one delivery, a transaction's message or a
// batch of them (txmodel.BatchMessageType); it is an amqpx.Handler.
func (w *Worker) Handle(ctx context.Context, d amqpx.Delivery) {
	if d.Type == txmodel.BatchMessageType {
		w.handleBatch(ctx, d)
		return
	}
	w.handleOne(ctx, d)
}

// handleOne processes and settles the message of one transaction.
func (w *Worker) handleOne(ctx context.Context, d amqpx.Delivery) {
	start := w.now()
	ctx = w.prop.Extract(ctx, amqpx.HeaderCarrier(d.Headers))
	// RabbitMQ's conventions: the destination is the exchange the message
	// was published to (with its routing key); the queue it was consumed
	// from is the subscription.
	attrs := []attribute.KeyValue{
		semconv.MessagingSystemRabbitMQ,
		semconv.MessagingOperationName("process"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(d.Exchange),
		semconv.MessagingDestinationSubscriptionName(w.queue),
		semconv.MessagingMessageID(d.MessageId),
		semconv.MessagingRabbitMQMessageDeliveryTag(int(d.DeliveryTag)), //nolint:gosec // G115: a channel's delivery count, far below 2^63
		// Not a convention: the retries the message has been through.
		attribute.Int("messaging.rabbitmq.attempt", amqpx.Attempt(d)),
	}
	if d.RoutingKey != "" {
		attrs = append(attrs, semconv.MessagingRabbitMQDestinationRoutingKey(d.RoutingKey))
	}
	ctx, span := w.tracer.Start(ctx, "process "+w.queue,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	defer span.End()
	w.consumed.Inc()
	log := w.log.With("attempt", amqpx.Attempt(d)+1)
	if d.MessageId != "" {
		log = log.With("transaction_id", d.MessageId)
	}

	err := w.handle(ctx, d, log)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		// The delivery could not be settled as it should (the broker or the
		// database went away, the converter is stopping): give it back for
		// redelivery rather than drop it.
		if nerr := d.Nack(true); nerr != nil && !errors.Is(nerr, amqpx.ErrAlreadySettled) {
			log.ErrorContext(ctx, "nack failed; the broker redelivers after the channel closes", "err", nerr)
		}
		w.requeued.Inc()
		log.WarnContext(ctx, "message requeued", "err", err)
	}
	w.handling.UpdateDuration(start)
}

func (w *Worker) handle(ctx context.Context, d amqpx.Delivery, log *slog.Logger) error {
	attempts := amqpx.Attempt(d) + 1
	e, err := txmodel.DecodeMessage(d.Body)
	if err != nil {
		return w.undecodable(ctx, d, err, attempts, log)
	}
	tx, receivedAt := e.Transaction, e.ReceivedAt
	log = log.With("tenant", e.Tenant)
	trace.SpanFromContext(ctx).SetAttributes(attribute.String(attrTenant, e.Tenant))
	if d.MessageId == "" {
		// An id too long for an AMQP message-id travels in the body only.
		log = log.With("transaction_id", tx.ID)
	}
	res, err := w.process(ctx, e.Tenant, tx, attempts)
	var wait *convert.WaitError
	var panicked *panicError
	switch {
	case err == nil:
		w.observeRateAge(res.Asked, res.Quoted)
		if err := d.Ack(); err != nil {
			// Recorded already: a redelivery will find it so and change nothing.
			log.WarnContext(ctx, "ack after recording failed", "err", err)
		}
		w.recorded(ctx, res, receivedAt, log)
		return nil
	case errors.As(err, &wait):
		w.observeRateAge(wait.Asked, wait.Latest)
		return w.wait(ctx, d, wait, receivedAt, log)
	case errors.Is(err, convert.ErrRatesUnavailable):
		return w.retry(ctx, d, e.Tenant, tx.ID, "rates provider unavailable", err, attempts, log)
	case errors.As(err, &panicked):
		log.ErrorContext(ctx, "the conversion panicked", "panic", panicked.value, "stack", panicked.stack)
		return w.giveUp(ctx, d, e.Tenant, tx.ID, "the converter failed on this transaction: "+panicked.Error(), reasonPanic, attempts, log)
	case errors.Is(err, store.ErrRefused):
		// Not even the failure could be recorded: the message keeps it.
		return w.deadLetter(ctx, d, "the outcome could not be stored: "+err.Error(), reasonRefused, log)
	case errors.Is(err, store.ErrUnavailable), ctx.Err() != nil:
		return err // stopping: for another converter
	default:
		// Unexpected: retried as an outage would be, never in a tight loop.
		return w.retry(ctx, d, e.Tenant, tx.ID, "could not be converted", err, attempts, log)
	}
}

// process runs the use case, turning a panic into a *panicError: one
// transaction that trips a bug fails alone.
func (w *Worker) process(ctx context.Context, tenant string, tx txmodel.Transaction, attempts int) (res convert.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			w.panics.Inc()
			err = &panicError{value: v, stack: string(debug.Stack())}
		}
	}()
	return w.conv.Process(ctx, tenant, tx, attempts)
}

// panicError is a panic of the use case.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// wait parks d until the rate of its day may be final.
func (w *Worker) wait(ctx context.Context, d amqpx.Delivery, cause *convert.WaitError, receivedAt time.Time, log *slog.Logger) error {
	if err := w.retrier.Wait(ctx, d, cause.Error()); err != nil {
		return fmt.Errorf("park in the wait queue: %w", err)
	}
	w.waiting.Inc()
	w.waits.add(receivedAt)
	log.InfoContext(ctx, "transaction waits for the day's rate",
		"rate_day", cause.Asked.Format(time.DateOnly), "latest_rate", cause.Latest.Format(time.DateOnly),
		"waits", amqpx.Waits(d)+1, "retry_in", w.waitDelay)
	return nil
}

// retry schedules d for later, or records the failure and dead-letters it
// when no retry is left.
func (w *Worker) retry(ctx context.Context, d amqpx.Delivery, tenant, id, what string, cause error, attempts int, log *slog.Logger) error {
	err := w.retrier.Retry(ctx, d, cause.Error())
	if err == nil {
		w.retried.Inc()
		log.WarnContext(ctx, what+"; retry scheduled", "err", cause)
		return nil
	}
	if !errors.Is(err, amqpx.ErrRetriesExhausted) {
		return fmt.Errorf("schedule retry: %w", err)
	}
	return w.giveUp(ctx, d, tenant, id, fmt.Sprintf("%s after %d attempts: %v", what, attempts, cause), reasonRetriesExhausted, attempts, log)
}

// undecodable dead-letters a message that is not a valid transaction and,
// when it names its transaction and tenant, records the failure so its
// status says so.
func (w *Worker) undecodable(ctx context.Context, d amqpx.Delivery, cause error, attempts int, log *slog.Logger) error {
	tenant, id := messageTransaction(d)
	return w.giveUp(ctx, d, tenant, id, "invalid message: "+cause.Error(), reasonInvalidMessage, attempts, log)
}

// giveUp records the transaction (if known: tenant and id) failed for
// reason and dead-letters d with it. When the failure cannot be recorded,
// d is dead-lettered all the same, its reason saying so, unless the
// converter is stopping: then d goes back to the queue.
func (w *Worker) giveUp(ctx context.Context, d amqpx.Delivery, tenant, id, reason, label string, attempts int, log *slog.Logger) error {
	reason = txmodel.CleanReason(reason)
	if id != "" && tenant != "" {
		res, err := w.conv.Fail(ctx, tenant, id, reason, attempts)
		switch {
		case err != nil && (errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil):
			return err
		case err != nil:
			reason = txmodel.CleanReason(reason + " (the failure could not be recorded: " + err.Error() + ")")
		default:
			w.recorded(ctx, res, time.Time{}, log)
		}
	}
	return w.deadLetter(ctx, d, reason, label, log)
}

// deadLetter moves d to the DLQ with reason.
func (w *Worker) deadLetter(ctx context.Context, d amqpx.Delivery, reason, label string, log *slog.Logger) error {
	if err := w.retrier.DeadLetter(ctx, d, reason); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	w.deadLettered[label].Inc()
	log.ErrorContext(ctx, "message dead-lettered", "reason", reason)
	return nil
}

// messageTransaction is the transaction a message that could not be
// decoded is about: the tenant in its header txmodel.MessageTenantHeader,
// or else the tenant in a body that is JSON but invalid, or else (written
// before tenants, with neither) txmodel.DefaultTenant; and its AMQP message id, or else the
// transaction_id in the body. A tenant that is not a tenant's name is
// none: an outcome is never recorded on a guess at whose it is.
func messageTransaction(d amqpx.Delivery) (tenant, id string) {
	var m struct {
		Tenant *string `json:"tenant"`
		ID     string  `json:"transaction_id"`
	}
	decoded := json.Unmarshal(d.Body, &m) == nil
	header, hasHeader := d.Headers[txmodel.MessageTenantHeader]
	switch {
	case hasHeader:
		tenant, _ = header.(string)
	case decoded && m.Tenant != nil:
		tenant = *m.Tenant
	default:
		tenant = txmodel.DefaultTenant
	}
	if txmodel.CheckTenant(tenant) != nil {
		tenant = ""
	}
	id = d.MessageId
	if id == "" && decoded {
		id = m.ID
	}
	return tenant, id
}

// observeRateAge counts the days between the day asked and the date of the
// provider's answer, in seconds as every duration is (none when no
// provider was asked).
func (w *Worker) observeRateAge(asked, quoted time.Time) {
	if asked.IsZero() || quoted.IsZero() {
		return
	}
	w.rateAge.Update(float64(max(raterule.Age(asked, quoted), 0)) * secondsPerDay)
}

const secondsPerDay = 24 * 60 * 60

// days returns bucket bounds of n days each, in seconds.
func days(n ...float64) []float64 {
	out := make([]float64, len(n))
	for i, d := range n {
		out[i] = d * secondsPerDay
	}
	return out
}

// recorded logs and counts an outcome.
func (w *Worker) recorded(ctx context.Context, res convert.Result, receivedAt time.Time, log *slog.Logger) {
	c := res.Conversion
	if !res.Recorded {
		w.duplicate.Inc()
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
				"exchange_rate", c.Rate.Value.String(), "rate_date", c.Rate.Date.Format(time.DateOnly),
				"rate_rule", string(c.Rate.Source.Rule), "rate_provider", c.Rate.Source.Provider)
		}
	default:
		w.failed.Inc()
		log.WarnContext(ctx, "transaction failed", "reason", c.FailureReason)
	}
}

// attrTenant is the span attribute naming the tenant of the transaction,
// as the api's server span names it.
const attrTenant = "txpersister.tenant"
