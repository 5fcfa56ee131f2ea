package amqpx

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

// fakeBroker is a channel's view of its outstanding deliveries, checking
// the frames a batchAcker sends as the broker would.
type fakeBroker struct {
	t           *testing.T
	mu          sync.Mutex
	outstanding map[uint64]bool
	handlerAck  map[uint64]bool // what the handlers asked for
	frames      int
}

func (b *fakeBroker) Ack(tag uint64, multiple bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames++
	if !multiple {
		if !b.outstanding[tag] || !b.handlerAck[tag] {
			b.t.Errorf("single ack of %d: outstanding %v, acked by its handler %v", tag, b.outstanding[tag], b.handlerAck[tag])
		}
		delete(b.outstanding, tag)
		return nil
	}
	if !b.outstanding[tag] {
		b.t.Errorf("cumulative ack up to %d, which is not outstanding", tag)
	}
	for tg := range b.outstanding {
		if tg <= tag {
			if !b.handlerAck[tg] {
				b.t.Errorf("cumulative ack up to %d covers %d, which its handler did not ack", tag, tg)
			}
			delete(b.outstanding, tg)
		}
	}
	return nil
}

func (b *fakeBroker) Nack(tag uint64, multiple, _ bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.frames++
	if multiple || !b.outstanding[tag] {
		b.t.Errorf("nack of %d: multiple %v, outstanding %v", tag, multiple, b.outstanding[tag])
	}
	delete(b.outstanding, tag)
	return nil
}

func (b *fakeBroker) Reject(tag uint64, requeue bool) error { return b.Nack(tag, false, requeue) }

// TestBatchAckerNeverAcksWhatIsNotAcked settles deliveries in a random order,
// acking most and nacking some, from concurrent handlers, and checks with a
// model of the broker that a cumulative ack never covers a delivery that
// was nacked or not settled, that every ack reaches the broker by close,
// and that far fewer frames than deliveries were sent.
func TestBatchAckerNeverAcksWhatIsNotAcked(t *testing.T) {
	for seed := range uint64(40) {
		// Even seeds settle in a random order (correctness only); odd ones
		// nearly in delivery order, as concurrent handlers do, where the
		// acks must also be batched.
		inOrder := seed%2 == 1
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			const n = 500
			b := &fakeBroker{t: t, outstanding: map[uint64]bool{}, handlerAck: map[uint64]bool{}}
			tags := make([]uint64, n)
			for i := range n {
				tags[i] = uint64(i + 1)
				b.outstanding[tags[i]] = true
			}
			if inOrder {
				for w := 0; w+16 <= n; w += 16 {
					rng.Shuffle(16, func(i, j int) { tags[w+i], tags[w+j] = tags[w+j], tags[w+i] })
				}
			} else {
				rng.Shuffle(n, func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
			}
			never := tags[n-3:] // three deliveries are never settled: the channel closes first
			settle := tags[:n-3]
			a := newBatchAcker(b, 32, time.Millisecond)
			var wg sync.WaitGroup
			var next atomic.Int64
			for range 8 {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(len(settle)) {
							return
						}
						tag := settle[i]
						b.mu.Lock()
						ack := tag%5 != 0
						b.handlerAck[tag] = ack
						b.mu.Unlock()
						var err error
						if ack {
							err = a.Ack(tag, false)
						} else {
							err = a.Nack(tag, false, true)
						}
						if err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			a.close()
			b.mu.Lock()
			defer b.mu.Unlock()
			if len(b.outstanding) != len(never) {
				t.Errorf("%d outstanding after close, want the %d never settled", len(b.outstanding), len(never))
			}
			for _, tag := range never {
				if !b.outstanding[tag] {
					t.Errorf("delivery %d, never settled, was acked", tag)
				}
			}
			if inOrder && b.frames >= n/3 {
				t.Errorf("%d frames for %d deliveries: acks were not batched", b.frames, n)
			}
		})
	}
}

// TestConsumerBatchedAcks consumes from the real broker with batched acks
// and concurrent handlers, nacking each message's first delivery: every
// message is handled twice, then acked, and the queue ends empty with
// nothing unacknowledged.
func TestConsumerBatchedAcks(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)
	const n = 300
	var msgs []Message
	for i := range n {
		msgs = append(msgs, Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: fmt.Sprint(i), Body: []byte("x")})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	cons := NewConsumer(c, topo.Queue, 64, WithConcurrency(8), WithBatchedAcks(16, 5*time.Millisecond))
	stop := runConsumer(t, cons, func(_ context.Context, d Delivery) {
		mu.Lock()
		seen[d.MessageId]++
		count := seen[d.MessageId]
		finished := len(seen) == n
		if finished {
			for _, v := range seen {
				if v < 2 {
					finished = false
					break
				}
			}
		}
		mu.Unlock()
		var err error
		if count == 1 && !d.Redelivered {
			err = d.Nack(true)
		} else {
			err = d.Ack()
		}
		if err != nil {
			t.Errorf("settle %s: %v", d.MessageId, err)
		}
		if finished {
			close(done)
		}
	})
	if err := p.Publish(testContext(t), msgs...); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("not every message was handled twice within 60 s")
	}
	// Give the last batch its delay, then check nothing is left unacked.
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ch := rawChannel(t, c)
	waitReady(t, ch, topo.Queue, 0)
	mu.Lock()
	defer mu.Unlock()
	for id, k := range seen {
		if k != 2 {
			t.Errorf("message %s handled %d times, want 2 (nacked once, then acked)", id, k)
		}
	}
}
