package queues

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
	"github.com/txpersister/txpersister/libs/txmodel"
)

var topo = amqpx.Topology{RetryDelays: []time.Duration{5 * time.Second, 30 * time.Second, 5 * time.Second}}.WithDefaults()

// broker returns a connection to a fresh vhost with the pipeline's topology
// declared, and a Publisher on it.
func broker(t *testing.T) (*amqpx.Conn, *amqpx.Publisher) {
	t.Helper()
	url := amqptest.NewVhost(t)
	conn, err := amqpx.Dial(context.Background(), url, amqpx.OnConnect(topo.Declare))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	pub := amqpx.NewPublisher(conn)
	t.Cleanup(func() { _ = pub.Close() })
	return conn, pub
}

func body(t *testing.T, id string) []byte {
	t.Helper()
	tx, err := txmodel.ParseTransaction([]byte(`{"transaction_id": "`+id+`", "user_id": "u1", "amount": "10.50", "currency": "USD", "timestamp": "2024-09-11T08:00:00Z"}`),
		time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: txmodel.DefaultTenant, Transaction: tx, ReceivedAt: time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deadLetter puts a message for each transaction id into the DLQ as the
// converter's Retrier does: x-error set, attempts counted, and the
// bookkeeping a broker adds when it dead-letters.
func deadLetter(t *testing.T, pub *amqpx.Publisher, ids ...string) {
	t.Helper()
	msgs := make([]amqpx.Message, len(ids))
	for i, id := range ids {
		msgs[i] = amqpx.Message{
			RoutingKey:  topo.DLQ,
			MessageID:   id,
			ContentType: txmodel.MessageContentType,
			Type:        txmodel.MessageType,
			Headers: amqp.Table{
				amqpx.HeaderAttempt:   int64(5),
				amqpx.HeaderLastError: "rates provider: 503",
				amqpx.HeaderError:     "retries exhausted: rates provider: 503",
				"traceparent":         "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
				"x-delivery-count":    int64(2),
			},
			Body:      body(t, id),
			Timestamp: time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC),
		}
	}
	if err := pub.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// drain takes every message from queue for good and returns them.
func drain(t *testing.T, conn *amqpx.Conn, queue string) []amqp.Delivery {
	t.Helper()
	ch, err := conn.Channel(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var out []amqp.Delivery
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, d)
	}
}

// idsIn returns the message ids in queue, sorted, once the queue holds
// want of them (messages given back by a closed channel may take a moment
// to be ready again); it leaves the messages in the queue.
func idsIn(t *testing.T, conn *amqpx.Conn, queue string, want int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, err := List(context.Background(), conn, queue, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.MessageID)
		}
		slices.Sort(ids)
		if len(ids) == want || time.Now().After(deadline) {
			return ids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestNames(t *testing.T) {
	want := []string{"transactions.convert", "transactions.convert.wait.15m", "transactions.convert.delay.5s", "transactions.convert.delay.30s", "transactions.convert.dlq"}
	if diff := cmp.Diff(want, Names(topo)); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	want = []string{
		"transactions.convert", "transactions.convert.wait.15m", "transactions.convert.delay.5s", "transactions.convert.delay.30s",
		"transactions.convert.delay.2m", "transactions.convert.delay.5m", "transactions.convert.delay.8m", "transactions.convert.dlq",
	}
	if diff := cmp.Diff(want, Names(amqpx.Topology{})); diff != "" {
		t.Errorf("Names of the default topology (-want +got):\n%s", diff)
	}
}

func TestDepths(t *testing.T) {
	t.Parallel()
	conn, pub := broker(t)
	ctx := context.Background()
	deadLetter(t, pub, "a", "b", "c")
	if err := pub.Publish(ctx, amqpx.Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, Body: []byte("{}")},
		amqpx.Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	got, err := Depths(ctx, conn, []string{topo.Queue, "no.such.queue", topo.DLQ, topology5s()})
	if err != nil {
		t.Fatal(err)
	}
	want := []Depth{
		{Name: topo.Queue, Messages: 2},
		{Name: "no.such.queue", Missing: true},
		{Name: topo.DLQ, Messages: 3},
		{Name: topology5s()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Depths (-want +got):\n%s", diff)
	}
}

func topology5s() string { return topo.DelayQueueName(5 * time.Second) }

func TestListLeavesMessagesInTheDLQ(t *testing.T) {
	t.Parallel()
	conn, pub := broker(t)
	ctx := context.Background()
	deadLetter(t, pub, "a", "b", "c")
	stamp := time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)
	if err := pub.Publish(ctx, amqpx.Message{
		RoutingKey: topo.DLQ, MessageID: "poison", Body: []byte("not json"),
		Headers: amqp.Table{"x-first-death-reason": "delivery_limit"}, Timestamp: stamp,
	}); err != nil {
		t.Fatal(err)
	}

	got, err := List(ctx, conn, topo.DLQ, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := func(id string) Message {
		return Message{
			MessageID: id, TransactionID: id, Error: "retries exhausted: rates provider: 503",
			LastError: "rates provider: 503", Attempt: 5, Timestamp: stamp,
		}
	}
	want := []Message{m("a"), m("b"), m("c"), {MessageID: "poison", DeathReason: "delivery_limit", Timestamp: stamp}}
	slices.SortFunc(got, func(a, b Message) int { return strings.Compare(a.MessageID, b.MessageID) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	// Nothing was taken: all four are in the DLQ still, and listing with
	// a limit shows that many.
	if diff := cmp.Diff([]string{"a", "b", "c", "poison"}, idsIn(t, conn, topo.DLQ, 4)); diff != "" {
		t.Errorf("DLQ after listing (-want +got):\n%s", diff)
	}
	two, err := List(ctx, conn, topo.DLQ, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(two) != 2 {
		t.Errorf("List with limit 2 returned %d messages", len(two))
	}
	if diff := cmp.Diff([]string{"a", "b", "c", "poison"}, idsIn(t, conn, topo.DLQ, 4)); diff != "" {
		t.Errorf("DLQ after listing with a limit (-want +got):\n%s", diff)
	}
}

func TestRequeueMovesOnlyTheSelected(t *testing.T) {
	t.Parallel()
	conn, pub := broker(t)
	ctx := context.Background()
	deadLetter(t, pub, "a", "b", "c", "d")
	pick := func(m Message) bool { return m.Matches("a") || m.Matches("c") }

	res, err := Requeue(ctx, conn, pub, topo, pick)
	if err != nil {
		t.Fatal(err)
	}
	var moved []string
	for _, m := range res.Moved {
		moved = append(moved, m.MessageID)
	}
	slices.Sort(moved)
	if diff := cmp.Diff([]string{"a", "c"}, moved); diff != "" {
		t.Errorf("moved (-want +got):\n%s", diff)
	}
	if res.Left != 2 {
		t.Errorf("left %d in the DLQ, want 2", res.Left)
	}
	if diff := cmp.Diff([]string{"b", "d"}, idsIn(t, conn, topo.DLQ, 2)); diff != "" {
		t.Errorf("DLQ after requeue (-want +got):\n%s", diff)
	}

	// The work queue holds the copies: same body and properties, attempts
	// reset, the dead-letter reason and the broker's bookkeeping gone.
	work := drain(t, conn, topo.Queue)
	type copied struct {
		ID, ContentType, Type string
		Headers               amqp.Table
		Body                  string
		Timestamp             time.Time
	}
	var got []copied
	for _, d := range work {
		// The quorum queue counts deliveries in this header itself; what
		// it says about our copy is only that the count started afresh.
		if n, ok := d.Headers["x-delivery-count"]; ok && n != int64(0) {
			t.Errorf("message %s delivered from the work queue with x-delivery-count %v, want 0", d.MessageId, n)
		}
		delete(d.Headers, "x-delivery-count")
		got = append(got, copied{d.MessageId, d.ContentType, d.Type, d.Headers, string(d.Body), d.Timestamp.UTC()})
	}
	slices.SortFunc(got, func(a, b copied) int { return strings.Compare(a.ID, b.ID) })
	want := func(id string) copied {
		return copied{id, txmodel.MessageContentType, txmodel.MessageType, amqp.Table{
			amqpx.HeaderAttempt:   int64(0),
			amqpx.HeaderLastError: "rates provider: 503",
			"traceparent":         "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		}, string(body(t, id)), time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)}
	}
	if diff := cmp.Diff([]copied{want("a"), want("c")}, got); diff != "" {
		t.Errorf("work queue (-want +got):\n%s", diff)
	}

	// Twice in a row: the moved ones are gone, so nothing moves again.
	res, err = Requeue(ctx, conn, pub, topo, pick)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moved) != 0 || res.Left != 2 {
		t.Errorf("second requeue moved %v and left %d, want nothing moved and 2 left", res.Moved, res.Left)
	}
	if n := len(drain(t, conn, topo.Queue)); n != 0 {
		t.Errorf("second requeue put %d messages in the work queue, want 0", n)
	}
	if diff := cmp.Diff([]string{"b", "d"}, idsIn(t, conn, topo.DLQ, 2)); diff != "" {
		t.Errorf("DLQ after the second requeue (-want +got):\n%s", diff)
	}

	// Everything else.
	res, err = Requeue(ctx, conn, pub, topo, func(Message) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moved) != 2 || res.Left != 0 {
		t.Errorf("requeue of all moved %d and left %d, want 2 and 0", len(res.Moved), res.Left)
	}
	if diff := cmp.Diff([]string(nil), idsIn(t, conn, topo.DLQ, 0)); diff != "" {
		t.Errorf("DLQ after requeue of all (-want +got):\n%s", diff)
	}
	if n := len(drain(t, conn, topo.Queue)); n != 2 {
		t.Errorf("work queue holds %d messages, want 2", n)
	}
}

// failingPublisher never gets a confirm.
type failingPublisher struct{}

func (failingPublisher) Publish(context.Context, ...amqpx.Message) error {
	return amqpx.ErrNotConfirmed
}

func TestRequeueKeepsMessagesWhenThePublishFails(t *testing.T) {
	t.Parallel()
	conn, pub := broker(t)
	deadLetter(t, pub, "a", "b")
	res, err := Requeue(context.Background(), conn, failingPublisher{}, topo, func(Message) bool { return true })
	if !errors.Is(err, amqpx.ErrNotConfirmed) {
		t.Errorf("Requeue error %v, want ErrNotConfirmed", err)
	}
	if len(res.Moved) != 0 {
		t.Errorf("moved %v although nothing was confirmed", res.Moved)
	}
	if diff := cmp.Diff([]string{"a", "b"}, idsIn(t, conn, topo.DLQ, 2)); diff != "" {
		t.Errorf("DLQ after a failed requeue (-want +got):\n%s", diff)
	}
	if n := len(drain(t, conn, topo.Queue)); n != 0 {
		t.Errorf("work queue holds %d messages, want 0", n)
	}
}
