package ratesclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// provider knows one API's URLs and answer format.
type provider interface {
	name() string
	url(q query) string
	// parse turns a 200 answer into an answer for q; errors wrap
	// ErrNotFound or ErrUnavailable (mostly ErrBadAnswer).
	parse(q query, body []byte) (answer, error)
	// notFound reports whether a 4xx answer is the provider's own word
	// that it has no such quote, as opposed to a 4xx of anything between
	// us and it, or of a wrong URL.
	notFound(status int, body []byte) bool
}

// answer is what a provider answered: the quotes against Base of one day.
type answer struct {
	date  time.Time
	rates map[string]Quote
}

// frankfurter is the Frankfurter v1 API:
// GET {base}/{YYYY-MM-DD}?base=EUR&symbols=JPY,USD →
// {"amount":1.0,"base":"EUR","date":"2024-09-10","rates":{"JPY":157.81,"USD":1.1031}};
// GET {base}/latest?base=EUR for every currency of the latest day.
// With base EUR the quotes are the ECB's own figures, unrounded.
type frankfurter struct{ base string }

func (frankfurter) name() string { return ProviderFrankfurter }

func (f frankfurter) url(q query) string {
	if q.latest {
		return f.base + "/latest?base=" + Base
	}
	// Codes are three upper-case letters (txmodel.IsCurrencyCode): nothing to escape.
	return f.base + "/" + q.day.Format(time.DateOnly) + "?base=" + Base + "&symbols=" + strings.Join(q.codes, ",")
}

// notFound: Frankfurter answers a day or currency it has no quote for with
// 404 and exactly {"message":"not found"}. A path it does not serve (a
// RATES_API_URL without its /v1) is 404 {"status":404,"message":"not
// found"}: a misconfiguration, not a verdict.
func (frankfurter) notFound(status int, body []byte) bool {
	if status != 404 {
		return false
	}
	var m map[string]any
	if json.Unmarshal(body, &m) != nil || len(m) != 1 {
		return false
	}
	msg, ok := m["message"].(string)
	return ok && msg == "not found"
}

type frankfurterAnswer struct {
	Amount *json.Number                `json:"amount"`
	Base   string                      `json:"base"`
	Date   string                      `json:"date"`
	Rates  map[string]*json.RawMessage `json:"rates"`
}

func (frankfurter) parse(q query, body []byte) (answer, error) {
	var a frankfurterAnswer
	if err := decodeJSON(body, &a); err != nil {
		return answer{}, err
	}
	if a.Amount != nil {
		if amount, err := txmodel.ParseDecimal(a.Amount.String()); err != nil || !amount.Equal(decimal.NewFromInt(1)) {
			return answer{}, fmt.Errorf("frankfurter answered amount %q, want 1: %w", a.Amount, ErrBadAnswer)
		}
	}
	ans, err := parseAnswer(ProviderFrankfurter, q, a.Base, a.Date, a.Rates)
	if err != nil {
		return answer{}, err
	}
	if !q.latest && ans.date.After(q.day) {
		// Frankfurter answers the closest earlier business day; a later one
		// means it has nothing on or before the day asked.
		return answer{}, fmt.Errorf("frankfurter has no quotes on or before the day asked (answered %s): %w",
			a.Date, ErrNotFound)
	}
	return ans, nil
}

// exchangeRateAPI is the exchangerate-api.com v4 API, latest rates only:
// GET {base}/latest/EUR →
// {"base":"EUR","date":"2024-09-11","time_last_updated":1726012801,"rates":{"EUR":1,"USD":1.1043,...}}.
type exchangeRateAPI struct{ base string }

func (exchangeRateAPI) name() string { return ProviderExchangeRateAPI }

func (e exchangeRateAPI) url(query) string { return e.base + "/latest/" + Base }

// notFound: exchangerate-api says "unsupported-code" for a currency it
// does not know.
func (exchangeRateAPI) notFound(_ int, body []byte) bool {
	var m struct {
		Result    string `json:"result"`
		ErrorType string `json:"error-type"`
	}
	return json.Unmarshal(body, &m) == nil && m.ErrorType == "unsupported-code"
}

