package amqpx

import (
	"context"
	"errors"
	"io"
	"net"
	neturl "net/url"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

func TestDialUnreachable(t *testing.T) {
	t.Parallel()
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	_, err = Dial(testContext(t), "amqp://guest:s3cret@"+addr+"/", WithDialTimeout(2*time.Second))
	if err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name the address %s", err, addr)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %q leaks the password", err)
	}
}

func TestDialFailsWhenSetupFails(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	boom := errors.New("boom")
	_, err := Dial(testContext(t), url, OnConnect(func(*amqp.Channel) error { return boom }))
	if !errors.Is(err, boom) {
		t.Fatalf("Dial error = %v, want it to wrap %v", err, boom)
	}
}

func TestConnReconnectsAndRerunsSetup(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	var setups atomic.Int32
	topo := testTopology()
	c := dial(t, url, topo, OnConnect(func(*amqp.Channel) error {
		setups.Add(1)
		return nil
	}))
	if !c.Ready() {
		t.Fatal("Ready() = false after Dial")
	}

	// Delete the work queue: only a re-run of the topology callback brings
	// it back.
	ch := rawChannel(t, c)
	if _, err := ch.QueueDelete(topo.Queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	amqptest.CloseConnections(t, url)
	waitGen(t, c, 2)

	if got := setups.Load(); got != 2 {
		t.Errorf("setup callback ran %d times, want 2", got)
	}
	if !c.Ready() {
		t.Error("Ready() = false after reconnect")
	}
	if n := readyCount(t, rawChannel(t, c), topo.Queue); n != 0 {
		t.Errorf("redeclared queue has %d messages, want 0", n)
	}
}

func TestConnChannelWaitsForReconnect(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	c := dial(t, url, testTopology())
	amqptest.CloseConnections(t, url)
	// Whether or not the Conn has noticed yet, Channel must hand out a
	// working channel.
	ch, err := c.Channel(testContext(t))
	for err == nil {
		_, err = ch.QueueDeclarePassive(testTopology().Queue, true, false, false, false, nil)
		if err == nil {
			break
		}
		// The channel belonged to the dying connection.
		ch, err = c.Channel(testContext(t))
	}
	if err != nil {
		t.Fatalf("Channel after forced close: %v", err)
	}
	_ = ch.Close()
}

func TestConnChannelHonoursContext(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	c := dial(t, url, testTopology())
	// Pretend the connection is down for a moment.
	c.mu.Lock()
	live := c.conn
	c.mu.Unlock()
	c.setDown()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Channel(ctx)
	c.setUp(live)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Channel while down = %v, want context.DeadlineExceeded", err)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	c, err := Dial(testContext(t), url)
	if err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(c)
	if err := p.Publish(testContext(t), Message{RoutingKey: "nowhere"}); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("Publish unroutable = %v, want ErrNotConfirmed", err)
	}
	for i := range 2 {
		if err := p.Close(); err != nil {
			t.Errorf("Publisher.Close #%d: %v", i+1, err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Conn.Close #%d: %v", i+1, err)
		}
	}
	if c.Ready() {
		t.Error("Ready() = true after Close")
	}
	if _, err := c.Channel(testContext(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Channel after Close = %v, want ErrClosed", err)
	}
	if err := p.Publish(testContext(t), Message{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	cons := NewConsumer(c, "q", 1)
	if err := cons.Run(testContext(t), func(context.Context, Delivery) {}); !errors.Is(err, ErrClosed) {
		t.Errorf("Consumer.Run after Close = %v, want ErrClosed", err)
	}
}

// TestNoGoroutineLeak is not parallel, so that no other test's goroutines
// come and go while it counts.
func TestNoGoroutineLeak(t *testing.T) {
	url := amqptest.NewVhost(t)
	before := runtime.NumGoroutine()

	func() {
		topo := testTopology()
		c, err := Dial(testContext(t), url, OnConnect(topo.Declare))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p := NewPublisher(c)
		defer p.Close()
		cons := NewConsumer(c, topo.Queue, 4, WithConcurrency(2))
		got := make(chan string, 10)
		ctx, cancel := context.WithCancel(testContext(t))
		done := make(chan error, 1)
		go func() {
			done <- cons.Run(ctx, func(_ context.Context, d Delivery) {
				_ = d.Ack()
				got <- d.MessageId
			})
		}()
		for i := range 3 {
			waitGen(t, c, uint64(i+1))
			waitConsuming(t, cons)
			publishEventually(t, p, Message{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "m"})
			recv(t, got)
			amqptest.CloseConnections(t, url)
		}
		waitGen(t, c, 4)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	ctx := testContext(t)
	for runtime.NumGoroutine() > before {
		if !sleepCtx(ctx, 10*time.Millisecond) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines after closing everything, %d before:\n%s", runtime.NumGoroutine(), before, b.String())
		}
	}
}

// publishEventually publishes msg, retrying while a reconnect is under way,
// as the outbox relay does.
func publishEventually(t testing.TB, p *Publisher, msg Message) {
	t.Helper()
	ctx := testContext(t)
	for {
		err := p.Publish(ctx, msg)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrNotConfirmed) || ctx.Err() != nil {
			t.Fatalf("Publish: %v", err)
		}
		t.Logf("Publish: %v; retrying", err)
		sleepCtx(ctx, 20*time.Millisecond)
	}
}

func TestDialUntilWaitsForTheBroker(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	// A port nobody listens on yet; a forwarder to the broker opens on it
	// after a few failed tries.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	broker := u.Host
	u.Host = addr

	var retries atomic.Int32
	opened := make(chan struct{})
	go func() {
		for retries.Load() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		fwd, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("listen %s: %v", addr, err)
			close(opened)
			return
		}
		t.Cleanup(func() { fwd.Close() })
		close(opened)
		for {
			c, err := fwd.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", broker)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := DialUntil(ctx, u.String(), func(error, time.Duration) { retries.Add(1) })
	if err != nil {
		t.Fatalf("DialUntil: %v", err)
	}
	defer c.Close()
	<-opened
	if retries.Load() < 2 {
		t.Errorf("connected after %d retries, want at least 2", retries.Load())
	}

	// With the broker away for good, it returns when ctx ends.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := DialUntil(ctx2, "amqp://guest:guest@127.0.0.1:1/", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DialUntil with no broker: err = %v, want the context's deadline", err)
	}
}

// TestDialTriesEachNode: with several nodes, Dial keeps the first that
// answers; when none does, the error names each, never a password.
func TestDialTriesEachNode(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	url := amqptest.NewVhost(t)
	c, err := Dial(testContext(t), " amqp://guest:s3cret@"+dead+"/ , "+url, WithDialTimeout(2*time.Second))
	if err != nil {
		t.Fatalf("Dial with a dead node first: %v", err)
	}
	ch, err := c.Channel(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = ch.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead2 := l2.Addr().String()
	_ = l2.Close()
	_, err = Dial(testContext(t), "amqp://guest:s3cret@"+dead+"/,amqp://guest:s3cret@"+dead2+"/", WithDialTimeout(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), dead2) || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("no node up: err %v, want one naming both nodes without the password", err)
	}
	if _, err := Dial(testContext(t), " , "); err == nil {
		t.Error("Dial of no URL succeeded")
	}
}
