// Command ceilings measures what this machine's parts can do on their own,
// the ceilings a pipeline built on them is compared with
// (docs/PERFORMANCE.md): a trivial Go JSON POST handler to aim wrk at, and
// RabbitMQ publishing persistent messages to a quorum queue with publisher
// confirms, then consuming them with manual acks.
//
// Usage:
//
//	ceilings http -addr 127.0.0.1:8099
//	ceilings amqp -url amqp://guest:guest@127.0.0.1:5672/ -n 200000 -inflight 1000 -prefetch 500
//
// PostgreSQL's ceilings are measured with pgbench (vegeta/ceilings/*.sql).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/service/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ceilings:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: ceilings http|amqp [flags]")
	}
	switch args[0] {
	case "http":
		fs := flag.NewFlagSet("http", flag.ContinueOnError)
		addr := fs.String("addr", "127.0.0.1:8099", "listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return serveTrivial(ctx, *addr)
	case "amqp":
		fs := flag.NewFlagSet("amqp", flag.ContinueOnError)
		url := fs.String("url", "amqp://guest:guest@127.0.0.1:5672/", "broker")
		n := fs.Int("n", 200000, "messages")
		inflight := fs.Int("inflight", 1000, "unconfirmed messages at most")
		prefetch := fs.Int("prefetch", 500, "consumer prefetch")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return measureAMQP(ctx, out, *url, *n, *inflight, *prefetch)
	default:
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// serveTrivial answers a JSON POST with a decoded-and-encoded echo: the
// least any HTTP API does.
func serveTrivial(ctx context.Context, addr string) error {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v map[string]any
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "transaction_id": v["transaction_id"]})
	})
	return server.Run(ctx, &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}, nil)
}

// measureAMQP publishes n persistent messages with confirms, at most
// inflight unconfirmed, into a fresh quorum queue, then consumes them with
// manual acks, and prints both rates.
func measureAMQP(ctx context.Context, out io.Writer, url string, n, inflight, prefetch int) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // the measurement is printed; nothing is left to lose
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	queue := fmt.Sprintf("ceilings-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return err
	}
	defer func() {
		if c, err := conn.Channel(); err == nil {
			_, _ = c.QueueDelete(queue, false, false, false)
		}
	}()
	start := time.Now()
	if err := publishConfirmed(ctx, ch, queue, n, inflight); err != nil {
		return err
	}
	pub := time.Since(start)
	fmt.Fprintf(out, "published %d persistent messages to a quorum queue with confirms (%d in flight): %.0f/s (%s)\n", n, inflight, float64(n)/pub.Seconds(), pub.Round(time.Millisecond))

	cch, err := conn.Channel()
	if err != nil {
		return err
	}
	start = time.Now()
	if err := consumeAcked(ctx, cch, queue, n, prefetch); err != nil {
		return err
	}
	con := time.Since(start)
	fmt.Fprintf(out, "consumed %d with manual acks (prefetch %d): %.0f/s (%s)\n", n, prefetch, float64(n)/con.Seconds(), con.Round(time.Millisecond))
	return nil
}

// publishConfirmed publishes n persistent messages to queue on ch, at most
// inflight unconfirmed, and returns once the broker confirmed them all.
func publishConfirmed(ctx context.Context, ch *amqp.Channel, queue string, n, inflight int) error {
	if err := ch.Confirm(false); err != nil {
		return err
	}
	body := []byte(`{"version":1,"transaction_id":"00000000-0000-0000-0000-000000000000","user_id":"123","amount":"100.00","currency":"USD","timestamp":"2024-09-11T00:00:00Z","received_at":"2024-09-11T00:00:00Z"}`)
	pending := make(chan *amqp.DeferredConfirmation, inflight)
	errc := make(chan error, 1)
	go func() {
		for dc := range pending {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				errc <- fmt.Errorf("message %d not confirmed: %w", dc.DeliveryTag, err)
				return
			}
			if !ok {
				errc <- fmt.Errorf("message %d not confirmed: the broker nacked it", dc.DeliveryTag)
				return
			}
		}
		errc <- nil
	}()
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "application/json", MessageId: fmt.Sprint(i), Body: body,
		})
		if err != nil {
			close(pending)
			return err
		}
		pending <- dc
	}
	close(pending)
	return <-errc
}

// consumeAcked consumes n messages from queue on ch with manual acks, at
// most prefetch unacknowledged.
func consumeAcked(ctx context.Context, ch *amqp.Channel, queue string, n, prefetch int) error {
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return err
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	for i := range n {
		select {
		case d := <-deliveries:
			if err := d.Ack(false); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return fmt.Errorf("consumed %d of %d, then nothing for 30 s", i, n)
		}
	}
	return nil
}
