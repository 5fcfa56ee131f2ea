package ratesclient

import (
	"errors"
	"testing"
	"time"
)

// fuzzParse checks what a provider's decoder promises for any body: it
// never panics; an error wraps exactly one of ErrNotFound and
// ErrUnavailable; an answer holds a positive quote, within the bounds of
// its text, for every currency asked, and none for the base.
func fuzzParse(t *testing.T, p provider, q query, body []byte) {
	a, err := p.parse(q, body)
	if err != nil {
		if errors.Is(err, ErrNotFound) == errors.Is(err, ErrUnavailable) {
			t.Fatalf("error %q wraps both or neither of ErrNotFound and ErrUnavailable", err)
		}
		return
	}
	if a.date.IsZero() || a.date.Location() != time.UTC || a.date.Hour() != 0 {
		t.Fatalf("answer date %v is not a UTC day", a.date)
	}
	if _, ok := a.rates[Base]; ok {
		t.Fatalf("answer holds a quote of the base")
	}
	for _, code := range q.codes {
		quote, ok := a.rates[code]
		if !ok {
			t.Fatalf("answer lacks %s, asked", code)
		}
		if !quote.Value.IsPositive() || len(quote.Text) > 64 {
			t.Fatalf("quote of %s = %v", code, quote)
		}
	}
	if _, frank := p.(frankfurter); frank && !q.latest && a.date.After(q.day) {
		t.Fatalf("frankfurter answer dated %s after the day asked %s", a.date, q.day)
	}
}

func FuzzFrankfurterParse(f *testing.F) {
	f.Add([]byte(`{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031}}`), false)
	f.Add([]byte(`{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1.1031,"JPY":157.81}}`), true)
	f.Add([]byte(`{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":1e-2147483647}}`), false)
	f.Add([]byte(`{"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"USD":"1.1"}}`), false)
	f.Add([]byte(`{"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.9}}`), false)
	f.Add([]byte(`<html>maintenance</html>`), false)
	f.Add([]byte(`{"amount":1e400,"base":"EUR","date":"2024-09-10","rates":{"USD":0}}`), true)
	p := frankfurter{base: "http://x/v1"}
	f.Fuzz(func(t *testing.T, body []byte, latest bool) {
		q := query{day: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC), codes: []string{"USD"}}
		if latest {
			q = query{latest: true} // Check's question: every currency there is
		}
		fuzzParse(t, p, q, body)
	})
}

func FuzzExchangeRateAPIParse(f *testing.F) {
	f.Add([]byte(`{"base":"EUR","date":"2024-09-11","time_last_updated":1726012801,"rates":{"EUR":1,"USD":1.1043}}`))
	f.Add([]byte(`{"result":"error","error-type":"unsupported-code"}`))
	f.Add([]byte(`{"result":"error","error-type":"invalid-key"}`))
	f.Add([]byte(`{"base":"EUR","date":"2024-09-11","rates":{"USD":-1}}`))
	f.Add([]byte(`{"base":"EUR","date":"2024-02-30","rates":{"USD":1}}`))
	p := exchangeRateAPI{base: "http://x/v4"}
	f.Fuzz(func(t *testing.T, body []byte) {
		q := query{day: time.Date(2024, 9, 10, 0, 0, 0, 0, time.UTC), codes: []string{"USD"}}
		fuzzParse(t, p, q, body)
	})
}

func FuzzNotFound(f *testing.F) {
	f.Add(404, []byte(`{"message":"not found"}`))
	f.Add(404, []byte(`{"status":404,"message":"not found"}`))
	f.Add(404, []byte(`{"result":"error","error-type":"unsupported-code"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		// Only the answers the providers' own code writes count.
		if (frankfurter{}).notFound(status, body) && status != 404 {
			t.Fatalf("frankfurter not found with status %d", status)
		}
		_ = exchangeRateAPI{}.notFound(status, body)
	})
}
