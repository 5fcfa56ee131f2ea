// Package relay publishes the outbox to RabbitMQ: the second half of the
// transactional outbox. Entries leave the outbox only after the broker has
// confirmed them, so a broker outage delays transactions and loses none.
package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/store"
)

// Outbox is what the relay needs of the store.
type Outbox interface {
	// RelayOutbox hands locked entries to publish and deletes them when it
	// returns nil.
	RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []store.OutboxEntry) error) (int, error)
	// OutboxStats reports the backlog and the oldest entry's time.
	OutboxStats(ctx context.Context) (int64, time.Time, error)
}

var _ Outbox = (*store.Store)(nil)

// Publisher publishes messages and returns once the broker confirmed all.
type Publisher interface {
	Publish(ctx context.Context, msgs ...amqpx.Message) error
}

var _ Publisher = (*amqpx.Publisher)(nil)

// Config tunes a Relay.
type Config struct {
	Exchange   string        // where transactions are published
	RoutingKey string        // their routing key
	BatchSize  int           // entries per publish-and-confirm round
	PollPeriod time.Duration // how long to wait for a Wake before looking anyway
	// MessageMax is the most entries one AMQP message carries: above 1,
	// entries travel as batch messages (txmodel.BatchMessageType) of up
	// to MessageMax transactions, one publish and one confirm for all of
	// them; 1 publishes each alone, as versions before 0.4.0 did.
	MessageMax int
}

// Relay moves outbox entries to the broker. Several Run loops may share
// one Relay, each with its own Publisher: they claim disjoint entries.
//
// The writers of this process call Wake after each commit that adds
// entries, so the loops relay them at once. Entries committed by other
// processes (another api instance, or one that died before its relays
// got to them) are found on the next poll, every PollPeriod. The wake-up
// is deliberately not a PostgreSQL NOTIFY: a transaction that notifies
// takes a database-wide lock at commit and holds it through its WAL
// flush, which serialised every writer's commit.
type Relay struct {
	outbox Outbox
	cfg    Config
	log    *slog.Logger
	tracer trace.Tracer
	prop   propagation.TextMapPropagator

	backlog    atomic.Int64
	oldestUnix atomic.Int64 // Unix nanoseconds of the oldest entry, 0 when empty

	published, messages, publishFailures, relayFailures *metrics.Counter
	publishDuration                                     *metrics.PrometheusHistogram

	mu    sync.Mutex
	wakes map[chan struct{}]struct{} // one per running loop
}

// New returns a Relay and registers its metrics in m. It publishes nothing
// until Run; WatchBacklog keeps its backlog gauges current meanwhile, also
// while the broker is unreachable.
func New(outbox Outbox, cfg Config, log *slog.Logger, m *telemetry.Metrics) *Relay {
	r := &Relay{
		outbox: outbox, cfg: cfg, log: log,
		tracer: otel.Tracer("github.com/txpersister/txpersister/services/api/internal/relay"),
		prop:   otel.GetTextMapPropagator(),
		wakes:  map[chan struct{}]struct{}{},
	}
	m.Gauge("outbox_backlog", func() float64 { return float64(r.backlog.Load()) })
	m.Gauge("outbox_oldest_age_seconds", func() float64 {
		at := r.oldestUnix.Load()
		if at == 0 {
			return 0
		}
		return time.Since(time.Unix(0, at)).Seconds()
	})
	// Made here, the counters exist at zero from the start: an alert on
	// failures sees a rate of zero, not an absent series.
	r.published = m.Counter("outbox_published_total")
	r.messages = m.Counter("outbox_messages_published_total")
	r.publishFailures = m.Counter("outbox_publish_failures_total")
	r.relayFailures = m.Counter("outbox_relay_failures_total")
	r.publishDuration = m.Histogram("outbox_publish_duration_seconds", telemetry.LatencyBuckets())
	return r
}

// WatchBacklog refreshes the outbox gauges every PollPeriod until ctx is
// done.
func (r *Relay) WatchBacklog(ctx context.Context) {
	tick := time.NewTicker(r.cfg.PollPeriod)
	defer tick.Stop()
	for {
		r.updateStats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Wake tells every Run loop that entries were committed: a loop waiting
// looks at once, a loop busy looks again as soon as it is done. It never
// blocks.
func (r *Relay) Wake() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for wake := range r.wakes {
		select {
		case wake <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// Run relays with pub until ctx is done. It looks on every Wake and at
// least every PollPeriod; after a failure it backs off up to 5 s and tries
// again, for as long as it runs.
func (r *Relay) Run(ctx context.Context, pub Publisher) error {
	publish := func(ctx context.Context, entries []store.OutboxEntry) error {
		return r.publish(ctx, pub, entries)
	}
	wake := make(chan struct{}, 1)
	r.mu.Lock()
	r.wakes[wake] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.wakes, wake)
		r.mu.Unlock()
	}()
	poll := time.NewTimer(r.cfg.PollPeriod)
	defer poll.Stop()
	relayOnce := func() (int, error) { return r.outbox.RelayOutbox(ctx, r.cfg.BatchSize, publish) }
	onFailure := func(err error, wait time.Duration) {
		r.relayFailures.Inc()
		r.log.WarnContext(ctx, "outbox relay failed; retrying", "err", err, "retry_in", wait)
	}
	for ctx.Err() == nil {
		// A failure (the broker or the database away) is retried, for as
		// long as the loop runs, after 100 ms doubling up to 5 s.
		n, err := backoff.Retry(ctx, relayOnce, backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 5 * time.Second,
		}), backoff.WithMaxElapsedTime(0), backoff.WithNotify(onFailure))
		if err != nil {
			break // only ctx ends the retries
		}
		if n == r.cfg.BatchSize {
			continue // more is waiting
		}
		poll.Reset(r.cfg.PollPeriod)
		select {
		case <-ctx.Done():
		case <-wake:
		case <-poll.C:
		}
	}
	return nil
}

