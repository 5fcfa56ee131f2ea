package amqpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Delivery is one message handed to a Handler. The embedded amqp.Delivery
// gives its Body, Headers, MessageId, ContentType, Type, Timestamp,
// Redelivered and so on.
//
// A Delivery must be settled exactly once, with Ack, Nack, or a Retrier's
// Retry or DeadLetter (which ack it). Settling it again is a no-op that
// returns ErrAlreadySettled, where amqp091 would let the broker close the
// channel for an unknown delivery tag. Its Ack, Nack and Reject methods
// shadow amqp.Delivery's; d.Delivery.Ack(true) and friends are still there
// but bypass that guard and, with concurrent handlers, can settle messages
// that other handlers still hold: avoid them.
type Delivery struct {
	amqp.Delivery
	settled *atomic.Bool
}

// ErrAlreadySettled is returned when a Delivery is acked, nacked or rejected
// a second time.
var ErrAlreadySettled = errors.New("amqpx: delivery already settled")

// NewDelivery wraps d, e.g. one from amqp.Channel.Get, so that it can be
// passed to a Retrier. Deliveries handed to a Handler are already wrapped.
func NewDelivery(d amqp.Delivery) Delivery {
	return Delivery{Delivery: d, settled: new(atomic.Bool)}
}

func (d Delivery) settle() error {
	if d.settled == nil {
		return nil
	}
	if d.settled.Swap(true) {
		return ErrAlreadySettled
	}
	return nil
}

// Ack acknowledges the delivery: the broker forgets the message. It returns
// ErrAlreadySettled, or amqp091's error (amqp.ErrClosed when the channel is
// gone, in which case the broker redelivers the message).
func (d Delivery) Ack() error {
	if err := d.settle(); err != nil {
		return err
	}
	if err := d.Delivery.Ack(false); err != nil {
		return fmt.Errorf("amqpx: ack delivery %d: %w", d.DeliveryTag, err)
	}
	return nil
}

// Nack rejects the delivery; with requeue the broker delivers it again
// (Redelivered=true, and on a quorum queue counting towards its delivery
// limit), without it the broker dead-letters it (Topology's Queue: to DLQ).
// It returns ErrAlreadySettled or amqp091's error.
func (d Delivery) Nack(requeue bool) error {
	if err := d.settle(); err != nil {
		return err
	}
	if err := d.Delivery.Nack(false, requeue); err != nil {
		return fmt.Errorf("amqpx: nack delivery %d: %w", d.DeliveryTag, err)
	}
	return nil
}

// Reject is Nack(requeue).
func (d Delivery) Reject(requeue bool) error { return d.Nack(requeue) }

// Settled reports whether the delivery has been acked or nacked through
// this wrapper.
func (d Delivery) Settled() bool { return d.settled != nil && d.settled.Load() }

// Handler processes one delivery and must settle it: Ack, Nack, or a
// Retrier's Retry or DeadLetter. ctx is the one passed to Consumer.Run.
type Handler func(ctx context.Context, d Delivery)

// ConsumerOption configures NewConsumer.
type ConsumerOption func(*Consumer)

// WithConcurrency sets how many handlers run at once (default 1). Keep the
// prefetch at least as large, or handlers sit idle.
func WithConcurrency(n int) ConsumerOption {
	return func(c *Consumer) {
		if n > 0 {
			c.concurrency = n
		}
	}
}

// WithConsumerLogger sets the logger for consumer events (channel lost,
// resubscribed). The default discards them.
func WithConsumerLogger(l *slog.Logger) ConsumerOption {
	return func(c *Consumer) {
		if l != nil {
			c.log = l
		}
	}
}

// WithConsumerTag sets the consumer tag prefix shown by the broker; amqp091
// makes a unique one by default.
func WithConsumerTag(tag string) ConsumerOption {
	return func(c *Consumer) { c.tag = tag }
}

// Consumer consumes a queue with manual acks and a prefetch, and resumes
// consuming by itself after its channel or connection is lost.
type Consumer struct {
	conn        *Conn
	queue       string
	prefetch    int
	concurrency int
	tag         string
	log         *slog.Logger
	consuming   atomic.Bool
	ackMax      int           // WithBatchedAcks; 0: one ack frame per delivery
	ackDelay    time.Duration // WithBatchedAcks
}

