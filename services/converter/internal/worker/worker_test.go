package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/convert"
	"github.com/txpersister/txpersister/services/converter/internal/store"
)

// acker records how a delivery was settled.
type acker struct{ acked, nacked, requeued bool }

func (a *acker) Ack(uint64, bool) error { a.acked = true; return nil }
func (a *acker) Nack(_ uint64, _ bool, requeue bool) error {
	a.nacked, a.requeued = true, requeue
	return nil
}
func (a *acker) Reject(_ uint64, requeue bool) error { return a.Nack(0, false, requeue) }

type fakeConverter struct {
	processErr error
	panics     bool
	failErr    error
	failed     map[string]string
	// failedTenant is the tenant of the last failure recorded.
	failedTenant string
}

func (f *fakeConverter) Process(_ context.Context, tenant string, tx txmodel.Transaction, _ int) (convert.Result, error) {
	if f.panics {
		panic("assignment to entry in nil map") // as the runtime words one
	}
	if f.processErr != nil {
		return convert.Result{}, f.processErr
	}
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{Tenant: tenant, TransactionID: tx.ID, Status: txmodel.StatusProcessed}}, nil
}

func (f *fakeConverter) Fail(_ context.Context, tenant, id, reason string, _ int) (convert.Result, error) {
	if f.failErr != nil {
		return convert.Result{}, f.failErr
	}
	f.failed[id] = reason
	f.failedTenant = tenant
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{Tenant: tenant, TransactionID: id, Status: txmodel.StatusFailed, FailureReason: reason}}, nil
}

// fakeRetrier settles like amqpx.Retrier: acks after the (pretend) publish.
type fakeRetrier struct {
	left         int
	retried      int
	waited       []string
	deadLettered []string
}

func (f *fakeRetrier) Wait(_ context.Context, d amqpx.Delivery, reason string) error {
	f.waited = append(f.waited, reason)
	return d.Ack()
}

func (f *fakeRetrier) Retry(_ context.Context, d amqpx.Delivery, _ string) error {
	if f.left == 0 {
		return fmt.Errorf("retry: %w", amqpx.ErrRetriesExhausted)
	}
	f.left--
	f.retried++
	return d.Ack()
}

func (f *fakeRetrier) DeadLetter(_ context.Context, d amqpx.Delivery, reason string) error {
	f.deadLettered = append(f.deadLettered, reason)
	return d.Ack()
}

func delivery(t *testing.T, body []byte, id string) (amqpx.Delivery, *acker) {
	t.Helper()
	a := &acker{}
	return amqpx.NewDelivery(amqp.Delivery{Acknowledger: a, Body: body, MessageId: id, DeliveryTag: 1}), a
}

