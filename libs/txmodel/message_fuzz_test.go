package txmodel_test

import (
	"errors"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// FuzzDecodeMessage feeds the converter's queue decoder arbitrary bodies: it
// must never panic, fail only with the documented errors, and whatever it
// accepts must survive being encoded again unchanged, so that a message the
// converter requeues or dead-letters reads the same the next time.
func FuzzDecodeMessage(f *testing.F) {
	valid := `{"version":1,"transaction_id":"tx-1","user_id":"123","amount":"100.00","currency":"USD",` +
		`"timestamp":"2024-09-11T00:00:00Z","received_at":"2024-09-11T12:00:00.123456789Z"}`
	f.Add([]byte(valid))
	f.Add([]byte(`{"version":1,"transaction_id":"t","user_id":"u","amount":"12345","currency":"jpy","timestamp":"2024-09-11T02:00:00+02:00","received_at":"2024-09-11T00:00:00Z"}`))
	f.Add([]byte(`{"version":2,"tenant":"acme","transaction_id":"t","user_id":"u","amount":"1.00","currency":"EUR","timestamp":"2024-09-11T00:00:00Z","received_at":"2024-09-11T00:00:00Z"}`))
	f.Add([]byte(`{"version":3}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"version":1,"amount":1e400}`))
	f.Add([]byte(`{"version":1,"transaction_id":"t","user_id":"u","amount":"1.001","currency":"XAU","timestamp":"0000-01-01T00:00:00+01:00","received_at":"9999-12-31T23:59:59-23:59"}`))
	f.Add([]byte("{\"version\":1,\"user_id\":\"\xff\"}"))
	f.Add([]byte(`[[[[[[[[[[]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := txmodel.DecodeMessage(body)
		if err != nil {
			var ve *txmodel.ValidationError
			if !errors.Is(err, txmodel.ErrMalformed) && !errors.Is(err, txmodel.ErrUnsupportedVersion) && !errors.As(err, &ve) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if ve != nil && len(ve.Errors) == 0 {
				t.Fatalf("validation error without field errors: %v", err)
			}
			return
		}
		tx, receivedAt := e.Transaction, e.ReceivedAt
		if receivedAt.Location() != time.UTC || tx.Timestamp.Location() != time.UTC {
			t.Fatalf("times not in UTC: timestamp %v, received_at %v", tx.Timestamp, receivedAt)
		}
		again, err := txmodel.EncodeMessage(e)
		if err != nil {
			t.Fatalf("accepted message %q does not encode again: %v", body, err)
		}
		b, err := txmodel.DecodeMessage(again)
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v\nfrom %q\nto   %s", err, body, again)
		}
		back, backReceived := b.Transaction, b.ReceivedAt
		if !back.SameContent(tx) || back.Amount.Currency != tx.Amount.Currency || !backReceived.Equal(receivedAt) || b.Tenant != e.Tenant {
			t.Fatalf("round trip changed %+v (tenant %s, received %v) into %+v (tenant %s, received %v)", tx, e.Tenant, receivedAt, back, b.Tenant, backReceived)
		}
	})
}
