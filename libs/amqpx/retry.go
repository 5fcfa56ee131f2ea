package amqpx

import (
	"context"
	"fmt"
	"maps"
	"math"
	"reflect"
	"strconv"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Header names used by Retrier.
const (
	// HeaderAttempt counts the retries a message has been through: absent
	// (0) on the first delivery, 1 after one Retry, and so on.
	HeaderAttempt = "x-attempt"
	// HeaderLastError is the reason given to the latest Retry.
	HeaderLastError = "x-last-error"
	// HeaderError is the reason given to DeadLetter.
	HeaderError = "x-error"
	// HeaderWaits counts the times a message has waited (Retrier.Wait):
	// absent (0) before the first.
	HeaderWaits = "x-waits"
	// HeaderWaitReason is the reason given to the latest Wait.
	HeaderWaitReason = "x-wait-reason"
)

// maxReasonBytes caps reasons stored in headers, which travel with every
// copy of the message.
const maxReasonBytes = 1024

// Attempt returns d's HeaderAttempt value: 0 when absent, negative or not
// an integer.
func Attempt(d Delivery) int { return intHeader(d, HeaderAttempt) }

// Waits returns d's HeaderWaits value: 0 when absent, negative or not an
// integer.
func Waits(d Delivery) int { return intHeader(d, HeaderWaits) }

func intHeader(d Delivery, name string) int {
	var n int64
	switch v := reflect.ValueOf(d.Headers[name]); {
	case v.CanInt():
		n = v.Int()
	case v.CanUint():
		n = int64(min(v.Uint(), math.MaxInt64))
	case v.Kind() == reflect.String:
		n, _ = strconv.ParseInt(v.String(), 10, 64)
	}
	if n < 0 {
		return 0
	}
	return int(n)
}

// publisher is what a Retrier publishes with; *Publisher implements it.
type publisher interface {
	Publish(ctx context.Context, msgs ...Message) error
}

var _ publisher = (*Publisher)(nil)

// Retrier retries a delivery later, through the Topology's delay queues, or
// dead-letters it to the Topology's DLQ.
type Retrier struct {
	pub  publisher
	topo Topology
}

// NewRetrier returns a Retrier that publishes with p into topo (zero fields
// of topo take the defaults). topo must be the one declared on the broker.
func NewRetrier(p *Publisher, topo Topology) *Retrier {
	return &Retrier{pub: p, topo: topo.WithDefaults()}
}

// Retry republishes d's body, properties and headers, with HeaderAttempt
// incremented and HeaderLastError set to reason, to the delay queue for d's
// attempt (via the default exchange); once the broker has confirmed that,
// it acks d. After the delay the broker routes the copy back to the work
// queue.
//
// It returns ErrRetriesExhausted, leaving d unsettled, when Attempt(d) >=
// len(RetryDelays): the caller should record the failure and DeadLetter d.
// It returns an error wrapping ErrNotConfirmed, leaving d unsettled, when
// the copy was not confirmed; the caller may then Nack(true) it. An error
// from the final ack (wrapped, e.g. amqp.ErrClosed) means the broker will
// deliver d again although the copy is already scheduled: a duplicate.
func (r *Retrier) Retry(ctx context.Context, d Delivery, reason string) error {
	attempt := Attempt(d)
	queue, _, ok := r.topo.DelayQueue(attempt)
	if !ok {
		return fmt.Errorf("amqpx: retry message %q after attempt %d: %w", d.MessageId, attempt, ErrRetriesExhausted)
	}
	return r.move(ctx, d, "retry", queue, amqp.Table{HeaderAttempt: int64(attempt + 1), HeaderLastError: truncate(reason)})
}

// Wait republishes d's body, properties and headers, with HeaderWaits
// incremented and HeaderWaitReason set to reason, to the wait queue (via
// the default exchange); once the broker has confirmed that, it acks d.
// After WaitDelay the broker routes the copy back to the work queue. Unlike
// Retry it leaves HeaderAttempt as it is: waiting for something that has
// not happened yet is not a failure, and never runs out.
//
// It returns an error wrapping ErrNotConfirmed, leaving d unsettled, when
// the copy was not confirmed, and a wrapped ack error as Retry does.
func (r *Retrier) Wait(ctx context.Context, d Delivery, reason string) error {
	return r.move(ctx, d, "park", r.topo.WaitQueueName(), amqp.Table{HeaderWaits: int64(Waits(d) + 1), HeaderWaitReason: truncate(reason)})
}

// DeadLetter publishes d's body, properties and headers, with HeaderError
// set to reason, to the DLQ (via the default exchange); once the broker has
// confirmed that, it acks d. It returns an error wrapping ErrNotConfirmed,
// leaving d unsettled, when the copy was not confirmed, and a wrapped ack
// error as Retry does.
func (r *Retrier) DeadLetter(ctx context.Context, d Delivery, reason string) error {
	return r.move(ctx, d, "dead-letter", r.topo.DLQ, amqp.Table{HeaderError: truncate(reason)})
}

// move publishes a copy of d to queue (via the default exchange), its
// headers updated with set, and acks d once the broker has confirmed the
// copy; verb names the move in errors.
func (r *Retrier) move(ctx context.Context, d Delivery, verb, queue string, set amqp.Table) error {
	if err := r.pub.Publish(ctx, Republish(d.Delivery, "", queue, set)); err != nil {
		return fmt.Errorf("amqpx: %s message %q to %q: %w", verb, d.MessageId, queue, err)
	}
	if err := d.Ack(); err != nil {
		return fmt.Errorf("amqpx: %s message %q: %w", verb, d.MessageId, err)
	}
	return nil
}

// brokerHeaders are set by RabbitMQ when it dead-letters or redelivers a
// message; a copy published by us starts afresh without them.
var brokerHeaders = []string{
	"x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
	"x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count",
}

// Republish returns the message that publishes d again, to exchange with
// routing key key: its body and properties, and its headers without the
// bookkeeping RabbitMQ adds when it dead-letters or redelivers a message
// (x-death, x-delivery-count, ...), without the names in drop, and with set
// over them. The Retrier's moves are such copies; so are an operator's
// requeues from the DLQ.
func Republish(d amqp.Delivery, exchange, key string, set amqp.Table, drop ...string) Message {
	h := make(amqp.Table, len(d.Headers)+len(set))
	maps.Copy(h, d.Headers)
	for _, k := range brokerHeaders {
		delete(h, k)
	}
	for _, k := range drop {
		delete(h, k)
	}
	maps.Copy(h, set)
	return Message{
		Exchange:    exchange,
		RoutingKey:  key,
		MessageID:   d.MessageId,
		ContentType: d.ContentType,
		Type:        d.Type,
		Headers:     h,
		Body:        d.Body,
		Timestamp:   d.Timestamp,
	}
}

func truncate(s string) string {
	if len(s) <= maxReasonBytes {
		return s
	}
	s = s[:maxReasonBytes]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
