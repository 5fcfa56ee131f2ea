package amqpx

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// WithBatchedAcks makes the consumer acknowledge many deliveries with one
// cumulative ack (basic.ack with multiple) instead of one frame each: a
// Delivery's Ack is recorded and sent at the latest after delay, or once max
// acks wait. A cumulative ack never covers a delivery that is not settled:
// it is sent up to the highest acked tag below which every delivery is
// acked or nacked, nacks are sent at once and in order, and acks the
// cumulative one cannot cover yet are sent one by one when the channel
// closes. An ack lost with the process is a redelivery, so handlers must be
// idempotent, as they must be anyway.
func WithBatchedAcks(max int, delay time.Duration) ConsumerOption {
	return func(c *Consumer) {
		if max > 1 && delay > 0 {
			c.ackMax, c.ackDelay = max, delay
		}
	}
}

// batchAcker is the Acknowledger of one channel's deliveries when acks are
// batched. Every settlement of the channel goes through it, so the frames
// it sends are ordered: a nack is on the wire before any cumulative ack
// that passes its tag.
type batchAcker struct {
	ch    amqp.Acknowledger
	max   int
	delay time.Duration

	mu      sync.Mutex
	next    uint64              // the lowest tag not known to be settled
	acked   map[uint64]struct{} // acked by a handler, not yet sent
	nacked  map[uint64]struct{} // nacked (already sent), above next
	timer   *time.Timer
	err     error // the first send error: the channel is gone
	onFlush func(n int)
}

func newBatchAcker(ch amqp.Acknowledger, max int, delay time.Duration) *batchAcker {
	return &batchAcker{ch: ch, max: max, delay: delay, next: 1, acked: map[uint64]struct{}{}, nacked: map[uint64]struct{}{}}
}

// Ack records tag as acked; multiple is never set by Delivery.
func (a *batchAcker) Ack(tag uint64, _ bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.acked[tag] = struct{}{}
	if len(a.acked) >= a.max {
		return a.flushLocked()
	}
	a.armLocked()
	return nil
}

// armLocked makes sure recorded acks are sent within the delay.
func (a *batchAcker) armLocked() {
	if a.timer != nil || len(a.acked) == 0 {
		return
	}
	a.timer = time.AfterFunc(a.delay, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.timer = nil
		_ = a.flushLocked()
	})
}

// Nack sends the nack at once, in order with the acks.
func (a *batchAcker) Nack(tag uint64, _ bool, requeue bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	if err := a.ch.Nack(tag, false, requeue); err != nil {
		a.err = err
		return err
	}
	a.nacked[tag] = struct{}{}
	// The nack may unblock acks recorded behind it.
	a.armLocked()
	return nil
}

// Reject is Nack.
func (a *batchAcker) Reject(tag uint64, requeue bool) error { return a.Nack(tag, false, requeue) }

// flushLocked advances past every settled tag and acks, cumulatively, up to
// the highest acked one.
func (a *batchAcker) flushLocked() error {
	var upTo uint64
	n := 0
	for {
		if _, ok := a.acked[a.next]; ok {
			delete(a.acked, a.next)
			upTo = a.next
			n++
		} else if _, ok := a.nacked[a.next]; ok {
			delete(a.nacked, a.next)
		} else {
			break
		}
		a.next++
	}
	if upTo == 0 || a.err != nil {
		return a.err
	}
	if err := a.ch.Ack(upTo, true); err != nil {
		a.err = err
		return err
	}
	if a.onFlush != nil {
		a.onFlush(n)
	}
	return nil
}

// close sends what is recorded: the cumulative ack, then one ack for each
// delivery acked behind one that was never settled (left for the broker to
// redeliver).
func (a *batchAcker) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	_ = a.flushLocked()
	if a.err != nil {
		return
	}
	for tag := range a.acked {
		if err := a.ch.Ack(tag, false); err != nil {
			a.err = err
			return
		}
		delete(a.acked, tag)
	}
}
