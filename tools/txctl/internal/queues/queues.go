// Package queues is txctl's view of the pipeline's RabbitMQ queues: their
// depths, the messages in the dead-letter queue, and moving those back to
// the work queue.
package queues

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/txmodel"
)

// Channeler opens AMQP channels; *amqpx.Conn implements it.
type Channeler interface {
	Channel(ctx context.Context) (*amqp.Channel, error)
}

// Publisher publishes messages with the broker's confirms; *amqpx.Publisher
// implements it.
type Publisher interface {
	Publish(ctx context.Context, msgs ...amqpx.Message) error
}

var (
	_ Channeler = (*amqpx.Conn)(nil)
	_ Publisher = (*amqpx.Publisher)(nil)
)

// Names returns the queues of topo an operator watches, in the order a
// message travels: the work queue, the wait queue (transactions waiting for
// their day's rate), the delay queues in the order of the retry ladder, the
// dead-letter queue.
func Names(topo amqpx.Topology) []string {
	topo = topo.WithDefaults()
	names := []string{topo.Queue, topo.WaitQueueName()}
	seen := map[string]bool{}
	for _, d := range topo.RetryDelays {
		n := topo.DelayQueueName(d)
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return append(names, topo.DLQ)
}

// Depth is how full a queue is.
type Depth struct {
	Name string `json:"name"`
	// Messages is the number of messages ready for delivery; messages
	// delivered and not yet acknowledged are not counted.
	Messages int `json:"messages"`
	// Consumers is the number of consumers subscribed.
	Consumers int `json:"consumers"`
	// Missing says the queue does not exist on the broker.
	Missing bool `json:"missing,omitempty"`
}

// Depths returns the depth of each named queue, asking the broker with a
// passive declare, which changes nothing. A queue that does not exist is
// reported Missing, not as an error.
func Depths(ctx context.Context, conn Channeler, names []string) ([]Depth, error) {
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			_ = ch.Close()
		}
	}()
	out := make([]Depth, 0, len(names))
	for _, name := range names {
		if ch == nil || ch.IsClosed() {
			var err error
			if ch, err = conn.Channel(ctx); err != nil {
				return nil, fmt.Errorf("queue depths: %w", err)
			}
		}
		q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
		var amqpErr *amqp.Error
		switch {
		case errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound:
			// The broker closed the channel; the next queue gets a new one.
			out = append(out, Depth{Name: name, Missing: true})
		case err != nil:
			return nil, fmt.Errorf("queue depth of %q: %w", name, err)
		default:
			out = append(out, Depth{Name: name, Messages: q.Messages, Consumers: q.Consumers})
		}
	}
	return out, nil
}

// Message is a message in the dead-letter queue, as an operator sees it.
type Message struct {
	// MessageID is the AMQP message id: the transaction id for messages the
	// api's relay published.
	MessageID string `json:"message_id"`
	// TransactionID is the transaction_id of the body; empty when the body
	// is not JSON with one.
	TransactionID string `json:"transaction_id"`
	// Error is the x-error header: why the converter dead-lettered it.
	Error string `json:"error,omitempty"`
	// LastError is the x-last-error header: why its latest retry failed.
	LastError string `json:"last_error,omitempty"`
	// Attempt is the x-attempt header: how many retries it went through.
	Attempt int `json:"attempt"`
	// DeathReason is the broker's x-first-death-reason when the broker,
	// not the converter, dead-lettered it (delivery_limit: delivered too
	// often without being settled).
	DeathReason string `json:"death_reason,omitempty"`
	// Timestamp is the message's timestamp property.
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// Matches reports whether id is the message's id or its transaction id.
func (m Message) Matches(id string) bool {
	return id != "" && (id == m.MessageID || id == m.TransactionID)
}

func describe(d amqp.Delivery) Message {
	m := Message{
		MessageID: d.MessageId,
		Attempt:   amqpx.Attempt(amqpx.NewDelivery(d)),
		Timestamp: d.Timestamp,
	}
	m.Error, _ = d.Headers[amqpx.HeaderError].(string)
	m.LastError, _ = d.Headers[amqpx.HeaderLastError].(string)
	m.DeathReason, _ = d.Headers["x-first-death-reason"].(string)
	// The body may be the poison that got the message here: read only the
	// id, and leave it empty when even that fails.
	var body txmodel.Message
	if json.Unmarshal(d.Body, &body) == nil {
		m.TransactionID = body.TransactionID
	}
	return m
}

// getAll takes up to limit messages (all when limit <= 0) from queue on ch
// with basic.get, unacknowledged: the broker does not offer a message to
// the channel holding it, so each get yields the next one, and closing ch
// gives them all back.
func getAll(ch *amqp.Channel, queue string, limit int) ([]amqp.Delivery, error) {
	var out []amqp.Delivery
	for limit <= 0 || len(out) < limit {
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return out, fmt.Errorf("get from %q: %w", queue, err)
		}
		if !ok {
			break
		}
		out = append(out, d)
	}
	return out, nil
}

