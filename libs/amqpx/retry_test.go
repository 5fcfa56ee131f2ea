package amqpx

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

func TestAttempt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers amqp.Table
		want    int
	}{
		{"absent", nil, 0},
		{"int32", amqp.Table{HeaderAttempt: int32(3)}, 3},
		{"int64", amqp.Table{HeaderAttempt: int64(4)}, 4},
		{"int8", amqp.Table{HeaderAttempt: int8(1)}, 1},
		{"uint16", amqp.Table{HeaderAttempt: uint16(5)}, 5},
		{"uint64 beyond int64", amqp.Table{HeaderAttempt: uint64(1 << 63)}, math.MaxInt64},
		{"string", amqp.Table{HeaderAttempt: "2"}, 2},
		{"negative", amqp.Table{HeaderAttempt: int32(-1)}, 0},
		{"garbage", amqp.Table{HeaderAttempt: "x"}, 0},
		{"wrong type", amqp.Table{HeaderAttempt: 1.5}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Attempt(NewDelivery(amqp.Delivery{Headers: tt.headers})); got != tt.want {
				t.Errorf("Attempt = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRepublish(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)
	d := amqp.Delivery{
		MessageId: "m1", ContentType: "application/json", Type: "t", Timestamp: ts, Body: []byte("{}"),
		Headers: amqp.Table{
			"x-death": []any{}, "x-delivery-count": int64(3), "x-first-death-queue": "q",
			HeaderError: "boom", HeaderAttempt: int64(4), "traceparent": "00-abc",
		},
	}
	got := Republish(d, "ex", "key", amqp.Table{HeaderAttempt: int64(0)}, HeaderError)
	want := Message{
		Exchange: "ex", RoutingKey: "key", MessageID: "m1", ContentType: "application/json", Type: "t", Timestamp: ts, Body: []byte("{}"),
		Headers: amqp.Table{HeaderAttempt: int64(0), "traceparent": "00-abc"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Republish (-want +got):\n%s", diff)
	}
	if _, ok := d.Headers["x-death"]; !ok {
		t.Error("Republish changed the delivery's own headers")
	}
}

// retrySeen is what the handler observed on one delivery.
type retrySeen struct {
	Attempt   int
	LastError any
	DeathFrom string // the queue the broker dead-lettered it from, if any
	Trace     any
	Body      string
}

func TestRetryThenDeadLetter(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology() // delays 100ms, 200ms
	c := dial(t, url, topo)
	p := newPublisher(t, c)
	r := NewRetrier(p, topo)

	seenc := make(chan retrySeen, 10)
	errc := make(chan error, 10)
	runConsumer(t, NewConsumer(c, topo.Queue, 1), func(ctx context.Context, d Delivery) {
		s := retrySeen{Attempt: Attempt(d), LastError: d.Headers[HeaderLastError], Trace: d.Headers["traceparent"], Body: string(d.Body)}
		if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
			if death, ok := deaths[0].(amqp.Table); ok {
				s.DeathFrom, _ = death["queue"].(string)
			}
		}
		seenc <- s
		err := r.Retry(ctx, d, "rates unavailable")
		if errors.Is(err, ErrRetriesExhausted) {
			if d.Settled() {
				errc <- errors.New("Retry acked the delivery although retries are exhausted")
			}
			errc <- r.DeadLetter(ctx, d, "gave up: "+strings.Repeat("x", 2000))
			return
		}
		errc <- err
	})

	msg := Message{
		Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "tx-1", Body: []byte("body"),
		Headers: amqp.Table{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	}
	if err := p.Publish(testContext(t), msg); err != nil {
		t.Fatal(err)
	}

	trace := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	want := []retrySeen{
		{Attempt: 0, Trace: trace, Body: "body"},
		{Attempt: 1, LastError: "rates unavailable", DeathFrom: "transactions.convert.delay.100ms", Trace: trace, Body: "body"},
		{Attempt: 2, LastError: "rates unavailable", DeathFrom: "transactions.convert.delay.200ms", Trace: trace, Body: "body"},
	}
	var got []retrySeen
	for range want {
		got = append(got, recv(t, seenc))
		if err := recv(t, errc); err != nil {
			t.Errorf("settling attempt %d: %v", len(got)-1, err)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}

	ch := rawChannel(t, c)
	dead := getN(t, ch, topo.DLQ, 1)[0]
	if dead.MessageId != "tx-1" || string(dead.Body) != "body" {
		t.Errorf("DLQ message id %q body %q, want tx-1 body", dead.MessageId, dead.Body)
	}
	if got, want := Attempt(NewDelivery(dead)), 2; got != want {
		t.Errorf("DLQ message x-attempt = %d, want %d", got, want)
	}
	reason, _ := dead.Headers[HeaderError].(string)
	if !strings.HasPrefix(reason, "gave up: xxx") || len(reason) > maxReasonBytes {
		t.Errorf("DLQ message x-error = %.40q... (%d bytes), want the reason truncated to %d bytes", reason, len(reason), maxReasonBytes)
	}
	if n := readyCount(t, ch, topo.Queue); n != 0 {
		t.Errorf("%d messages left in the work queue", n)
	}
}

// TestWaitKeepsTheAttempts: a message parked with Wait comes back after the
// wait delay with its attempts unchanged and its waits counted, however
// often it waits, and a Retry after waits still finds every retry left.
func TestWaitKeepsTheAttempts(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology() // delays 100ms, 200ms; wait 150ms
	c := dial(t, url, topo)
	p := newPublisher(t, c)
	r := NewRetrier(p, topo)

	type seen struct {
		Attempt, Waits int
		Reason         any
		DeathFrom      string
	}
	seenc := make(chan seen, 10)
	errc := make(chan error, 10)
	const waits = 3
	runConsumer(t, NewConsumer(c, topo.Queue, 1), func(ctx context.Context, d Delivery) {
		s := seen{Attempt: Attempt(d), Waits: Waits(d), Reason: d.Headers[HeaderWaitReason]}
		if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
			if death, ok := deaths[0].(amqp.Table); ok {
				s.DeathFrom, _ = death["queue"].(string)
			}
		}
		seenc <- s
		switch {
		case Waits(d) < waits:
			errc <- r.Wait(ctx, d, "the day's rate is not published yet")
		case Attempt(d) == 0:
			errc <- r.Retry(ctx, d, "rates unavailable")
		default:
			errc <- d.Ack()
		}
	})
	if err := p.Publish(testContext(t), Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "tx-1"}); err != nil {
		t.Fatal(err)
	}
	reason := "the day's rate is not published yet"
	want := []seen{
		{Attempt: 0, Waits: 0},
		{Attempt: 0, Waits: 1, Reason: reason, DeathFrom: "transactions.convert.wait.150ms"},
		{Attempt: 0, Waits: 2, Reason: reason, DeathFrom: "transactions.convert.wait.150ms"},
		{Attempt: 0, Waits: 3, Reason: reason, DeathFrom: "transactions.convert.wait.150ms"},
		{Attempt: 1, Waits: 3, Reason: reason, DeathFrom: "transactions.convert.delay.100ms"},
	}
	var got []seen
	for range want {
		got = append(got, recv(t, seenc))
		if err := recv(t, errc); err != nil {
			t.Errorf("settling delivery %d: %v", len(got), err)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
	ch := rawChannel(t, c)
	for _, q := range []string{topo.Queue, topo.WaitQueueName(), topo.DLQ} {
		if n := readyCount(t, ch, q); n != 0 {
			t.Errorf("%d messages left in %s", n, q)
		}
	}
}

func TestRetryNotConfirmedLeavesDeliveryUnsettled(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)
	// A topology whose delay queue was never declared: the retry copy is
	// unroutable.
	undeclared := topo
	undeclared.Queue = "undeclared"
	undeclared.DLQ = "undeclared.dlq"
	r := NewRetrier(p, undeclared)

	if err := p.Publish(testContext(t), Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "tx-1"}); err != nil {
		t.Fatal(err)
	}
	ch := rawChannel(t, c)
	var raw amqp.Delivery
	for ctx := testContext(t); ; {
		d, ok, err := ch.Get(topo.Queue, false)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			raw = d
			break
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			t.Fatal("no message to get before timeout")
		}
	}
	d := NewDelivery(raw)
	if err := r.Retry(testContext(t), d, "why"); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Retry = %v, want ErrNotConfirmed", err)
	}
	if d.Settled() {
		t.Error("delivery settled although its retry copy was not confirmed")
	}
	if err := r.DeadLetter(testContext(t), d, "why"); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("DeadLetter = %v, want ErrNotConfirmed", err)
	}
	if err := r.Wait(testContext(t), d, "why"); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Wait = %v, want ErrNotConfirmed", err)
	}
	if d.Settled() {
		t.Error("delivery settled although its wait copy was not confirmed")
	}
	if err := d.Nack(true); err != nil {
		t.Fatalf("Nack: %v", err)
	}
}

func TestDeliveryLimitDeadLetters(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology() // DeliveryLimit 2
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	deliveries := make(chan struct{}, 100)
	runConsumer(t, NewConsumer(c, topo.Queue, 1), func(_ context.Context, d Delivery) {
		deliveries <- struct{}{}
		_ = d.Nack(true)
	})
	if err := p.Publish(testContext(t), Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "poison"}); err != nil {
		t.Fatal(err)
	}
	dead := getN(t, rawChannel(t, c), topo.DLQ, 1)[0]
	if dead.MessageId != "poison" {
		t.Errorf("DLQ message id %q, want poison", dead.MessageId)
	}
	if got, want := len(deliveries), topo.DeliveryLimit+1; got != want {
		t.Errorf("message was delivered %d times before dead-lettering, want %d", got, want)
	}
}
