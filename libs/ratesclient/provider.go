package ratesclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/shopspring/decimal"
)

// provider knows one API's URLs and answer format.
type provider interface {
	name() string
	// dated reports whether the provider can answer for a past day.
	dated() bool
	url(q query) string
	// parse turns a 200 answer into a Rate; errors wrap ErrNotFound or
	// ErrUnavailable.
	parse(q query, body []byte) (Rate, error)
}

// frankfurter is the Frankfurter v1 API:
// GET {base}/{YYYY-MM-DD|latest}?base=USD&symbols=EUR →
// {"amount":1.0,"base":"USD","date":"2024-09-10","rates":{"EUR":0.90498}}.
type frankfurter struct{ base string }

func (frankfurter) name() string { return ProviderFrankfurter }
func (frankfurter) dated() bool  { return true }

func (f frankfurter) url(q query) string {
	day := "latest"
	if !q.latest {
		day = q.day.Format(time.DateOnly)
	}
	v := url.Values{"base": {q.from}, "symbols": {q.to}}
	return f.base + "/" + day + "?" + v.Encode()
}

type frankfurterAnswer struct {
	Amount *json.Number            `json:"amount"`
	Base   string                  `json:"base"`
	Date   string                  `json:"date"`
	Rates  map[string]*json.Number `json:"rates"`
}

func (frankfurter) parse(q query, body []byte) (Rate, error) {
	var a frankfurterAnswer
	if err := decodeJSON(body, &a); err != nil {
		return Rate{}, err
	}
	if a.Amount != nil {
		amount, err := decimal.NewFromString(a.Amount.String())
		if err != nil || !amount.Equal(decimal.NewFromInt(1)) {
			return Rate{}, fmt.Errorf("frankfurter answered amount %s, want 1: %w", a.Amount, ErrUnavailable)
		}
	}
	r, err := rateFromAnswer(ProviderFrankfurter, q, a.Base, a.Date, a.Rates)
	if err != nil {
		return Rate{}, err
	}
	if !q.latest && r.Date.After(q.day) {
		// Frankfurter answers the closest earlier business day; a later one
		// means it has nothing on or before the day asked.
		return Rate{}, fmt.Errorf("frankfurter has no rate on or before the day asked (answered %s): %w",
			a.Date, ErrNotFound)
	}
	return r, nil
}

// exchangeRateAPI is the exchangerate-api.com v4 API, latest rates only:
// GET {base}/latest/{FROM} →
// {"base":"USD","date":"2024-09-11","time_last_updated":1726012801,"rates":{"EUR":0.905,...}}.
type exchangeRateAPI struct{ base string }

func (exchangeRateAPI) name() string { return ProviderExchangeRateAPI }
func (exchangeRateAPI) dated() bool  { return false }

func (e exchangeRateAPI) url(q query) string {
	return e.base + "/latest/" + url.PathEscape(q.from)
}

type exchangeRateAPIAnswer struct {
	Base  string                  `json:"base"`
	Date  string                  `json:"date"`
	Rates map[string]*json.Number `json:"rates"`
}

func (exchangeRateAPI) parse(q query, body []byte) (Rate, error) {
	var a exchangeRateAPIAnswer
	if err := decodeJSON(body, &a); err != nil {
		return Rate{}, err
	}
	return rateFromAnswer(ProviderExchangeRateAPI, q, a.Base, a.Date, a.Rates)
}

// decodeJSON decodes one JSON object, keeping numbers as their text.
func decodeJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed answer %s: %w: %w", snippet(body), err, ErrUnavailable)
	}
	return nil
}

// rateFromAnswer checks the parts common to both answer formats and builds
// the Rate for q.
func rateFromAnswer(provider string, q query, base, date string, rates map[string]*json.Number) (Rate, error) {
	if base != q.from {
		return Rate{}, fmt.Errorf("%s answered base %q, asked %q: %w", provider, base, q.from, ErrUnavailable)
	}
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return Rate{}, fmt.Errorf("%s answered date %q: %w", provider, date, ErrUnavailable)
	}
	if rates == nil {
		return Rate{}, fmt.Errorf("%s answered no rates: %w", provider, ErrUnavailable)
	}
	n, ok := rates[q.to]
	if !ok {
		return Rate{}, fmt.Errorf("provider does not know currency %q: %w", q.to, ErrNotFound)
	}
	if n == nil {
		return Rate{}, fmt.Errorf("%s answered null for %s: %w", provider, q.to, ErrUnavailable)
	}
	v, err := decimal.NewFromString(n.String())
	if err != nil {
		return Rate{}, fmt.Errorf("%s answered rate %q for %s: %w", provider, n.String(), q.to, ErrUnavailable)
	}
	if !v.IsPositive() {
		return Rate{}, fmt.Errorf("%s answered non-positive rate %s for %s: %w", provider, v, q.to, ErrUnavailable)
	}
	return Rate{From: q.from, To: q.to, Date: day, Value: v}, nil
}
