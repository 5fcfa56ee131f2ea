package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	failed     map[string]string
}

func (f *fakeConverter) Process(_ context.Context, tx txmodel.Transaction, _ int) (convert.Result, error) {
	if f.processErr != nil {
		return convert.Result{}, f.processErr
	}
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{TransactionID: tx.ID, Status: txmodel.StatusProcessed}}, nil
}

func (f *fakeConverter) Fail(_ context.Context, id, reason string, _ int) (convert.Result, error) {
	f.failed[id] = reason
	return convert.Result{Recorded: true, Conversion: txmodel.Conversion{TransactionID: id, Status: txmodel.StatusFailed, FailureReason: reason}}, nil
}

// fakeRetrier settles like amqpx.Retrier: acks after the (pretend) publish.
type fakeRetrier struct {
	left         int
	retried      int
	deadLettered []string
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
	b, err := txmodel.EncodeMessage(tx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newWorker(c Converter, r Retrier) *Worker {
	return New(c, r, "q", slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"), time.Now)
}

func TestHandleSettles(t *testing.T) {
	unavailable := fmt.Errorf("x: %w", convert.ErrRatesUnavailable)
	tests := []struct {
		name         string
		body         []byte
		processErr   error
		retriesLeft  int
		wantAcked    bool
		wantRequeued bool
		wantRetried  int
		wantDLQ      int
		wantFailed   bool
	}{
		{"processed", message(t), nil, 5, true, false, 0, 0, false},
		{"provider down: retry later", message(t), unavailable, 5, true, false, 1, 0, false},
		{"provider down, no retry left: failed and dead-lettered", message(t), unavailable, 0, true, false, 0, 1, true},
		{"database away until shutdown: requeued", message(t), fmt.Errorf("x: %w", store.ErrUnavailable), 5, false, true, 0, 0, false},
		{"undecodable: failed and dead-lettered", []byte(`{"version": 1, "transaction_id": "t1", "amount": "-1"}`), nil, 5, true, false, 0, 1, true},
		{"not JSON at all: dead-lettered", []byte(`garbage`), nil, 5, true, false, 0, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := &fakeConverter{processErr: tt.processErr, failed: map[string]string{}}
			retr := &fakeRetrier{left: tt.retriesLeft}
			d, a := delivery(t, tt.body, "t1")
			newWorker(conv, retr).Handle(context.Background(), d)
			if a.acked != tt.wantAcked || a.requeued != tt.wantRequeued {
				t.Errorf("acked=%v requeued=%v, want acked=%v requeued=%v", a.acked, a.requeued, tt.wantAcked, tt.wantRequeued)
			}
			if retr.retried != tt.wantRetried || len(retr.deadLettered) != tt.wantDLQ {
				t.Errorf("retried=%d dead-lettered=%v, want %d and %d", retr.retried, retr.deadLettered, tt.wantRetried, tt.wantDLQ)
			}
			if reason, ok := conv.failed["t1"]; ok != tt.wantFailed || (ok && reason == "") {
				t.Errorf("failed=%v (%q), want %v with a reason", ok, reason, tt.wantFailed)
			}
		})
	}
}