// NewConsumer returns a Consumer of queue on c that lets at most prefetch
// deliveries be unacknowledged at once (prefetch <= 0 means 1). It does
// nothing until Run.
func NewConsumer(c *Conn, queue string, prefetch int, opts ...ConsumerOption) *Consumer {
	if prefetch <= 0 {
		prefetch = 1
	}
	cons := &Consumer{
		conn:        c,
		queue:       queue,
		prefetch:    prefetch,
		concurrency: 1,
		log:         slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(cons)
	}
	cons.log = cons.log.With("component", "amqpx", "queue", queue)
	return cons
}

// Consuming reports whether the consumer is subscribed right now; meant for
// a readiness probe.
func (c *Consumer) Consuming() bool { return c.consuming.Load() }

// Run consumes until ctx is done, calling h for each delivery, on up to the
// configured concurrency of goroutines. When the channel or connection is
// lost (or the queue cannot be consumed yet) it logs, waits with backoff and
// subscribes again; unsettled deliveries of the lost channel are redelivered
// by the broker.
//
// On ctx done it stops taking deliveries, waits for running handlers to
// return, closes its channel (the broker requeues prefetched, unhandled
// deliveries) and returns nil. It returns an error wrapping ErrClosed if the
// Conn is closed. Run must not be called twice at once on one Consumer.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	b := newBackoff()
	for {
		subscribed, err := c.consumeOnce(ctx, h)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return fmt.Errorf("amqpx: consume %q: %w", c.queue, err)
		}
		if subscribed {
			b.Reset()
		}
		c.log.Warn("rabbitmq consumer interrupted; resubscribing", "error", err)
		if !sleepCtx(ctx, b.NextBackOff()) {
			return nil
		}
	}
}

// handle runs h on d. A handler that panics has failed that one message,
// not the consumer: the panic is logged, and the message, if h left it
// unsettled, is rejected without requeue, so the broker dead-letters it
// (Topology's Queue: to its DLQ) instead of handing it back to panic
// again.
func (c *Consumer) handle(ctx context.Context, h Handler, d Delivery) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		c.log.Error("rabbitmq handler panicked; message rejected", "message_id", d.MessageId, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if !d.Settled() {
			if err := d.Nack(false); err != nil {
				c.log.Error("reject after a panic", "message_id", d.MessageId, "error", err)
			}
		}
	}()
	h(ctx, d)
}

// consumeOnce subscribes on a new channel and handles deliveries until the
// channel closes or ctx is done. subscribed reports whether it got as far as
// consuming.
func (c *Consumer) consumeOnce(ctx context.Context, h Handler) (subscribed bool, err error) {
	ch, err := c.conn.Channel(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = ch.Close() }()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(c.prefetch, 0, false); err != nil {
		return false, fmt.Errorf("amqpx: set prefetch: %w", err)
	}
	// Not ConsumeWithContext: its basic.cancel on ctx done would race with
	// our channel close, and amqp091 can then mix up the two replies.
	deliveries, err := ch.Consume(c.queue, c.tag, false, false, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("amqpx: consume %q: %w", c.queue, err)
	}
	c.consuming.Store(true)
	defer c.consuming.Store(false)
	c.log.Debug("rabbitmq consumer subscribed")

	var acker *batchAcker
	if c.ackMax > 0 {
		acker = newBatchAcker(ch, c.ackMax, c.ackDelay)
	}
	var wg sync.WaitGroup
	for range c.concurrency {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d, ok := <-deliveries:
					if !ok {
						return
					}
					if ctx.Err() != nil {
						// Left unsettled: closing the channel requeues it.
						return
					}
					if acker != nil {
						d.Acknowledger = acker
					}
					c.handle(ctx, h, NewDelivery(d))
				}
			}
		})
	}
	wg.Wait()
	if acker != nil {
		acker.close()
	}
	select {
	case e := <-closed:
		if e != nil {
			return true, fmt.Errorf("amqpx: channel closed: %w", e)
		}
	default:
	}
	if ctx.Err() != nil {
		return true, ctx.Err()
	}
	return true, errors.New("amqpx: delivery channel closed")
}