func message(t *testing.T) []byte {
	t.Helper()
	tx, err := txmodel.ParseTransaction([]byte(`{"transaction_id": "t1", "user_id": "u", "amount": 1, "currency": "USD", "timestamp": "2024-09-11T00:00:00"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: "acme", Transaction: tx, ReceivedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newWorker(c Converter, r Retrier, m *telemetry.Metrics) *Worker {
	return New(c, r, amqpx.Topology{Queue: "q"}, slog.New(slog.NewTextHandler(io.Discard, nil)), m, time.Now)
}

func TestHandleSettles(t *testing.T) {
	unavailable := fmt.Errorf("x: %w", convert.ErrRatesUnavailable)
	waiting := fmt.Errorf("x: %w", &convert.WaitError{Asked: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), Latest: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)})
	tests := []struct {
		name         string
		body         []byte
		conv         fakeConverter
		retriesLeft  int
		wantAcked    bool
		wantRequeued bool
		wantRetried  int
		wantWaited   int
		wantDLQ      string // the dead-letter reason's start, "" for none
		wantFailed   string // the failure reason's start, "" for none
		wantMetric   string // a counter that must be 1
	}{
		{name: "processed", body: message(t), retriesLeft: 5, wantAcked: true, wantMetric: "transactions_processed_total"},
		{
			name: "rate not final: parked, no retry used", body: message(t), conv: fakeConverter{processErr: waiting}, retriesLeft: 0,
			wantAcked: true, wantWaited: 1, wantMetric: "messages_waiting_total",
		},
		{
			name: "provider down: retry later", body: message(t), conv: fakeConverter{processErr: unavailable}, retriesLeft: 5,
			wantAcked: true, wantRetried: 1, wantMetric: "messages_retried_total",
		},
		{
			name: "provider down, no retry left: failed and dead-lettered", body: message(t), conv: fakeConverter{processErr: unavailable},
			wantAcked: true, wantDLQ: "rates provider unavailable after 1 attempts", wantFailed: "rates provider unavailable after 1 attempts",
			wantMetric: `messages_dead_lettered_total{reason="retries_exhausted"}`,
		},
		{
			name: "unexpected error: retried through the delay queues, not requeued", body: message(t),
			conv: fakeConverter{processErr: errors.New("ERROR: relation \"conversions\" does not exist (SQLSTATE 42P01)")}, retriesLeft: 5,
			wantAcked: true, wantRetried: 1,
		},
		{
			name: "unexpected error, no retry left: failed and dead-lettered", body: message(t),
			conv:      fakeConverter{processErr: errors.New("something odd")},
			wantAcked: true, wantDLQ: "could not be converted after 1 attempts: something odd", wantFailed: "could not be converted after 1 attempts",
		},
		{
			name: "database away until shutdown: requeued", body: message(t), conv: fakeConverter{processErr: fmt.Errorf("x: %w", store.ErrUnavailable)}, retriesLeft: 5,
			wantRequeued: true, wantMetric: "messages_requeued_total",
		},
		{
			name: "database refuses even the failure: dead-lettered with the reason", body: message(t),
			conv: fakeConverter{processErr: fmt.Errorf("x: %w: 22021", store.ErrRefused)}, retriesLeft: 5,
			wantAcked: true, wantDLQ: "the outcome could not be stored: x: database refused the data: 22021",
			wantMetric: `messages_dead_lettered_total{reason="refused"}`,
		},
		{
			name: "a panic: counted, failed and dead-lettered", body: message(t), conv: fakeConverter{panics: true}, retriesLeft: 5,
			wantAcked: true, wantDLQ: "the converter failed on this transaction: panic: assignment to entry in nil map",
			wantFailed: "the converter failed on this transaction: panic", wantMetric: "handler_panics_total",
		},
		{
			name: "undecodable: failed and dead-lettered", body: []byte(`{"version": 1, "transaction_id": "t1", "amount": "-1"}`), retriesLeft: 5,
			wantAcked: true, wantDLQ: "invalid message", wantFailed: "invalid message", wantMetric: `messages_dead_lettered_total{reason="invalid_message"}`,
		},
		{
			name: "undecodable, the failure refused too: dead-lettered, saying so", body: []byte(`garbage`),
			conv:      fakeConverter{failErr: fmt.Errorf("save: %w", store.ErrRefused)},
			wantAcked: true, wantDLQ: "invalid message: malformed input: message: invalid character 'g' at start of value (the failure could not be recorded",
		},
		{
			name:      "a message of year 0 (before 0.2.0 refused it): failed and dead-lettered",
			body:      []byte(`{"version":1,"transaction_id":"t1","user_id":"u","amount":"1.00","currency":"EUR","timestamp":"0000-06-15T00:00:00Z","received_at":"2024-09-11T00:00:00Z"}`),
			wantAcked: true, wantDLQ: "invalid message: invalid transaction: timestamp: lies outside the years 0001 to 9999", wantFailed: "invalid message",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := tt.conv
			conv.failed = map[string]string{}
			retr := &fakeRetrier{left: tt.retriesLeft}
			m := telemetry.NewMetrics("test_")
			d, a := delivery(t, tt.body, "t1")
			newWorker(&conv, retr, m).Handle(context.Background(), d)
			if a.acked != tt.wantAcked || a.requeued != tt.wantRequeued {
				t.Errorf("acked=%v requeued=%v, want acked=%v requeued=%v", a.acked, a.requeued, tt.wantAcked, tt.wantRequeued)
			}
			if retr.retried != tt.wantRetried || len(retr.waited) != tt.wantWaited {
				t.Errorf("retried=%d waited=%v, want %d and %d", retr.retried, retr.waited, tt.wantRetried, tt.wantWaited)
			}
			switch {
			case tt.wantDLQ == "" && len(retr.deadLettered) > 0:
				t.Errorf("dead-lettered %q, want not", retr.deadLettered)
			case tt.wantDLQ != "" && (len(retr.deadLettered) != 1 || !strings.HasPrefix(retr.deadLettered[0], tt.wantDLQ)):
				t.Errorf("dead-lettered %q, want one starting %q", retr.deadLettered, tt.wantDLQ)
			}
			reason, failed := conv.failed["t1"]
			if failed != (tt.wantFailed != "") || !strings.HasPrefix(reason, tt.wantFailed) {
				t.Errorf("failed=%v (%q), want a failure starting %q", failed, reason, tt.wantFailed)
			}
			if tt.wantMetric != "" {
				if got := m.Counter(tt.wantMetric).Get(); got != 1 {
					t.Errorf("%s = %d, want 1", tt.wantMetric, got)
				}
			}
		})
	}
}

func TestHandleWaitingShowsInTheGauges(t *testing.T) {
	waiting := &convert.WaitError{Asked: time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), Latest: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC)}
	conv := &fakeConverter{processErr: waiting, failed: map[string]string{}}
	m := telemetry.NewMetrics("test_")
	w := newWorker(conv, &fakeRetrier{}, m)
	for range 3 {
		d, _ := delivery(t, message(t), "t1")
		w.Handle(context.Background(), d)
	}
	var out strings.Builder
	m.WritePrometheus(&out)
	text := out.String()
	for _, want := range []string{"test_transactions_waiting 3\n", "test_messages_waiting_total 3\n", `test_rate_age_seconds_bucket{le="86400"} 3`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(text, "test_transactions_waiting_oldest_seconds ") {
		t.Error("metrics lack the oldest wait")
	}
}

// TestMessageTransaction: a message that cannot be decoded has its
// failure recorded only under the tenant it names (its header, else its
// body), or the implicit one when it predates tenants; never on a guess.
func TestMessageTransaction(t *testing.T) {
	tests := []struct {
		name       string
		headers    amqp.Table
		body       string
		wantTenant string
	}{
		{"header", amqp.Table{txmodel.MessageTenantHeader: "acme"}, `{"tenant": "globex", "transaction_id": "t1"}`, "acme"},
		{"body", nil, `{"version": 2, "tenant": "globex", "transaction_id": "t1"}`, "globex"},
		{"neither: before tenants", nil, `{"version": 1, "transaction_id": "t1"}`, txmodel.DefaultTenant},
		{"not JSON, no header", nil, `garbage`, txmodel.DefaultTenant},
		{"a bad header", amqp.Table{txmodel.MessageTenantHeader: "a b"}, `{"tenant": "globex"}`, ""},
		{"a header not a string", amqp.Table{txmodel.MessageTenantHeader: int32(1)}, `{"tenant": "globex"}`, ""},
		{"a bad tenant in the body", nil, `{"tenant": "", "transaction_id": "t1"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := amqpx.NewDelivery(amqp.Delivery{Headers: tt.headers, Body: []byte(tt.body), MessageId: "t1"})
			tenant, id := messageTransaction(d)
			if tenant != tt.wantTenant || id != "t1" {
				t.Errorf("messageTransaction = %q, %q; want %q, %q", tenant, id, tt.wantTenant, "t1")
			}
		})
	}
}
