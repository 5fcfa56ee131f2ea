package amqpx_test

import (
	"context"
	"errors"
	"log/slog"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/txpersister/txpersister/libs/amqpx"
)

// An outbox relay: declare the topology on every connection, then publish
// a batch and mark the outbox rows sent only when Publish returns nil.
func Example_relay() {
	ctx := context.Background()
	topo := amqpx.DefaultTopology()
	conn, err := amqpx.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/",
		amqpx.OnConnect(topo.Declare),
		amqpx.WithLogger(slog.Default()),
		amqpx.WithConnectionName("api-outbox-relay"),
	)
	if err != nil {
		return // the broker is unreachable: fail start-up
	}
	defer conn.Close()
	pub := amqpx.NewPublisher(conn)
	defer pub.Close()

	headers := amqp.Table{}
	propagation.TraceContext{}.Inject(ctx, amqpx.HeaderCarrier(headers))
	err = pub.Publish(ctx, amqpx.Message{
		Exchange:    topo.Exchange,
		RoutingKey:  topo.RoutingKey,
		MessageID:   "transaction id, for deduplication",
		ContentType: "application/json",
		Type:        "transaction.created",
		Headers:     headers,
		Body:        []byte(`{}`),
	})
	if errors.Is(err, amqpx.ErrNotConfirmed) {
		return // leave the rows unsent; the next relay pass publishes them again
	}
}

// A converter: consume the work queue, retry transient failures through
// the delay queues and dead-letter the rest.
func Example_converter() {
	ctx := context.Background()
	topo := amqpx.DefaultTopology()
	conn, err := amqpx.Dial(ctx, "amqp://guest:guest@127.0.0.1:5672/", amqpx.OnConnect(topo.Declare))
	if err != nil {
		return
	}
	defer conn.Close()
	pub := amqpx.NewPublisher(conn)
	defer pub.Close()
	retrier := amqpx.NewRetrier(pub, topo)

	convert := func(ctx context.Context, body []byte) (transient bool, err error) { return false, nil }

	cons := amqpx.NewConsumer(conn, topo.Queue, 16, amqpx.WithConcurrency(8))
	_ = cons.Run(ctx, func(ctx context.Context, d amqpx.Delivery) {
		ctx = propagation.TraceContext{}.Extract(ctx, amqpx.HeaderCarrier(d.Headers))
		transient, err := convert(ctx, d.Body)
		switch {
		case err == nil:
			_ = d.Ack()
		case transient:
			cause := err
			err = retrier.Retry(ctx, d, cause.Error())
			if errors.Is(err, amqpx.ErrRetriesExhausted) {
				// Record the failure, then:
				err = retrier.DeadLetter(ctx, d, "retries exhausted: "+cause.Error())
			}
			if err != nil && !d.Settled() {
				_ = d.Nack(true) // try again soon; counts towards the delivery limit
			}
		default:
			if err := retrier.DeadLetter(ctx, d, err.Error()); err != nil {
				_ = d.Nack(true)
			}
		}
	})
}
