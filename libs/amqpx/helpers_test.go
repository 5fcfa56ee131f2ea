package amqpx

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

// testTimeout bounds every wait in a test, so that a broken feature fails
// the test instead of hanging it. It is no assertion about speed.
const testTimeout = 30 * time.Second

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// testTopology is a topology with tiny delays and a small delivery limit.
func testTopology() Topology {
	return Topology{
		RetryDelays:   []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
		DeliveryLimit: 2,
		WaitDelay:     150 * time.Millisecond,
	}.WithDefaults()
}

// dial connects to url, declaring topo on each connection, and closes the
// Conn in t.Cleanup.
func dial(t testing.TB, url string, topo Topology, opts ...Option) *Conn {
	t.Helper()
	opts = append([]Option{OnConnect(topo.Declare), WithLogger(testLogger(t))}, opts...)
	c, err := Dial(testContext(t), url, opts...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Conn.Close: %v", err)
		}
	})
	return c
}

func newPublisher(t testing.TB, c *Conn) *Publisher {
	t.Helper()
	p := NewPublisher(c)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// rawChannel opens a plain amqp091 channel for inspecting queues.
func rawChannel(t testing.TB, c *Conn) *amqp.Channel {
	t.Helper()
	ch, err := c.Channel(testContext(t))
	if err != nil {
		t.Fatalf("Channel: %v", err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	return ch
}

// getN takes n messages off queue with basic.get (acking them), polling
// until they are there.
func getN(t testing.TB, ch *amqp.Channel, queue string, n int) []amqp.Delivery {
	t.Helper()
	ctx := testContext(t)
	var got []amqp.Delivery
	for len(got) < n {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %q: %v", queue, err)
		}
		if ok {
			got = append(got, d)
			continue
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			t.Fatalf("got %d of %d messages from %q before timeout", len(got), n, queue)
		}
	}
	return got
}

// readyCount returns the number of ready messages in queue.
func readyCount(t testing.TB, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect queue %q: %v", queue, err)
	}
	return q.Messages
}

// waitReady waits until queue has n ready messages.
func waitReady(t testing.TB, ch *amqp.Channel, queue string, n int) {
	t.Helper()
	ctx := testContext(t)
	for {
		got := readyCount(t, ch, queue)
		if got == n {
			return
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			t.Fatalf("queue %q has %d ready messages, want %d", queue, got, n)
		}
	}
}

// waitGen waits until c has made its n-th connection.
func waitGen(t testing.TB, c *Conn, n uint64) {
	t.Helper()
	ctx := testContext(t)
	for {
		c.mu.Lock()
		gen := c.gen
		c.mu.Unlock()
		if gen >= n {
			return
		}
		if !sleepCtx(ctx, 5*time.Millisecond) {
			t.Fatalf("connection %d not made before timeout (have %d)", n, gen)
		}
	}
}

func waitConsuming(t testing.TB, c *Consumer) {
	t.Helper()
	ctx := testContext(t)
	for !c.Consuming() {
		if !sleepCtx(ctx, 5*time.Millisecond) {
			t.Fatal("consumer not subscribed before timeout")
		}
	}
}

// runConsumer runs cons in the background until the test ends and returns
// a function that stops it and returns Run's error.
func runConsumer(t testing.TB, cons *Consumer, h Handler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- cons.Run(ctx, h) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-errc
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	waitConsuming(t, cons)
	return stop
}

// recv receives one value from c or fails the test on timeout.
func recv[T any](t testing.TB, c <-chan T) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(testTimeout):
		var zero T
		t.Fatalf("no %T received before timeout", zero)
		return zero
	}
}

// queueInfo is one queue as the broker describes it.
type queueInfo = amqptest.Queue

// listQueues lists the queues of url's vhost with their types and arguments.
func listQueues(t testing.TB, url string) map[string]queueInfo {
	t.Helper()
	return amqptest.Queues(t, url)
}

// testLogger logs to t until the test's cleanups have run.
func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