// List returns up to limit messages (all when limit <= 0) of the queue
// dlq without removing any: it takes them unacknowledged on a channel of
// its own and closes the channel, so the broker puts every one back. Their
// order in the queue may change. It never acknowledges a message.
func List(ctx context.Context, conn Channeler, dlq string, limit int) ([]Message, error) {
	ch, err := conn.Channel(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", dlq, err)
	}
	defer func() { _ = ch.Close() }()
	ds, err := getAll(ch, dlq, limit)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	out := make([]Message, len(ds))
	for i, d := range ds {
		out[i] = describe(d)
	}
	return out, nil
}

// workCopy returns the message that puts d back to work in topo: its body
// and properties, its headers with the attempt count reset to 0 and the
// dead-letter reason and the broker's bookkeeping removed. x-last-error is
// kept as the message's history.
func workCopy(d amqp.Delivery, topo amqpx.Topology) amqpx.Message {
	return amqpx.Republish(d, topo.Exchange, topo.RoutingKey, amqp.Table{amqpx.HeaderAttempt: int64(0)}, amqpx.HeaderError)
}

// Requeued is what Requeue did.
type Requeued struct {
	// Moved are the messages now in the work queue and gone from the DLQ.
	Moved []Message `json:"moved"`
	// Left counts the messages not selected, still in the DLQ.
	Left int `json:"left"`
}

// publishBatch is how many copies one confirmed Publish carries.
const publishBatch = 100

// Requeue moves the messages of topo's DLQ that selected accepts back to
// work: it publishes a copy of each to topo's exchange and routing key (see
// workCopy) and, once the broker has confirmed the copy, acknowledges the
// original in the DLQ. Messages not selected are given back to the DLQ
// (their order there may change).
//
// A message is never lost: it leaves the DLQ only after its copy is
// confirmed. On an error the messages not yet moved stay in the DLQ; those
// moved are in the result. If the acknowledgement itself fails after the
// confirm, the message is in both queues, which the converter tolerates
// (it records one outcome per transaction). Running Requeue twice is safe:
// what moved the first time is no longer in the DLQ.
func Requeue(ctx context.Context, conn Channeler, pub Publisher, topo amqpx.Topology, selected func(Message) bool) (Requeued, error) {
	topo = topo.WithDefaults()
	var res Requeued
	ch, err := conn.Channel(ctx)
	if err != nil {
		return res, fmt.Errorf("requeue from %q: %w", topo.DLQ, err)
	}
	// Closing the channel gives back whatever was taken and not settled,
	// on success (nothing) and on error alike.
	defer func() { _ = ch.Close() }()

	// Take every message before giving any back: one given back would be
	// taken again.
	ds, err := getAll(ch, topo.DLQ, 0)
	if err != nil {
		return res, fmt.Errorf("requeue: %w", err)
	}
	var move []amqp.Delivery
	for _, d := range ds {
		if selected(describe(d)) {
			move = append(move, d)
			continue
		}
		if err := ch.Nack(d.DeliveryTag, false, true); err != nil {
			return res, fmt.Errorf("requeue: give back message %q: %w", d.MessageId, err)
		}
		res.Left++
	}
	for start := 0; start < len(move); start += publishBatch {
		batch := move[start:min(start+publishBatch, len(move))]
		msgs := make([]amqpx.Message, len(batch))
		for i, d := range batch {
			msgs[i] = workCopy(d, topo)
		}
		if err := pub.Publish(ctx, msgs...); err != nil {
			return res, fmt.Errorf("requeue %d messages to %q/%q: %w", len(batch), topo.Exchange, topo.RoutingKey, err)
		}
		for _, d := range batch {
			if err := ch.Ack(d.DeliveryTag, false); err != nil {
				return res, fmt.Errorf("requeue: remove message %q from %q after its copy was confirmed: %w", d.MessageId, topo.DLQ, err)
			}
			res.Moved = append(res.Moved, describe(d))
		}
	}
	return res, nil
}
