package txmodel_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/txmodel"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, cur := range []struct{ code, amount, want string }{{"USD", "100.5", "100.50"}, {"JPY", "12345", "12345"}, {"BHD", "1.234", "1.234"}} {
		tx, err := txmodel.ParseTransaction([]byte(body(map[string]string{"currency": `"` + cur.code + `"`, "amount": `"` + cur.amount + `"`})), now)
		if err != nil {
			t.Fatal(err)
		}
		received := now.Add(time.Second)
		b, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: "acme", Transaction: tx, ReceivedAt: received})
		if err != nil {
			t.Fatal(err)
		}
		e, err := txmodel.DecodeMessage(b)
		if err != nil {
			t.Fatalf("DecodeMessage(%s): %v", b, err)
		}
		if back := e.Transaction; !back.SameContent(tx) || back.Amount.String() != cur.want {
			t.Errorf("round trip of %s: got %+v (%s), want %+v", b, back, back.Amount, tx)
		}
		if !e.ReceivedAt.Equal(received) {
			t.Errorf("received_at = %v, want %v", e.ReceivedAt, received)
		}
		if e.Tenant != "acme" {
			t.Errorf("tenant = %q, want acme", e.Tenant)
		}
	}
}

func TestDecodeMessageRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"not JSON", `nope`, txmodel.ErrMalformed},
		{"future version", `{"version": 3, "tenant": "a", "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrUnsupportedVersion},
		{"no version", `{"transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrUnsupportedVersion},
		{"no received_at", `{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"received_at beyond 9999 in UTC", `{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "9999-12-31T23:59:59-23:59"}`, txmodel.ErrMalformed},
		{"duplicate amount", `{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.00", "amount": "1000.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"field in another case", `{"version": 1, "transaction_id": "t", "user_id": "u", "Amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"field with a long s", `{"version": 1, "tranſaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"array", `[1]`, txmodel.ErrMalformed},
		{"version 2 without a tenant", `{"version": 2, "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"version 2 with a bad tenant", `{"version": 2, "tenant": "a b", "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"version 1 with a tenant", `{"version": 1, "tenant": "a", "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"tenant twice", `{"version": 2, "tenant": "a", "tenant": "b", "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`, txmodel.ErrMalformed},
		{"deep nesting", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), txmodel.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := txmodel.DecodeMessage([]byte(tt.body)); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	invalid := []struct {
		name, body string
		want       []txmodel.FieldError // compared on Field and Code
	}{
		{
			"unknown currency", `{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.001", "currency": "XAU", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`,
			fe("currency", txmodel.CodeUnknownCurr),
		},
		{
			"no timestamp", `{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "received_at": "2024-09-11T00:00:00Z"}`,
			fe("timestamp", txmodel.CodeRequired),
		},
		{
			"timestamp in year 0", `{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "EUR", "timestamp": "0000-06-15T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`,
			fe("timestamp", txmodel.CodeInvalidValue),
		},
		{
			"timestamp before year 0 in UTC", `{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "0000-01-01T00:00:00+01:00", "received_at": "2024-09-11T00:00:00Z"}`,
			fe("timestamp", txmodel.CodeInvalidValue),
		},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := txmodel.DecodeMessage([]byte(tt.body))
			var ve *txmodel.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			if diff := cmp.Diff(tt.want, ve.Errors, cmp.Comparer(func(a, b txmodel.FieldError) bool {
				return a.Field == b.Field && a.Code == b.Code
			})); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeMessageOfVersion1 reads a message written before tenants: it
// belongs to the implicit tenant.
func TestDecodeMessageOfVersion1(t *testing.T) {
	e, err := txmodel.DecodeMessage([]byte(`{"version": 1, "transaction_id": "t", "user_id": "u", "amount": "1.00", "currency": "USD", "timestamp": "2024-09-11T00:00:00Z", "received_at": "2024-09-11T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if e.Tenant != txmodel.DefaultTenant || e.Transaction.ID != "t" {
		t.Errorf("got tenant %q, transaction %q; want %q, %q", e.Tenant, e.Transaction.ID, txmodel.DefaultTenant, "t")
	}
}

func TestEncodeMessageRefusesABadTenant(t *testing.T) {
	tx, err := txmodel.ParseTransaction([]byte(body(nil)), now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tenant := range []string{"", "a b", "-a", strings.Repeat("a", 65), "é"} {
		if _, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: tenant, Transaction: tx, ReceivedAt: now}); !errors.Is(err, txmodel.ErrBadTenant) {
			t.Errorf("tenant %q: err = %v, want ErrBadTenant", tenant, err)
		}
	}
	for _, tenant := range []string{"a", "acme-eu.2", "A_b", strings.Repeat("a", 64)} {
		if err := txmodel.CheckTenant(tenant); err != nil {
			t.Errorf("CheckTenant(%q) = %v, want nil", tenant, err)
		}
	}
}

func BenchmarkParseTransaction(b *testing.B) {
	data := []byte(body(nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := txmodel.ParseTransaction(data, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessageEncodeDecode(b *testing.B) {
	tx, err := txmodel.ParseTransaction([]byte(body(nil)), now)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: txmodel.DefaultTenant, Transaction: tx, ReceivedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := txmodel.DecodeMessage(m); err != nil {
			b.Fatal(err)
		}
	}
}