type exchangeRateAPIAnswer struct {
	Result    string                      `json:"result"`
	ErrorType string                      `json:"error-type"`
	Base      string                      `json:"base"`
	Date      string                      `json:"date"`
	Rates     map[string]*json.RawMessage `json:"rates"`
}

func (e exchangeRateAPI) parse(q query, body []byte) (answer, error) {
	var a exchangeRateAPIAnswer
	if err := decodeJSON(body, &a); err != nil {
		return answer{}, err
	}
	switch {
	case a.Result == "error" && a.ErrorType == "unsupported-code":
		return answer{}, fmt.Errorf("exchangerate-api answered unsupported-code: %w", ErrNotFound)
	case a.Result == "error":
		// A key it refuses, a quota reached: nothing about the currency.
		return answer{}, fmt.Errorf("exchangerate-api answered error %q: %w", truncate(a.ErrorType, 64), ErrRejected)
	}
	return parseAnswer(ProviderExchangeRateAPI, q, a.Base, a.Date, a.Rates)
}

// decodeJSON decodes one JSON object, keeping numbers as their text.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed answer %s: %w: %w", snippet(body), err, ErrBadAnswer)
	}
	return nil
}

// parseAnswer checks the parts common to both answer formats: the base is
// the one asked, the date a date, each quote asked for a positive decimal
// written as a JSON number within txmodel.ParseDecimal's bounds (64
// characters, an exponent within ±40), and builds the answer for q. A
// currency asked for that the answer does not hold is the provider's word
// that it has no quote of it (ErrNotFound); anything else wrong is an
// unusable answer (ErrBadAnswer).
func parseAnswer(provider string, q query, base, date string, rates map[string]*json.RawMessage) (answer, error) {
	if base != Base {
		return answer{}, fmt.Errorf("%s answered base %q, asked %q: %w", provider, truncate(base, 16), Base, ErrBadAnswer)
	}
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return answer{}, fmt.Errorf("%s answered date %q: %w", provider, truncate(date, 32), ErrBadAnswer)
	}
	if rates == nil {
		return answer{}, fmt.Errorf("%s answered no rates: %w", provider, ErrBadAnswer)
	}
	codes := q.codes
	if q.latest {
		codes = make([]string, 0, len(rates))
		for code := range rates {
			if code != Base {
				codes = append(codes, code)
			}
		}
	}
	out := make(map[string]Quote, len(codes))
	for _, code := range codes {
		raw, ok := rates[code]
		if !ok {
			return answer{}, fmt.Errorf("%s has no quote of %s for %s: %w", provider, truncate(code, 16), date, ErrNotFound)
		}
		quote, err := parseQuote(raw)
		if err != nil {
			return answer{}, fmt.Errorf("%s answered %s for %s: %w", provider, err.Error(), truncate(code, 16), ErrBadAnswer)
		}
		out[code] = quote
	}
	return answer{date: day, rates: out}, nil
}

// parseQuote reads one quote: a JSON number (not a string, not null), a
// decimal within txmodel.ParseDecimal's bounds, positive.
func parseQuote(raw *json.RawMessage) (Quote, error) {
	if raw == nil {
		return Quote{}, fmt.Errorf("null")
	}
	text := string(bytes.TrimSpace(*raw))
	if text == "" || (text[0] != '-' && (text[0] < '0' || text[0] > '9')) {
		return Quote{}, fmt.Errorf("%q, not a number", truncate(text, 64))
	}
	v, err := txmodel.ParseDecimal(text)
	if err != nil {
		return Quote{}, fmt.Errorf("quote %q (%w)", truncate(text, 64), err)
	}
	if !v.IsPositive() {
		return Quote{}, fmt.Errorf("quote %s, not positive", text)
	}
	return Quote{Value: v, Text: text}, nil
}

// truncate cuts s to at most n bytes on a rune boundary, so that a hostile
// answer does not make an error message long.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
