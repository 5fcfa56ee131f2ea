package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	"github.com/txpersister/txpersister/libs/txmodel"
	apischema "github.com/txpersister/txpersister/services/api/schema"
	converterschema "github.com/txpersister/txpersister/services/converter/schema"
	"github.com/txpersister/txpersister/tools/txctl/internal/queues"
)

var now = time.Date(2024, 9, 14, 12, 0, 0, 0, time.UTC)

var delays = []time.Duration{5 * time.Second, 30 * time.Second}

// database returns the URL of a fresh database with both services'
// schemas, holding transactions p1 (processed), f1 and f2 (failed), r1
// (received) and r1's outbox entry, written an hour before now.
func database(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	url := pgtest.NewDatabase(t, apischema.Migrate, converterschema.Migrate)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for _, s := range []string{
		`INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at) VALUES
			('default', 'p1', 'u1', 10.50, 'USD', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z'),
			('default', 'f1', 'u2', 100.25, 'USD', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z'),
			('default', 'f2', 'u2', 3, 'GBP', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z'),
			('default', 'r1', 'u3', 5, 'EUR', '2024-09-11T08:00:00Z', '2024-09-11T12:00:00Z')`,
		`INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, failure_reason, processed_at) VALUES
			('default', 'p1', 'processed', 9.45, 'EUR', 0.9, '2024-09-11', NULL, '2024-09-12T01:00:00Z'),
			('default', 'f1', 'failed', NULL, NULL, NULL, NULL, 'rates provider: 503', '2024-09-12T01:00:00Z'),
			('default', 'f2', 'failed', NULL, NULL, NULL, NULL, 'no rate for GBP', '2024-09-13T01:00:00Z')`,
		`INSERT INTO outbox (tenant, transaction_id, payload, created_at) VALUES ('default', 'r1', 'x', '2024-09-14T11:00:00Z')`,
	} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
	return url, pool
}

// broker returns the URL of a fresh vhost with the pipeline's topology
// declared (as the converter declares it), two messages in the work queue
// and dead-lettered messages for a, b and c.
func broker(t *testing.T) (string, *amqpx.Conn) {
	t.Helper()
	url := amqptest.NewVhost(t)
	topo := amqpx.DefaultTopology()
	topo.RetryDelays = delays
	ctx := context.Background()
	conn, err := amqpx.Dial(ctx, url, amqpx.OnConnect(topo.Declare))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	pub := amqpx.NewPublisher(conn)
	defer pub.Close()
	msgs := []amqpx.Message{
		{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "w1", Body: []byte("{}")},
		{Exchange: topo.Exchange, RoutingKey: topo.RoutingKey, MessageID: "w2", Body: []byte("{}")},
	}
	for _, id := range []string{"a", "b", "c"} {
		msgs = append(msgs, amqpx.Message{
			RoutingKey: topo.DLQ,
			MessageID:  id,
			Headers:    amqp.Table{amqpx.HeaderAttempt: int64(2), amqpx.HeaderError: "retries exhausted"},
			Body:       []byte(`{"version":1,"transaction_id":"` + id + `"}`),
		})
	}
	if err := pub.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	return url, conn
}

// txctl runs the command line args against the given servers and returns
// its standard output and error.
func txctl(t *testing.T, dbURL, amqpURL string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	vars := map[string]string{"DATABASE_URL": dbURL, "AMQP_URL": amqpURL}
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, env{
		getenv: func(k string) string { return vars[k] },
		stdout: &out,
		stderr: &errOut,
		now:    func() time.Time { return now },
	})
	return out.String(), errOut.String(), err
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return v
}

