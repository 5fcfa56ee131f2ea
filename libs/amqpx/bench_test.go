package amqpx

import (
	"fmt"
	"testing"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

// BenchmarkPublish publishes batches of 1000 persistent, confirmed messages
// into the pipeline's quorum work queue; one op is one batch.
func BenchmarkPublish(b *testing.B) {
	url := amqptest.NewVhost(b)
	topo := testTopology()
	c := dial(b, url, topo)
	p := newPublisher(b, c)
	ch := rawChannel(b, c)

	const batch = 1000
	msgs := make([]Message, batch)
	body := []byte(`{"transaction_id":"6f1c1b0e-8d7e-4b8e-9a55-2f7f1f0d9c11","user_id":"123","amount":"100.00","currency":"USD","timestamp":"2024-09-11T00:00:00Z"}`)
	for i := range msgs {
		msgs[i] = Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: fmt.Sprint(i), ContentType: "application/json", Body: body}
	}
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := p.Publish(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := ch.QueuePurge(topo.Queue, false); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
}
