package amqpx

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

// published is what a consumer sees of a message.
type published struct {
	MessageID    string
	ContentType  string
	Type         string
	DeliveryMode uint8
	Headers      amqp.Table
	Body         string
	Timestamp    time.Time
}

func seen(d amqp.Delivery) published {
	// Quorum queues add their delivery count.
	delete(d.Headers, "x-delivery-count")
	return published{
		MessageID:    d.MessageId,
		ContentType:  d.ContentType,
		Type:         d.Type,
		DeliveryMode: d.DeliveryMode,
		Headers:      d.Headers,
		Body:         string(d.Body),
		Timestamp:    d.Timestamp,
	}
}

func TestPublishConfirmed(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	ts := time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)
	const n = 200
	msgs := make([]Message, n)
	want := make([]published, n)
	for i := range msgs {
		id := fmt.Sprintf("tx-%03d", i)
		msgs[i] = Message{
			Exchange:    topo.Exchange,
			RoutingKey:  topo.RoutingKey,
			MessageID:   id,
			ContentType: "application/json",
			Type:        "transaction.created",
			Headers:     amqp.Table{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "n": int32(i)},
			Body:        []byte(`{"transaction_id":"` + id + `"}`),
			Timestamp:   ts,
		}
		want[i] = published{
			MessageID:    id,
			ContentType:  "application/json",
			Type:         "transaction.created",
			DeliveryMode: amqp.Persistent,
			Headers:      amqp.Table{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "n": int32(i)},
			Body:         `{"transaction_id":"` + id + `"}`,
			Timestamp:    ts,
		}
	}
	if err := p.Publish(testContext(t), msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}

	ch := rawChannel(t, c)
	var got []published
	for _, d := range getN(t, ch, topo.Queue, n) {
		got = append(got, seen(d))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("queued messages (-want +got):\n%s", diff)
	}
	if extra := readyCount(t, ch, topo.Queue); extra != 0 {
		t.Errorf("%d messages more than published in the queue", extra)
	}
}

func TestPublishDefaultsTimestamp(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	before := time.Now().Truncate(time.Second)
	if err := newPublisher(t, c).Publish(testContext(t), Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey}); err != nil {
		t.Fatal(err)
	}
	d := getN(t, rawChannel(t, c), topo.Queue, 1)[0]
	if d.Timestamp.Before(before) {
		t.Errorf("Timestamp = %s, want the time of publishing (>= %s)", d.Timestamp, before)
	}
}

func TestPublishConcurrent(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	const publishers, each = 8, 25
	var wg sync.WaitGroup
	errs := make([]error, publishers)
	for i := range publishers {
		wg.Go(func() {
			for j := range each {
				msg := Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: fmt.Sprintf("%d-%d", i, j)}
				if err := p.Publish(testContext(t), msg); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	ids := map[string]bool{}
	for _, d := range getN(t, rawChannel(t, c), topo.Queue, publishers*each) {
		ids[d.MessageId] = true
	}
	if len(ids) != publishers*each {
		t.Errorf("got %d distinct messages, want %d", len(ids), publishers*each)
	}
}

func TestPublishNotConfirmed(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)
	good := Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "good"}

	tests := []struct {
		name string
		msgs []Message
	}{
		{"no binding for the key", []Message{{Exchange: topo.Exchange, RoutingKey: "no-such-key", MessageID: "lost"}}},
		{"no queue of that name", []Message{{RoutingKey: "no-such-queue", MessageID: "lost"}}},
		{"one unroutable among routable", []Message{good, {Exchange: topo.Exchange, RoutingKey: "no-such-key", MessageID: "lost"}, good}},
		// The broker closes the channel (404): confirms never come.
		{"no such exchange", []Message{{Exchange: "no-such-exchange", RoutingKey: "k", MessageID: "lost"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Publish(testContext(t), tt.msgs...)
			if !errors.Is(err, ErrNotConfirmed) {
				t.Fatalf("Publish = %v, want ErrNotConfirmed", err)
			}
			t.Logf("Publish: %v", err)
			// The publisher is still usable afterwards.
			if err := p.Publish(testContext(t), good); err != nil {
				t.Fatalf("Publish after failure: %v", err)
			}
		})
	}
}

func TestPublishAfterForcedClose(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)
	msg := Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "before"}
	if err := p.Publish(testContext(t), msg); err != nil {
		t.Fatalf("Publish before close: %v", err)
	}

	amqptest.CloseConnections(t, url)
	waitGen(t, c, 2)

	// The publisher's channel died with the old connection; it must notice
	// and publish on the new one, on the first try.
	msg.MessageID = "after"
	if err := p.Publish(testContext(t), msg); err != nil {
		t.Fatalf("Publish after reconnect: %v", err)
	}
	var ids []string
	for _, d := range getN(t, rawChannel(t, c), topo.Queue, 2) {
		ids = append(ids, d.MessageId)
	}
	if diff := cmp.Diff([]string{"before", "after"}, ids); diff != "" {
		t.Errorf("queued message ids (-want +got):\n%s", diff)
	}
}

func TestPublishDuringOutageFailsThenSucceeds(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := testTopology()
	c := dial(t, url, topo)
	p := newPublisher(t, c)

	// Publish in a loop while the connection is forced closed: every call
	// either succeeds or says ErrNotConfirmed; none hangs or is lost when it
	// claims success.
	stop := make(chan struct{})
	var confirmed []string
	var failed int
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			id := fmt.Sprintf("m%d", i)
			err := p.Publish(testContext(t), Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: id})
			switch {
			case err == nil:
				confirmed = append(confirmed, id)
			case errors.Is(err, ErrNotConfirmed):
				failed++
			default:
				done <- err
				return
			}
		}
	}()
	amqptest.CloseConnections(t, url)
	waitGen(t, c, 2)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("Publish: %v", err)
	}
	t.Logf("%d confirmed, %d not confirmed", len(confirmed), failed)
	publishEventually(t, p, Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "last"})

	got := map[string]bool{}
	ch := rawChannel(t, c)
	for readyCount(t, ch, topo.Queue) > 0 {
		for _, d := range getN(t, ch, topo.Queue, 1) {
			got[d.MessageId] = true
		}
	}
	for _, id := range append(confirmed, "last") {
		if !got[id] {
			t.Errorf("confirmed message %s is not in the queue", id)
		}
	}
}