func TestStatus(t *testing.T) {
	t.Parallel()
	dbURL, _ := database(t)
	amqpURL, _ := broker(t)

	out, _, err := txctl(t, dbURL, amqpURL, "status", "-json", "-retry-delays", "5s,30s")
	if err != nil {
		t.Fatal(err)
	}
	oldest := time.Date(2024, 9, 14, 11, 0, 0, 0, time.UTC)
	want := statusReport{
		Outbox:       &outboxReport{Backlog: 1, Oldest: &oldest, OldestAgeSeconds: 3600},
		Transactions: map[string]int64{"received": 1, "processed": 1, "failed": 2},
		Queues: []queues.Depth{
			{Name: "transactions.convert", Messages: 2},
			{Name: "transactions.convert.wait.15m"},
			{Name: "transactions.convert.delay.5s"},
			{Name: "transactions.convert.delay.30s"},
			{Name: "transactions.convert.dlq", Messages: 3},
		},
	}
	if diff := cmp.Diff(want, decode[statusReport](t, out)); diff != "" {
		t.Errorf("status -json (-want +got):\n%s", diff)
	}

	// Delay queues of another ladder do not exist: reported, not an error.
	out, _, err = txctl(t, dbURL, amqpURL, "status", "-json", "-retry-delays", "1m")
	if err != nil {
		t.Fatal(err)
	}
	got := decode[statusReport](t, out).Queues
	if diff := cmp.Diff(queues.Depth{Name: "transactions.convert.delay.1m", Missing: true}, got[2]); diff != "" {
		t.Errorf("status with another ladder (-want +got):\n%s", diff)
	}

	out, _, err = txctl(t, dbURL, amqpURL, "status", "-retry-delays", "5s,30s")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"outbox:        1 waiting, oldest written 2024-09-14T11:00:00Z (1h0m0s ago)",
		"transactions:  1 received, 1 processed, 2 failed",
		"transactions.convert.dlq        3         0",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("status output lacks %q:\n%s", line, out)
		}
	}
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func TestStatusReportsWhatItCanWhileRabbitMQIsDown(t *testing.T) {
	t.Parallel()
	dbURL, _ := database(t)
	out, _, err := txctl(t, dbURL, "amqp://guest:secret@"+closedPort(t)+"/", "status", "-json")
	if err == nil {
		t.Fatal("status succeeded without RabbitMQ")
	}
	rep := decode[statusReport](t, out)
	if diff := cmp.Diff(map[string]int64{"received": 1, "processed": 1, "failed": 2}, rep.Transactions); diff != "" {
		t.Errorf("transactions (-want +got):\n%s", diff)
	}
	if rep.Queues != nil || len(rep.Errors) != 1 || !strings.HasPrefix(rep.Errors[0], "RabbitMQ: ") {
		t.Errorf("queues %v, errors %q; want no queues and one RabbitMQ error", rep.Queues, rep.Errors)
	}
	if strings.Contains(out, "secret") || strings.Contains(err.Error(), "secret") {
		t.Errorf("the broker password is shown: %v\n%s", err, out)
	}
}

func TestDLQListAndRequeue(t *testing.T) {
	t.Parallel()
	amqpURL, conn := broker(t)

	out, stderr, err := txctl(t, "", amqpURL, "dlq", "list", "-json")
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(decode[[]queues.Message](t, out)); !cmp.Equal([]string{"a", "b", "c"}, got) {
		t.Errorf("dlq list: %v, want a, b, c", got)
	}
	if !strings.Contains(stderr, "all are still in transactions.convert.dlq") {
		t.Errorf("dlq list does not say the messages stay: %q", stderr)
	}

	out, _, err = txctl(t, "", amqpURL, "dlq", "requeue", "-id", "a,c", "-id", "zz", "-json")
	if err != nil {
		t.Fatal(err)
	}
	rep := decode[requeueReport](t, out)
	if got := ids(rep.Moved); !cmp.Equal([]string{"a", "c"}, got) || rep.Left != 1 || !cmp.Equal([]string{"zz"}, rep.NotFound) {
		t.Errorf("requeue: moved %v, left %d, not found %v; want a and c, 1, zz", got, rep.Left, rep.NotFound)
	}

	// Twice: nothing more moves, and the tool says why.
	out, _, err = txctl(t, "", amqpURL, "dlq", "requeue", "-id", "a", "-id", "c")
	if err != nil {
		t.Fatal(err)
	}
	want := "moved 0 messages from transactions.convert.dlq to exchange \"transactions\", routing key \"convert\"; 1 left in the DLQ\n" +
		"not in the DLQ (moved before, or never there): a, c\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("second requeue (-want +got):\n%s", diff)
	}

	// The work queue holds its two and the two moved, each reset to its
	// first attempt.
	// (A quorum queue counts a message given back by a closed channel as
	// ready a moment after the close.)
	deadline := time.Now().Add(10 * time.Second)
	for {
		depths, err := queues.Depths(context.Background(), conn, []string{"transactions.convert", "transactions.convert.dlq"})
		if err != nil {
			t.Fatal(err)
		}
		if depths[0].Messages == 4 && depths[1].Messages == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after requeue: %+v; want 4 in the work queue and 1 in the DLQ", depths)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(ms []queues.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MessageID)
	}
	// basic.get order is the queue's, which listing may have changed.
	slices.Sort(out)
	return out
}