// publish publishes entries in one confirmed round, each inside a
// PRODUCER span that continues the trace of the request that accepted it;
// up to MessageMax entries share an AMQP message, each with its own trace
// context.
func (r *Relay) publish(ctx context.Context, pub Publisher, entries []store.OutboxEntry) error {
	start := time.Now()
	spans := make([]trace.Span, len(entries))
	headers := make([]map[string]string, len(entries))
	for i, e := range entries {
		spans[i], headers[i] = r.startSpan(e) //nolint:contextcheck // each span descends from the request's trace in the outbox row, on purpose not from the relay loop's ctx
	}
	msgs, err := r.pack(entries, headers)
	if err == nil {
		err = pub.Publish(ctx, msgs...)
	}
	for _, span := range spans {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "publish failed")
		}
		span.End()
	}
	r.publishDuration.UpdateDuration(start)
	if err != nil {
		r.publishFailures.Inc()
		return err
	}
	r.published.Add(len(entries))
	r.messages.Add(len(msgs))
	return nil
}

// startSpan starts the PRODUCER span of e, a child of the trace context
// stored with it, and returns the headers its message carries: that
// span's context and the tenant.
func (r *Relay) startSpan(e store.OutboxEntry) (trace.Span, map[string]string) {
	parent := r.prop.Extract(context.Background(), propagation.MapCarrier(e.Headers))
	sctx, span := r.tracer.Start(parent, "publish "+r.cfg.Exchange,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationName("publish"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(r.cfg.Exchange),
			semconv.MessagingRabbitMQDestinationRoutingKey(r.cfg.RoutingKey),
			semconv.MessagingMessageID(e.TransactionID),
			attribute.String(attrTenant, e.Tenant),
		))
	headers := propagation.MapCarrier{txmodel.MessageTenantHeader: e.Tenant}
	r.prop.Inject(sctx, headers)
	return span, headers
}

// alone is the AMQP message of e published on its own, with headers.
func (r *Relay) alone(e store.OutboxEntry, headers map[string]string) amqpx.Message {
	h := make(amqp.Table, len(headers))
	for k, v := range headers {
		h[k] = v
	}
	return amqpx.Message{
		Exchange:    r.cfg.Exchange,
		RoutingKey:  r.cfg.RoutingKey,
		MessageID:   messageID(e.TransactionID),
		ContentType: txmodel.MessageContentType,
		Type:        txmodel.MessageType,
		Headers:     h,
		Body:        e.Payload,
		Timestamp:   e.CreatedAt,
	}
}

// pack returns the AMQP messages of entries, headers[i] those of
// entries[i]: each alone when MessageMax is 1, else batch messages of up
// to MessageMax items, each item the message the entry would have been
// alone. An entry whose payload is not a JSON object (nothing this api
// writes) travels alone, for the converter to dead-letter: in a batch it
// would fail the batch's encoding, and hold up every entry behind it.
func (r *Relay) pack(entries []store.OutboxEntry, headers []map[string]string) ([]amqpx.Message, error) {
	var msgs []amqpx.Message
	var items []txmodel.BatchItem
	var first int64 // the outbox id of items[0]
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		body, err := txmodel.EncodeBatch(items)
		if err != nil {
			return err
		}
		msgs = append(msgs, amqpx.Message{
			Exchange:    r.cfg.Exchange,
			RoutingKey:  r.cfg.RoutingKey,
			MessageID:   fmt.Sprintf("outbox-%d+%d", first, len(items)),
			ContentType: txmodel.MessageContentType,
			Type:        txmodel.BatchMessageType,
			Body:        body,
			Timestamp:   time.Now(),
		})
		items = items[:0:0]
		return nil
	}
	for i, e := range entries {
		if r.cfg.MessageMax <= 1 || !isJSONObject(e.Payload) {
			msgs = append(msgs, r.alone(e, headers[i]))
			continue
		}
		if len(items) == 0 {
			first = e.ID
		}
		items = append(items, txmodel.BatchItem{MessageID: e.TransactionID, Headers: headers[i], Body: e.Payload})
		if len(items) == r.cfg.MessageMax {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return msgs, nil
}

// isJSONObject reports whether b is one JSON object.
func isJSONObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// maxMessageID is the most bytes an AMQP message-id holds: it is a short
// string.
const maxMessageID = 255

// messageID is the AMQP message-id of a transaction's message: its id, or
// none when the id is longer than a message-id can be (128 characters of
// four bytes each are 512 bytes). The body carries the id either way; a
// message-id that does not fit would fail the publish of the whole batch,
// again and again, and stop every transaction behind it.
func messageID(transactionID string) string {
	if len(transactionID) > maxMessageID {
		return ""
	}
	return transactionID
}

func (r *Relay) updateStats(ctx context.Context) {
	n, oldest, err := r.outbox.OutboxStats(ctx)
	if err != nil {
		return // the relay's own errors say why; stale gauges are the lesser harm
	}
	r.backlog.Store(n)
	if oldest.IsZero() {
		r.oldestUnix.Store(0)
	} else {
		r.oldestUnix.Store(oldest.UnixNano())
	}
}

// attrTenant is the span attribute naming the tenant of a transaction.
const attrTenant = "txpersister.tenant"
