// Package ecb holds the European Central Bank's euro reference rates: it
// parses the files the ECB publishes (the history CSV and the daily, 90-day
// and history XML), keeps them as a Table of business days, and computes
// cross rates between any two currencies from them.
package ecb

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/shopspring/decimal"
)

// ErrNotFound is wrapped when a currency or a date is not in the table.
var ErrNotFound = errors.New("not found")

// CrossRateDigits is the number of significant digits a computed rate is
// rounded to (half to even). Ten digits keep more than any rate the ECB
// publishes (at most six) and a converted amount exact to well below a cent
// for any amount a person transfers, while keeping answers short.
const CrossRateDigits = 10

// EUR is the currency every ECB rate is quoted against.
const EUR = "EUR"

// Day is one business day's reference rates: units of each currency per 1 EUR.
type Day struct {
	// Date is the business day, at UTC midnight.
	Date  time.Time
	rates map[string]decimal.Decimal // never holds EUR
}

// PerEUR returns how many units of code one euro bought on d; EUR is 1.
func (d Day) PerEUR(code string) (decimal.Decimal, bool) {
	if code == EUR {
		return decimal.NewFromInt(1), true
	}
	v, ok := d.rates[code]
	return v, ok
}

// Codes returns the currencies quoted on d, EUR included, sorted.
func (d Day) Codes() []string {
	codes := make([]string, 0, len(d.rates)+1)
	codes = append(codes, EUR)
	for c := range d.rates {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return codes
}

// Convert returns, for each code of symbols (all of d's currencies but base
// when symbols is empty), what amount units of base bought on d:
// amount × (code per EUR) / (base per EUR), rounded half to even to
// CrossRateDigits significant digits. A base or symbol not quoted on d is an
// error wrapping ErrNotFound. amount must be positive.
func (d Day) Convert(base string, symbols []string, amount decimal.Decimal) (map[string]decimal.Decimal, error) {
	if !amount.IsPositive() {
		return nil, fmt.Errorf("amount %s is not positive", amount)
	}
	basePerEUR, ok := d.PerEUR(base)
	if !ok {
		return nil, fmt.Errorf("currency %q on %s: %w", base, d.Date.Format(time.DateOnly), ErrNotFound)
	}
	if len(symbols) == 0 {
		symbols = slices.DeleteFunc(d.Codes(), func(c string) bool { return c == base })
	}
	out := make(map[string]decimal.Decimal, len(symbols))
	for _, code := range symbols {
		perEUR, ok := d.PerEUR(code)
		if !ok {
			return nil, fmt.Errorf("currency %q on %s: %w", code, d.Date.Format(time.DateOnly), ErrNotFound)
		}
		out[code] = divRoundSignificant(amount.Mul(perEUR), basePerEUR, CrossRateDigits)
	}
	return out, nil
}

// divRoundSignificant returns num/den rounded half to even to digits
// significant digits, exactly (no intermediate rounding decides a tie).
// num and den must be positive.
func divRoundSignificant(num, den decimal.Decimal, digits int32) decimal.Decimal {
	// Where the first significant digit is, from a generous approximation.
	approx := num.DivRound(den, 60)
	lead := int32(approx.NumDigits()) + approx.Exponent() //nolint:gosec // G115: 60 places and a rate's integer digits, far below 2^31. Digits before the point.
	places := digits - lead
	q, r := num.QuoRem(den, places)
	unit := decimal.New(1, -places)
	// r < den·unit; compare 2r with den·unit for the rounding decision.
	switch twice, half := r.Mul(decimal.NewFromInt(2)), den.Mul(unit); twice.Cmp(half) {
	case 1:
		q = q.Add(unit)
	case 0:
		if q.Shift(places).BigInt().Bit(0) == 1 {
			q = q.Add(unit)
		}
	}
	return q
}

// Table is the reference rates for a run of business days. It is immutable
// and safe for concurrent use.
type Table struct {
	days  []Day    // ascending by date, no duplicates
	codes []string // every currency of any day, EUR included, sorted
}

// NewTable builds a Table from days in any order. It rejects an empty list,
// duplicate dates, and rates that are not positive.
func NewTable(days []Day) (*Table, error) {
	if len(days) == 0 {
		return nil, errors.New("no business days")
	}
	sorted := slices.Clone(days)
	slices.SortFunc(sorted, func(a, b Day) int { return a.Date.Compare(b.Date) })
	seen := map[string]bool{EUR: true}
	codes := []string{EUR}
	for i, d := range sorted {
		if i > 0 && d.Date.Equal(sorted[i-1].Date) {
			return nil, fmt.Errorf("date %s appears twice", d.Date.Format(time.DateOnly))
		}
		for c, v := range d.rates {
			if !v.IsPositive() {
				return nil, fmt.Errorf("%s on %s: rate %s is not positive", c, d.Date.Format(time.DateOnly), v)
			}
			if !seen[c] {
				seen[c] = true
				codes = append(codes, c)
			}
		}
	}
	sort.Strings(codes)
	return &Table{days: sorted, codes: codes}, nil
}

// NewDay makes a Day from rates per EUR (an EUR entry, if any, is dropped).
func NewDay(date time.Time, perEUR map[string]decimal.Decimal) Day {
	rates := make(map[string]decimal.Decimal, len(perEUR))
	for c, v := range perEUR {
		if c != EUR {
			rates[c] = v
		}
	}
	y, m, dd := date.Date()
	return Day{Date: time.Date(y, m, dd, 0, 0, 0, 0, time.UTC), rates: rates}
}

// Len is the number of business days.
func (t *Table) Len() int { return len(t.days) }

// First is the earliest business day.
func (t *Table) First() Day { return t.days[0] }

// Latest is the most recent business day.
func (t *Table) Latest() Day { return t.days[len(t.days)-1] }

// Currencies returns every currency quoted on any day, EUR included, sorted.
func (t *Table) Currencies() []string { return slices.Clone(t.codes) }

// On returns the business day for the calendar day of date (its Y-M-D as
// written, taken as UTC): that day, or the closest earlier one when the ECB
// published nothing (weekends, holidays) or date is after the latest day.
// A date before the first day wraps ErrNotFound.
func (t *Table) On(date time.Time) (Day, error) {
	y, m, d := date.Date()
	day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	// i is the first day after day; the one before it is the answer.
	i := sort.Search(len(t.days), func(i int) bool { return t.days[i].Date.After(day) })
	if i == 0 {
		return Day{}, fmt.Errorf("no rates on or before %s (first day %s): %w",
			day.Format(time.DateOnly), t.days[0].Date.Format(time.DateOnly), ErrNotFound)
	}
	return t.days[i-1], nil
}
