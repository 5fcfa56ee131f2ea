package amqpx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const defaultConfirmTimeout = 30 * time.Second

// Message is one message to publish. An empty Exchange is the default
// exchange, which routes to the queue named RoutingKey.
type Message struct {
	Exchange    string
	RoutingKey  string
	MessageID   string
	ContentType string
	Type        string
	Headers     amqp.Table
	Body        []byte
	// Timestamp defaults to the time of publishing.
	Timestamp time.Time
}

// PublisherOption configures NewPublisher.
type PublisherOption func(*Publisher)

// WithConfirmTimeout bounds how long Publish waits for a live connection and
// for the broker's confirms, on top of the caller's context, so that a
// context without deadline cannot hang on a blocked broker. Default 30s;
// zero or negative leaves only the caller's context.
func WithConfirmTimeout(d time.Duration) PublisherOption {
	return func(p *Publisher) { p.confirmTimeout = d }
}

// Publisher publishes persistent messages with publisher confirms on its own
// channel, and re-opens the channel (on the current connection) when it was
// closed, e.g. after a reconnect. Messages are published as mandatory, so an
// unroutable message is an error rather than silently dropped.
//
// Publish calls are serialised over the one channel; each is a pipelined
// batch, so batching, not concurrency, is the way to throughput.
type Publisher struct {
	conn           *Conn
	confirmTimeout time.Duration

	sem  chan struct{} // a ctx-aware mutex guarding ch and returns
	ch   *amqp.Channel
	rets chan amqp.Return

	done      chan struct{}
	closeOnce sync.Once
}

// NewPublisher returns a Publisher on c. It opens its channel lazily, on the
// first Publish.
func NewPublisher(c *Conn, opts ...PublisherOption) *Publisher {
	p := &Publisher{
		conn:           c,
		confirmTimeout: defaultConfirmTimeout,
		sem:            make(chan struct{}, 1),
		done:           make(chan struct{}),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// returnBuffer is how many basic.return frames can queue up before the
// channel's reader has to wait for Publish to drain them.
const returnBuffer = 1024

// Publish publishes msgs with many in flight at once (not one round trip
// each) and returns nil only when the broker has confirmed (acked) every one.
//
// It returns an error wrapping ErrNotConfirmed when a message is nacked,
// returned as unroutable, its channel or connection closes before the
// confirm, or ctx (or the confirm timeout) ends first; in that case any
// subset of msgs, possibly all, may have been stored, so the caller should
// publish the whole batch again later (consumers see duplicates, never
// losses). It returns ErrClosed after Close. It is safe for concurrent use.
func (p *Publisher) Publish(ctx context.Context, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if p.confirmTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.confirmTimeout)
		defer cancel()
	}
	select {
	case p.sem <- struct{}{}:
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("%w: wait for publisher: %w", ErrNotConfirmed, ctx.Err())
	}
	defer func() { <-p.sem }()
	select {
	case <-p.done:
		return ErrClosed
	default:
	}

	ch, rets, err := p.channel(ctx)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrNotConfirmed, err)
	}
	err = p.publish(ctx, ch, rets, msgs)
	if err != nil {
		// The channel may still owe us confirms or returns for this batch;
		// a fresh channel keeps them from being blamed on the next one.
		p.discardChannel()
	}
	return err
}

// channel returns the open confirm-mode channel, opening one if needed.
// The caller holds p.sem.
func (p *Publisher) channel(ctx context.Context) (*amqp.Channel, chan amqp.Return, error) {
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, p.rets, nil
	}
	p.discardChannel()
	ch, err := p.conn.Channel(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, nil, fmt.Errorf("amqpx: put channel in confirm mode: %w", err)
	}
	p.ch = ch
	p.rets = ch.NotifyReturn(make(chan amqp.Return, returnBuffer))
	return p.ch, p.rets, nil
}

// discardChannel closes the current channel, if any. The caller holds p.sem
// (or is Close, after Publish can no longer take it).
func (p *Publisher) discardChannel() {
	if p.ch != nil {
		_ = p.ch.Close()
		p.ch, p.rets = nil, nil
	}
}

type returned struct {
	n     int
	first amqp.Return
}

func (r *returned) add(ret amqp.Return) {
	if r.n == 0 {
		r.first = ret
	}
	r.n++
}

// drain moves every return already queued into r, without blocking.
func (r *returned) drain(rets chan amqp.Return) {
	for {
		select {
		case ret, ok := <-rets:
			if !ok {
				return
			}
			r.add(ret)
		default:
			return
		}
	}
}

func (p *Publisher) publish(ctx context.Context, ch *amqp.Channel, rets chan amqp.Return, msgs []Message) error {
	now := time.Now()
	var ret returned
	confs := make([]*amqp.DeferredConfirmation, 0, len(msgs))
	for i, m := range msgs {
		ts := m.Timestamp
		if ts.IsZero() {
			ts = now
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, m.Exchange, m.RoutingKey, true, false, amqp.Publishing{
			Headers:      m.Headers,
			ContentType:  m.ContentType,
			DeliveryMode: amqp.Persistent,
			MessageId:    m.MessageID,
			Timestamp:    ts,
			Type:         m.Type,
			Body:         m.Body,
		})
		if err != nil {
			return fmt.Errorf("%w: publish message %d of %d (id %q): %w", ErrNotConfirmed, i+1, len(msgs), m.MessageID, err)
		}
		confs = append(confs, dc)
		ret.drain(rets)
	}

	// The broker sends a mandatory message's basic.return before its
	// basic.ack, and amqp091's reader hands the return to rets before it
	// resolves the confirm; so once every confirm is in, every return for
	// this batch is in rets, and the channel being ours alone (p.sem) means
	// every return in rets is for this batch.
	nacked := 0
	for i, dc := range confs {
	wait:
		for {
			select {
			case <-dc.Done():
				break wait
			case r, ok := <-rets:
				if !ok {
					rets = nil // channel closed: dc resolves (nacked) next
					continue
				}
				ret.add(r)
			case <-ctx.Done():
				return fmt.Errorf("%w: %d of %d messages confirmed: %w", ErrNotConfirmed, i, len(msgs), ctx.Err())
			case <-p.done:
				return fmt.Errorf("%w: publisher closed: %w", ErrNotConfirmed, ErrClosed)
			}
		}
		if !dc.Acked() {
			nacked++
		}
	}
	ret.drain(rets)

	var problems []string
	if ret.n > 0 {
		r := ret.first
		problems = append(problems, fmt.Sprintf("%d returned as unroutable (first: id %q to exchange %q key %q: %d %s)",
			ret.n, r.MessageId, r.Exchange, r.RoutingKey, r.ReplyCode, r.ReplyText))
	}
	if nacked > 0 {
		if ch.IsClosed() {
			problems = append(problems, fmt.Sprintf("%d unconfirmed when the channel closed", nacked))
		} else {
			problems = append(problems, fmt.Sprintf("%d nacked by the broker", nacked))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: of %d messages %s", ErrNotConfirmed, len(msgs), strings.Join(problems, "; "))
	}
	return nil
}

// Close stops the Publisher: an in-flight Publish returns an error, later
// calls return ErrClosed, and the channel is closed. It does not close the
// Conn. It is idempotent and always returns nil.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		close(p.done)
		// Wait for an in-flight Publish, which returns promptly on p.done.
		p.sem <- struct{}{}
		p.discardChannel()
		<-p.sem
	})
	return nil
}
