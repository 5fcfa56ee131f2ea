package txmodel

import (
	"fmt"
	"sort"
	"strings"
)

// Currency is an active ISO 4217 currency that has a minor unit.
// The zero value is not a currency; obtain one from LookupCurrency.
type Currency struct {
	code  string
	minor int
}

// LookupCurrency returns the currency for an ISO 4217 code, given in any
// case. It returns an error wrapping ErrUnknownCurrency for a code that is
// not an active ISO 4217 code with a minor unit.
func LookupCurrency(code string) (Currency, error) {
	if len(code) != 3 {
		return Currency{}, fmt.Errorf("%w: %q is not a three-letter code", ErrUnknownCurrency, code)
	}
	upper := strings.ToUpper(code)
	minor, ok := minorUnits[upper]
	if !ok {
		return Currency{}, fmt.Errorf("%w: %q is not an active ISO 4217 currency with a minor unit", ErrUnknownCurrency, code)
	}
	return Currency{code: upper, minor: minor}, nil
}

// MustCurrency is LookupCurrency for codes known at compile time, such as
// test fixtures and defaults; it panics on an unknown code.
func MustCurrency(code string) Currency {
	c, err := LookupCurrency(code)
	if err != nil {
		panic(err)
	}
	return c
}

// Code returns the upper-case ISO 4217 code, such as "USD".
func (c Currency) Code() string { return c.code }

// MinorUnit returns the number of digits after the decimal separator that
// amounts in this currency carry: 2 for USD, 0 for JPY, 3 for BHD.
func (c Currency) MinorUnit() int { return c.minor }

// IsZero reports whether c is the zero Currency, which names no currency.
func (c Currency) IsZero() bool { return c.code == "" }

// String returns the code.
func (c Currency) String() string { return c.code }

// CurrencyCodes returns every code LookupCurrency accepts, sorted.
func CurrencyCodes() []string {
	codes := make([]string, 0, len(minorUnits))
	for c := range minorUnits {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return codes
}

// IsCurrencyCode reports whether s has the form of an ISO 4217 alphabetic
// code: three ASCII capital letters. It says nothing of whether the code
// names a currency (LookupCurrency does): a rates provider may quote codes
// long withdrawn.
func IsCurrencyCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := range len(s) {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
