package amqpx

import (
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Default names and limits of the pipeline's topology.
const (
	DefaultExchange      = "transactions"
	DefaultRoutingKey    = "convert"
	DefaultQueue         = "transactions.convert"
	DefaultDLQ           = "transactions.convert.dlq"
	DefaultDeliveryLimit = 20
)

// DefaultWaitDelay is how long a message parked with Retrier.Wait waits
// before it is delivered again.
const DefaultWaitDelay = 15 * time.Minute

// DefaultRetryDelays returns the default retry ladder: 5s, 30s, 2m, 5m, 8m,
// about 15.5 minutes in all. It returns a new slice on each call.
func DefaultRetryDelays() []time.Duration {
	return []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 8 * time.Minute}
}

// Topology names the pipeline's exchanges and queues and declares them
// idempotently. Zero fields take the defaults of DefaultTopology.
//
// Changing a queue's arguments (DeliveryLimit, a delay) after it exists makes
// Declare fail with a PRECONDITION_FAILED channel error from the broker: such
// a change needs a new queue name or the old queue deleted.
type Topology struct {
	// Exchange is the durable direct exchange work is published to;
	// default "transactions".
	Exchange string
	// RoutingKey binds Queue to Exchange; default "convert".
	RoutingKey string
	// Queue is the durable quorum work queue, default "transactions.convert".
	// A message delivered unsuccessfully (nack/reject with requeue, or its
	// channel closing while it is unacked) more than DeliveryLimit times is
	// dead-lettered to DLQ: the poison-message guard.
	//
	// Dead-lettering out of Queue and out of the delay queues is
	// at-least-once: the broker keeps a message in its source queue until
	// the target queue has confirmed it, so it is never lost on the way.
	Queue string
	// DLQ is the durable quorum dead-letter queue, default
	// "transactions.convert.dlq".
	DLQ string
	// RetryDelays has one durable quorum delay queue per delay, named
	// "<Queue>.delay.<dur>" (see DelayQueueName), whose messages expire after
	// the delay and are dead-lettered back to Exchange/RoutingKey. Attempt n
	// (0-based) waits RetryDelays[n]. Nil means DefaultRetryDelays; delays
	// must be whole milliseconds, at least 1ms.
	RetryDelays []time.Duration
	// DeliveryLimit is Queue's x-delivery-limit; default 20.
	DeliveryLimit int
	// WaitDelay is the delay of the wait queue, "<Queue>.wait.<dur>" (see
	// WaitQueueName): a durable quorum queue like the delay queues, for
	// messages that are not failing but must wait for something to happen
	// (Retrier.Wait); waiting uses up none of RetryDelays. Zero means
	// DefaultWaitDelay; it must be a whole number of milliseconds.
	WaitDelay time.Duration
}

// DefaultTopology returns the pipeline's topology with every default filled in.
func DefaultTopology() Topology {
	return Topology{
		Exchange:      DefaultExchange,
		RoutingKey:    DefaultRoutingKey,
		Queue:         DefaultQueue,
		DLQ:           DefaultDLQ,
		RetryDelays:   DefaultRetryDelays(),
		DeliveryLimit: DefaultDeliveryLimit,
		WaitDelay:     DefaultWaitDelay,
	}
}

// WithDefaults returns t with its zero fields set to the defaults.
func (t Topology) WithDefaults() Topology {
	d := DefaultTopology()
	if t.Exchange == "" {
		t.Exchange = d.Exchange
	}
	if t.RoutingKey == "" {
		t.RoutingKey = d.RoutingKey
	}
	if t.Queue == "" {
		t.Queue = d.Queue
	}
	if t.DLQ == "" {
		t.DLQ = d.DLQ
	}
	if t.RetryDelays == nil {
		t.RetryDelays = d.RetryDelays
	}
	if t.DeliveryLimit == 0 {
		t.DeliveryLimit = d.DeliveryLimit
	}
	if t.WaitDelay == 0 {
		t.WaitDelay = d.WaitDelay
	}
	return t
}