func TestReprocess(t *testing.T) {
	t.Parallel()
	dbURL, pool := database(t)
	ctx := context.Background()
	counts := func() (failed, outbox int) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM conversions WHERE status = 'failed'), (SELECT count(*) FROM outbox)`).Scan(&failed, &outbox); err != nil {
			t.Fatal(err)
		}
		return failed, outbox
	}

	out, _, err := txctl(t, dbURL, "", "reprocess", "-status", "failed", "-since", "2024-09-12", "-dry-run", "-json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reprocessReport{DryRun: true, Reprocessed: []string{"f1", "f2"}}, decode[reprocessReport](t, out)); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
	if f, o := counts(); f != 2 || o != 1 {
		t.Errorf("after a dry run: %d failed, %d in the outbox; want 2 and 1", f, o)
	}

	out, _, err = txctl(t, dbURL, "", "reprocess", "-id", "f1", "-id", "p1", "-v")
	if err != nil {
		t.Fatal(err)
	}
	want := "reprocessed 1 failed transactions in 1 database transactions; the api's relay publishes them from the outbox\n" +
		"f1\n" +
		"not failed (received, processed, already reprocessed, or unknown), left alone: p1\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("reprocess -id (-want +got):\n%s", diff)
	}
	var payload []byte
	if err := pool.QueryRow(ctx, `SELECT payload FROM outbox WHERE transaction_id = 'f1'`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if m, err := txmodel.DecodeMessage(payload); err != nil || m.Transaction.Amount.String() != "100.25" {
		t.Errorf("outbox payload for f1 decodes to %+v, %v", m, err)
	}

	out, _, err = txctl(t, dbURL, "", "reprocess", "-status", "failed", "-reason-like", "no rate%", "-json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reprocessReport{Reprocessed: []string{"f2"}, Batches: 1}, decode[reprocessReport](t, out)); diff != "" {
		t.Errorf("reprocess by reason (-want +got):\n%s", diff)
	}
	out, _, err = txctl(t, dbURL, "", "reprocess", "-status", "failed", "-json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(reprocessReport{Reprocessed: []string{}}, decode[reprocessReport](t, out)); diff != "" {
		t.Errorf("reprocess with nothing failed left (-want +got):\n%s", diff)
	}
	if f, o := counts(); f != 0 || o != 3 {
		t.Errorf("after reprocessing: %d failed, %d in the outbox; want 0 and 3", f, o)
	}
	var processed string
	if err := pool.QueryRow(ctx, `SELECT status FROM conversions WHERE transaction_id = 'p1'`).Scan(&processed); err != nil || processed != "processed" {
		t.Errorf("p1 is %q (%v), want processed", processed, err)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	// No server is needed: each is refused before connecting.
	tests := [][]string{
		{},
		{"frobnicate"},
		{"dlq"},
		{"dlq", "peek"},
		{"status", "extra"},
		{"status", "-retry-delays", "5s,soon"},
		{"status", "-retry-delays", "1500us"},
		{"dlq", "list", "-limit", "-1"},
		{"dlq", "requeue"},
		{"dlq", "requeue", "-all", "-id", "a"},
		{"reprocess"},
		{"reprocess", "-status", "processed"},
		{"reprocess", "-id", "a", "-status", "failed"},
		{"reprocess", "-id", "a", "-reason-like", "x%"},
		{"reprocess", "-status", "failed", "-since", "yesterday"},
		{"reprocess", "-status", "failed", "-since", "2024-09-12", "-until", "2024-09-11"},
		{"reprocess", "-status", "failed", "-batch", "0"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, _, err := txctl(t, "", "", args...)
			if !errors.Is(err, errUsage) {
				t.Errorf("txctl %q: error %v, want a usage error", args, err)
			}
		})
	}
}
