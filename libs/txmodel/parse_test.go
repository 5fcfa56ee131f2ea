package txmodel_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/txmodel"
)

var now = time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)

// body builds a request body from the original's load-test body, with
// fields replaced (a value of "" removes the field) or added.
func body(over map[string]string) string {
	fields := []struct{ k, v string }{
		{"transaction_id", `"tx-1"`},
		{"user_id", `"123"`},
		{"amount", `100.0`},
		{"currency", `"USD"`},
		{"timestamp", `"2024-09-11T00:00:00"`},
	}
	var parts []string
	seen := map[string]bool{}
	for _, f := range fields {
		v := f.v
		if o, ok := over[f.k]; ok {
			v = o
			seen[f.k] = true
		}
		if v != "" {
			parts = append(parts, `"`+f.k+`": `+v)
		}
	}
	for k, v := range over {
		if !seen[k] {
			parts = append(parts, `"`+k+`": `+v)
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func TestParseTransactionAccepts(t *testing.T) {
	tests := []struct {
		name       string
		over       map[string]string
		wantAmount string
		wantCurr   string
		wantTime   time.Time
	}{
		{"original load test body", nil, "100.00", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"amount as string", map[string]string{"amount": `"100"`}, "100.00", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"amount exact beyond float", map[string]string{"amount": `"123456789012345.67"`}, "123456789012345.67", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"amount with exponent", map[string]string{"amount": `1.005e2`}, "100.50", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"trailing zeros beyond minor unit", map[string]string{"amount": `"10.500"`}, "10.50", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"lower case currency", map[string]string{"currency": `"usd"`}, "100.00", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"JPY whole", map[string]string{"currency": `"JPY"`, "amount": `12345`}, "12345", "JPY", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"BHD three digits", map[string]string{"currency": `"BHD"`, "amount": `"1.234"`}, "1.234", "BHD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"zone offset", map[string]string{"timestamp": `"2024-09-11T02:00:00+02:00"`}, "100.00", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"zulu with nanoseconds truncated to micro", map[string]string{"timestamp": `"2024-09-11T00:00:00.123456789Z"`}, "100.00", "USD", time.Date(2024, 9, 11, 0, 0, 0, 123456000, time.UTC)},
		{"space separator", map[string]string{"timestamp": `"2024-09-11 00:00:00"`}, "100.00", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
		{"just inside the future bound", map[string]string{"timestamp": `"2024-09-11T12:05:00Z"`}, "100.00", "USD", time.Date(2024, 9, 11, 12, 5, 0, 0, time.UTC)},
		{"first instant of year 1", map[string]string{"timestamp": `"0001-01-01T00:00:00Z"`}, "100.00", "USD", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"id of 128 characters", map[string]string{"transaction_id": `"` + strings.Repeat("é", 128) + `"`}, "100.00", "USD", time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := txmodel.ParseTransaction([]byte(body(tt.over)), now)
			if err != nil {
				t.Fatalf("ParseTransaction: %v", err)
			}
			if got := tx.Amount.String(); got != tt.wantAmount {
				t.Errorf("amount = %s, want %s", got, tt.wantAmount)
			}
			if got := tx.Amount.Currency.Code(); got != tt.wantCurr {
				t.Errorf("currency = %s, want %s", got, tt.wantCurr)
			}
			if !tx.Timestamp.Equal(tt.wantTime) || tx.Timestamp.Location() != time.UTC {
				t.Errorf("timestamp = %v, want %v in UTC", tx.Timestamp, tt.wantTime)
			}
		})
	}
}

func TestParseTransactionRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []txmodel.FieldError // compared on Field and Code
	}{
		{"missing id", body(map[string]string{"transaction_id": ""}), fe("transaction_id", txmodel.CodeRequired)},
		{"empty id", body(map[string]string{"transaction_id": `""`}), fe("transaction_id", txmodel.CodeRequired)},
		{"null user", body(map[string]string{"user_id": `null`}), fe("user_id", txmodel.CodeInvalidType)},
		{"numeric user", body(map[string]string{"user_id": `123`}), fe("user_id", txmodel.CodeInvalidType)},
		{"id too long", body(map[string]string{"transaction_id": `"` + strings.Repeat("a", 129) + `"`}), fe("transaction_id", txmodel.CodeTooLong)},
		{"control character", body(map[string]string{"user_id": `"a\u0000b"`}), fe("user_id", txmodel.CodeControlChar)},
		{"newline", body(map[string]string{"user_id": `"a\nb"`}), fe("user_id", txmodel.CodeControlChar)},
		{"zero amount", body(map[string]string{"amount": `0`}), fe("amount", txmodel.CodeNotPositive)},
		{"negative amount", body(map[string]string{"amount": `"-1"`}), fe("amount", txmodel.CodeNotPositive)},
		{"too precise USD", body(map[string]string{"amount": `100.001`}), fe("amount", txmodel.CodeTooPrecise)},
		{"fraction for JPY", body(map[string]string{"amount": `100.5`, "currency": `"JPY"`}), fe("amount", txmodel.CodeTooPrecise)},
		{"four digits for BHD", body(map[string]string{"amount": `"1.2345"`, "currency": `"BHD"`}), fe("amount", txmodel.CodeTooPrecise)},
		{"16 integer digits", body(map[string]string{"amount": `1234567890123456`}), fe("amount", txmodel.CodeTooLarge)},
		{"huge exponent", body(map[string]string{"amount": `1e400`}), fe("amount", txmodel.CodeInvalidValue)},
		{"tiny exponent", body(map[string]string{"amount": `1e-999999999`}), fe("amount", txmodel.CodeInvalidValue)},
		{"NaN string", body(map[string]string{"amount": `"NaN"`}), fe("amount", txmodel.CodeInvalidValue)},
		{"amount with spaces", body(map[string]string{"amount": `" 100"`}), fe("amount", txmodel.CodeInvalidValue)},
		{"amount bool", body(map[string]string{"amount": `true`}), fe("amount", txmodel.CodeInvalidType)},
		{"amount object", body(map[string]string{"amount": `{"v": 1}`}), fe("amount", txmodel.CodeInvalidType)},
		{"two letter currency", body(map[string]string{"currency": `"US"`}), fe("currency", txmodel.CodeUnknownCurr)},
		{"gold", body(map[string]string{"currency": `"XAU"`}), fe("currency", txmodel.CodeUnknownCurr)},
		{"SDR", body(map[string]string{"currency": `"XDR"`}), fe("currency", txmodel.CodeUnknownCurr)},
		{"not a code", body(map[string]string{"currency": `"ABC"`}), fe("currency", txmodel.CodeUnknownCurr)},
		{"bad timestamp", body(map[string]string{"timestamp": `"11/09/2024"`}), fe("timestamp", txmodel.CodeInvalidValue)},
		{"timestamp as number", body(map[string]string{"timestamp": `1726012800`}), fe("timestamp", txmodel.CodeInvalidType)},
		{"future", body(map[string]string{"timestamp": `"2024-09-11T12:05:01Z"`}), fe("timestamp", txmodel.CodeInFuture)},
		{"before year 0 in UTC", body(map[string]string{"timestamp": `"0000-01-01T00:00:00+01:00"`}), fe("timestamp", txmodel.CodeInvalidValue)},
		// PostgreSQL has no year 0: stored, it could never be converted.
		{"year 0", body(map[string]string{"timestamp": `"0000-06-15T00:00:00Z"`}), fe("timestamp", txmodel.CodeInvalidValue)},
		{"year 0 in UTC from year 1", body(map[string]string{"timestamp": `"0001-01-01T00:30:00+01:00"`}), fe("timestamp", txmodel.CodeInvalidValue)},
		{"typo field", body(map[string]string{"ammount": `100`}), fe("ammount", txmodel.CodeUnknownField)},
		{
			"duplicate amount", `{"transaction_id": "t", "user_id": "u", "amount": 1, "amount": 1000, "currency": "USD", "timestamp": "2024-09-11T00:00:00"}`,
			fe("amount", txmodel.CodeDuplicateField),
		},
		{
			"every field wrong at once", `{"transaction_id": "", "user_id": 1, "amount": -5, "currency": "EURO", "timestamp": "yesterday", "x": 1}`,
			[]txmodel.FieldError{
				{Field: "transaction_id", Code: txmodel.CodeRequired},
				{Field: "user_id", Code: txmodel.CodeInvalidType},
				{Field: "amount", Code: txmodel.CodeNotPositive},
				{Field: "currency", Code: txmodel.CodeUnknownCurr},
				{Field: "timestamp", Code: txmodel.CodeInvalidValue},
				{Field: "x", Code: txmodel.CodeUnknownField},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := txmodel.ParseTransaction([]byte(tt.body), now)
			var ve *txmodel.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *ValidationError", err)
			}
			for _, e := range ve.Errors {
				if e.Message == "" {
					t.Errorf("field %s has no message", e.Field)
				}
			}
			if diff := cmp.Diff(tt.want, ve.Errors, cmp.Comparer(func(a, b txmodel.FieldError) bool {
				return a.Field == b.Field && a.Code == b.Code
			})); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
}

func fe(field, code string) []txmodel.FieldError {
	return []txmodel.FieldError{{Field: field, Code: code}}
}

func TestParseTransactionMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ``},
		{"not JSON", `hello`},
		{"array", `[{"transaction_id": "x"}]`},
		{"string", `"tx"`},
		{"null", `null`},
		{"truncated", `{"transaction_id": "x"`},
		{"two objects", `{} {}`},
		{"invalid UTF-8", "{\"transaction_id\": \"\xff\xfe\"}"},
		{"trailing comma", `{"transaction_id": "x",}`},
		{"deep nesting", `{"amount": ` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`},
		{"NaN token", `{"amount": NaN}`},
		{"Infinity token", `{"amount": Infinity}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := txmodel.ParseTransaction([]byte(tt.body), now)
			if !errors.Is(err, txmodel.ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestSameContentNormalises(t *testing.T) {
	a, err := txmodel.ParseTransaction([]byte(body(map[string]string{"amount": `"100"`, "currency": `"usd"`, "timestamp": `"2024-09-11T02:00:00+02:00"`})), now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := txmodel.ParseTransaction([]byte(body(map[string]string{"amount": `100.00`, "timestamp": `"2024-09-11T00:00:00Z"`})), now)
	if err != nil {
		t.Fatal(err)
	}
	if !a.SameContent(b) {
		t.Errorf("%+v and %+v should be the same content", a, b)
	}
	c, err := txmodel.ParseTransaction([]byte(body(map[string]string{"amount": `100.01`})), now)
	if err != nil {
		t.Fatal(err)
	}
	if a.SameContent(c) {
		t.Errorf("100.00 and 100.01 should differ")
	}
	d, err := txmodel.ParseTransaction([]byte(body(map[string]string{"currency": `"CAD"`})), now)
	if err != nil {
		t.Fatal(err)
	}
	if a.SameContent(d) {
		t.Errorf("USD and CAD should differ")
	}
}

func FuzzParseTransaction(f *testing.F) {
	f.Add([]byte(body(nil)))
	f.Add([]byte(body(map[string]string{"amount": `"1e400"`})))
	f.Add([]byte(`{"amount": 1, "amount": 2}`))
	f.Add([]byte(`[[[[[[[[]]]]]]]]`))
	f.Add([]byte("{\"user_id\": \"\xff\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := txmodel.ParseTransaction(data, now)
		if err != nil {
			var ve *txmodel.ValidationError
			if !errors.Is(err, txmodel.ErrMalformed) && !errors.As(err, &ve) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		// Whatever is accepted survives the queue message unchanged.
		msg, err := txmodel.EncodeMessage(tx, now)
		if err != nil {
			t.Fatal(err)
		}
		back, _, err := txmodel.DecodeMessage(msg)
		if err != nil {
			t.Fatalf("accepted transaction does not decode from its message: %v\n%s", err, msg)
		}
		if !back.SameContent(tx) {
			t.Fatalf("message round trip changed %+v into %+v", tx, back)
		}
	})
}
