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
		{"lowercase t and z", map[string]string{"timestamp": `"2024-09-11t02:00:00.5z"`}, "100.00", "USD", time.Date(2024, 9, 11, 2, 0, 0, 500000000, time.UTC)},
		{"leap second", map[string]string{"timestamp": `"2016-12-31T23:59:60Z"`}, "100.00", "USD", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"leap second with offset", map[string]string{"timestamp": `"2017-01-01T00:59:60+01:00"`}, "100.00", "USD", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
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
		{"second 60 not at 23:59 UTC", body(map[string]string{"timestamp": `"2016-12-31T12:34:60Z"`}), fe("timestamp", txmodel.CodeInvalidValue)},
		{"future in lowercase", body(map[string]string{"timestamp": `"2024-09-11t12:05:01z"`}), fe("timestamp", txmodel.CodeInFuture)},
		{"lowercase x separator", body(map[string]string{"timestamp": `"2024-09-11x00:00:00Z"`}), fe("timestamp", txmodel.CodeInvalidValue)},
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

// TestParseTransactionTimestampMessage checks that the reason a timestamp is
// refused reaches the client in the field error's message.
func TestParseTransactionTimestampMessage(t *testing.T) {
	tests := []struct{ name, timestamp, wantMsg string }{
		{"second 60 not at 23:59 UTC", `"2016-12-31T12:34:60Z"`, "second 60, which is only valid as a leap second, at 23:59:60 UTC"},
		{"23:59:60 in another zone", `"2016-12-31T23:59:60+01:00"`, "only valid as a leap second, at 23:59:60 UTC"},
		{"not a date-time", `"2024-09-11x00:00:00Z"`, "is not an RFC 3339 date-time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := txmodel.ParseTransaction([]byte(body(map[string]string{"timestamp": tt.timestamp})), now)
			var ve *txmodel.ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 {
				t.Fatalf("err = %v, want a *ValidationError with one field error", err)
			}
			got := ve.Errors[0]
			if got.Field != txmodel.FieldTimestamp || got.Code != txmodel.CodeInvalidValue || !strings.Contains(got.Message, tt.wantMsg) {
				t.Errorf("field error = %+v, want timestamp, %s, a message containing %q", got, txmodel.CodeInvalidValue, tt.wantMsg)
			}
		})
	}
}

func TestParseTimestampAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Time
	}{
		{"uppercase T and Z", "2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"lowercase t", "2024-05-01t10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"lowercase z", "2024-05-01T10:00:00z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"lowercase t and z", "2024-05-01t10:00:00z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"lowercase with fraction", "2024-05-01t10:00:00.5z", time.Date(2024, 5, 1, 10, 0, 0, 500000000, time.UTC)},
		{"lowercase t with offset", "2024-05-01t10:00:00+02:00", time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)},
		{"lowercase t without zone", "2024-05-01t10:00:00", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"space and lowercase z", "2024-05-01 10:00:00z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)},
		{"leap second in UTC", "2016-12-31T23:59:60Z", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"leap second in June", "2015-06-30T23:59:60Z", time.Date(2015, 7, 1, 0, 0, 0, 0, time.UTC)},
		{"leap second ahead of UTC", "2017-01-01T00:59:60+01:00", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"leap second behind UTC", "2016-12-31T18:59:60-05:00", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"leap second with fraction", "2016-12-31T23:59:60.5Z", time.Date(2017, 1, 1, 0, 0, 0, 500000000, time.UTC)},
		{"leap second without zone", "2016-12-31 23:59:60", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"leap second in lowercase", "2016-12-31t23:59:60z", time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		// No table of real leap seconds: any day's last second is read as one.
		{"leap second on any day", "2024-05-01T23:59:60Z", time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)},
		// The instant, 0001-01-01T00:00:00Z, is in range, as the rule is for every zone.
		{"leap second into year 1", "0000-12-31T23:59:60Z", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := txmodel.ParseTimestamp(tt.in)
			if err != nil {
				t.Fatalf("ParseTimestamp(%q): %v", tt.in, err)
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("ParseTimestamp(%q) = %v, want %v in UTC", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseTimestampRejects(t *testing.T) {
	const notRFC3339 = "is not an RFC 3339 date-time"
	const notLeap = "second 60, which is only valid as a leap second, at 23:59:60 UTC"
	tests := []struct{ name, in, wantMsg string }{
		{"x as separator", "2024-05-01x10:00:00Z", notRFC3339},
		{"uppercase X as separator", "2024-05-01X10:00:00Z", notRFC3339},
		{"t one place early", "2024-05-0t110:00:00Z", notRFC3339},
		{"lowercase t after a short date", "2024-5-01t10:00:00Z", notRFC3339},
		{"z before the offset", "2024-05-01T10:00:00z+02:00", notRFC3339},
		{"z after the offset", "2024-05-01T10:00:00+02:00z", notRFC3339},
		{"two z", "2024-05-01T10:00:00zz", notRFC3339},
		{"lowercase utc", "2024-05-01T10:00:00utc", notRFC3339},
		{"leading space", " 2024-05-01t10:00:00z", notRFC3339},
		{"minute 60", "2024-05-01T10:60:00Z", notRFC3339},
		{"hour 24", "2024-05-01T24:00:00Z", notRFC3339},
		{"second 61", "2016-12-31T23:59:61Z", notRFC3339},
		{"three digit second", "2016-12-31T23:59:600Z", notRFC3339},
		{"second 60 at noon", "2016-12-31T12:34:60Z", notLeap},
		{"second 60 at 23:58", "2016-12-31T23:58:60Z", notLeap},
		{"23:59:60 an hour from UTC", "2016-12-31T23:59:60+01:00", notLeap},
		{"leap second without zone at noon", "2016-12-31 12:00:60", notLeap},
		{"leap second into year 10000", "9999-12-31T23:59:60Z", "lies outside the years 0001 to 9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := txmodel.ParseTimestamp(tt.in)
			if err == nil {
				t.Fatalf("ParseTimestamp(%q) = %v, want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("ParseTimestamp(%q) error = %q, want it to contain %q", tt.in, err, tt.wantMsg)
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
	f.Add([]byte(body(map[string]string{"timestamp": `"2016-12-31t23:59:60.5z"`})))
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
		msg, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: txmodel.DefaultTenant, Transaction: tx, ReceivedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		back, err := txmodel.DecodeMessage(msg)
		if err != nil {
			t.Fatalf("accepted transaction does not decode from its message: %v\n%s", err, msg)
		}
		if !back.Transaction.SameContent(tx) {
			t.Fatalf("message round trip changed %+v into %+v", tx, back.Transaction)
		}
	})
}
