package amqpx

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

type delivered struct {
	ID          string
	Body        string
	Redelivered bool
}

func TestConsumerAckAndNack(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	got := make(chan delivered, 10)
	settleErrs := make(chan error, 10)
	cons := NewConsumer(c, topo.Queue, 5, WithConsumerLogger(testLogger(t)))
	stop := runConsumer(t, cons, func(_ context.Context, d Delivery) {
		got <- delivered{d.MessageId, string(d.Body), d.Redelivered}
		if !d.Redelivered {
			settleErrs <- d.Nack(true)
			return
		}
		settleErrs <- d.Ack()
		// A second settlement must not reach the broker, which would
		// close the channel.
		if err := d.Ack(); !errors.Is(err, ErrAlreadySettled) {
			settleErrs <- err
		}
	})

	if err := p.Publish(testContext(t), Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "m1", Body: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	want := []delivered{{"m1", "hello", false}, {"m1", "hello", true}}
	gotList := []delivered{recv(t, got), recv(t, got)}
	if diff := cmp.Diff(want, gotList); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	for range 2 {
		if err := recv(t, settleErrs); err != nil {
			t.Errorf("settle: %v", err)
		}
	}

	if err := stop(); err != nil {
		t.Errorf("Run = %v, want nil after ctx cancel", err)
	}
	if cons.Consuming() {
		t.Error("Consuming() = true after Run returned")
	}
	// Had the ack not reached the broker, closing the consumer's channel
	// would have put the message back.
	if n := readyCount(t, rawChannel(t, c), topo.Queue); n != 0 {
		t.Errorf("%d messages left in the queue after ack, want 0", n)
	}
	select {
	case err := <-settleErrs:
		t.Errorf("second Ack = %v, want ErrAlreadySettled", err)
	default:
	}
}

func TestConsumerLeavesUnhandledMessagesOnStop(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	started := make(chan struct{})
	var handled atomic.Int32
	cons := NewConsumer(c, topo.Queue, 10)
	stop := runConsumer(t, cons, func(ctx context.Context, d Delivery) {
		if handled.Add(1) == 1 {
			close(started)
			// Hold the first message until Run is asked to stop.
			<-ctx.Done()
		}
		_ = d.Ack()
	})
	msgs := make([]Message, 5)
	for i := range msgs {
		msgs[i] = Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey}
	}
	if err := p.Publish(testContext(t), msgs...); err != nil {
		t.Fatal(err)
	}
	recv(t, started)
	// Run waits for the running handler, which still acks its message.
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := handled.Load(); got != 1 {
		t.Errorf("%d handlers ran, want only the one in flight at stop", got)
	}
	waitReady(t, rawChannel(t, c), topo.Queue, 4)
}

func TestConsumerResumesAfterReconnect(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	got := make(chan string, 10)
	cons := NewConsumer(c, topo.Queue, 5, WithConsumerLogger(testLogger(t)))
	runConsumer(t, cons, func(_ context.Context, d Delivery) {
		if err := d.Ack(); err != nil {
			t.Errorf("Ack: %v", err)
		}
		got <- d.MessageId
	})

	publishEventually(t, p, Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "before"})
	if id := recv(t, got); id != "before" {
		t.Fatalf("got %q, want before", id)
	}
	amqptest.CloseConnections(t, url)
	waitGen(t, c, 2)
	publishEventually(t, p, Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "after"})
	if id := recv(t, got); id != "after" {
		t.Fatalf("got %q, want after", id)
	}
}

func TestConsumerConcurrency(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	const n = 4
	var inFlight atomic.Int32
	all := make(chan struct{})
	cons := NewConsumer(c, topo.Queue, n, WithConcurrency(n))
	runConsumer(t, cons, func(ctx context.Context, d Delivery) {
		if inFlight.Add(1) == n {
			close(all)
		}
		// Each handler holds its message until all n run at once; with
		// fewer workers this never happens and the test times out.
		select {
		case <-all:
		case <-ctx.Done():
		}
		_ = d.Ack()
	})
	msgs := make([]Message, n)
	for i := range msgs {
		msgs[i] = Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey}
	}
	if err := p.Publish(testContext(t), msgs...); err != nil {
		t.Fatal(err)
	}
	recv(t, all)
}

// TestConsumerSurvivesAPanickingHandler: a handler that panics on one
// message loses that message to the DLQ, once, and the consumer goes on
// with the next.
func TestConsumerSurvivesAPanickingHandler(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	var panics atomic.Int64
	handled := make(chan string, 10)
	runConsumer(t, NewConsumer(c, topo.Queue, 5, WithConsumerLogger(testLogger(t))), func(_ context.Context, d Delivery) {
		if d.MessageId == "poison" {
			panics.Add(1)
			panic("a handler bug")
		}
		handled <- d.MessageId
		_ = d.Ack()
	})
	for _, id := range []string{"poison", "next"} {
		if err := p.Publish(testContext(t), Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if got := recv(t, handled); got != "next" {
		t.Errorf("handled %q, want next", got)
	}
	dead := getN(t, rawChannel(t, c), topo.DLQ, 1)[0]
	if dead.MessageId != "poison" {
		t.Errorf("DLQ message id %q, want poison", dead.MessageId)
	}
	if got := panics.Load(); got != 1 {
		t.Errorf("the handler panicked %d times, want once (rejected, not requeued)", got)
	}
}