// Validate reports a configuration error: a negative DeliveryLimit, or a
// retry delay or WaitDelay that is not a positive whole number of
// milliseconds.
func (t Topology) Validate() error {
	t = t.WithDefaults()
	var errs []error
	if t.DeliveryLimit < 0 {
		errs = append(errs, fmt.Errorf("delivery limit %d is negative", t.DeliveryLimit))
	}
	for i, d := range t.RetryDelays {
		if !wholeMillis(d) {
			errs = append(errs, fmt.Errorf("retry delay %d (%s) is not a positive whole number of milliseconds", i, d))
		}
	}
	if !wholeMillis(t.WaitDelay) {
		errs = append(errs, fmt.Errorf("wait delay %s is not a positive whole number of milliseconds", t.WaitDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("amqpx: invalid topology: %w", err)
	}
	return nil
}

// DelayQueueName returns the name of the delay queue for delay d:
// "<Queue>.delay.<dur>" with dur written in its largest exact unit, e.g.
// "transactions.convert.delay.5s", ".2m", ".200ms", ".90s".
func (t Topology) DelayQueueName(d time.Duration) string {
	return t.WithDefaults().Queue + ".delay." + formatDelay(d)
}

// WaitQueueName returns the name of the wait queue:
// "<Queue>.wait.<dur>", e.g. "transactions.convert.wait.15m".
func (t Topology) WaitQueueName() string {
	t = t.WithDefaults()
	return t.Queue + ".wait." + formatDelay(t.WaitDelay)
}

func wholeMillis(d time.Duration) bool { return d >= time.Millisecond && d%time.Millisecond == 0 }

// DelayQueue returns the delay queue a message waits in before its attempt
// numbered attempt+1, i.e. after attempt failed, and that delay. ok is false
// when attempt is negative or there is no delay left for it.
func (t Topology) DelayQueue(attempt int) (name string, delay time.Duration, ok bool) {
	t = t.WithDefaults()
	if attempt < 0 || attempt >= len(t.RetryDelays) {
		return "", 0, false
	}
	d := t.RetryDelays[attempt]
	return t.DelayQueueName(d), d, true
}

func formatDelay(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d > 0 && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d > 0 && d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	case d > 0 && d%time.Millisecond == 0:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	default:
		return d.String()
	}
}

// Declare declares the exchange, the work queue and its binding, the DLQ,
// the delay queues and the wait queue. Every declaration is idempotent, so it is safe to call
// repeatedly and from several processes at once; it fits Dial's OnConnect.
//
// It returns Validate's error, or the broker's *amqp.Error wrapped when a
// declaration fails (e.g. PRECONDITION_FAILED when an existing queue has
// other arguments). A broker error closes ch.
func (t Topology) Declare(ch *amqp.Channel) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t = t.WithDefaults()
	if err := ch.ExchangeDeclare(t.Exchange, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		return fmt.Errorf("amqpx: declare exchange %q: %w", t.Exchange, err)
	}
	if _, err := ch.QueueDeclare(t.DLQ, true, false, false, false, t.dlqArgs()); err != nil {
		return fmt.Errorf("amqpx: declare queue %q: %w", t.DLQ, err)
	}
	if _, err := ch.QueueDeclare(t.Queue, true, false, false, false, t.queueArgs()); err != nil {
		return fmt.Errorf("amqpx: declare queue %q: %w", t.Queue, err)
	}
	if err := ch.QueueBind(t.Queue, t.RoutingKey, t.Exchange, false, nil); err != nil {
		return fmt.Errorf("amqpx: bind queue %q to %q with key %q: %w", t.Queue, t.Exchange, t.RoutingKey, err)
	}
	seen := make(map[time.Duration]bool, len(t.RetryDelays))
	for _, d := range t.RetryDelays {
		if seen[d] {
			continue
		}
		seen[d] = true
		name := t.DelayQueueName(d)
		if _, err := ch.QueueDeclare(name, true, false, false, false, t.delayArgs(d)); err != nil {
			return fmt.Errorf("amqpx: declare delay queue %q: %w", name, err)
		}
	}
	name := t.WaitQueueName()
	if _, err := ch.QueueDeclare(name, true, false, false, false, t.delayArgs(t.WaitDelay)); err != nil {
		return fmt.Errorf("amqpx: declare wait queue %q: %w", name, err)
	}
	return nil
}

func (t Topology) dlqArgs() amqp.Table {
	return amqp.Table{amqp.QueueTypeArg: amqp.QueueTypeQuorum}
}

func (t Topology) queueArgs() amqp.Table {
	return amqp.Table{
		amqp.QueueTypeArg:           amqp.QueueTypeQuorum,
		"x-delivery-limit":          int64(t.DeliveryLimit),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": t.DLQ,
		// At-least-once dead-lettering instead of the default fire-and-forget;
		// RabbitMQ requires reject-publish overflow for it (no length limit
		// is set, so nothing is ever rejected for length).
		"x-dead-letter-strategy": "at-least-once",
		amqp.QueueOverflowArg:    amqp.QueueOverflowRejectPublish,
	}
}

func (t Topology) delayArgs(d time.Duration) amqp.Table {
	return amqp.Table{
		amqp.QueueTypeArg:           amqp.QueueTypeQuorum,
		amqp.QueueMessageTTLArg:     int64(d / time.Millisecond),
		"x-dead-letter-exchange":    t.Exchange,
		"x-dead-letter-routing-key": t.RoutingKey,
		"x-dead-letter-strategy":    "at-least-once",
		amqp.QueueOverflowArg:       amqp.QueueOverflowRejectPublish,
	}
}
