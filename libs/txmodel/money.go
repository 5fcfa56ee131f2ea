package txmodel

import (
	"fmt"

	"github.com/shopspring/decimal"
)

// MaxIntegerDigits bounds the integer part of an amount: 15 digits, the most
// that every consumer (PostgreSQL NUMERIC(28,…) columns, JavaScript clients
// reading the decimal strings as numbers by mistake) keeps exactly.
const MaxIntegerDigits = 15

// maxLiteralLen bounds the text of an amount before it is parsed, so that a
// hostile "1e-999999999" or a megabyte of digits costs nothing.
const maxLiteralLen = 64

// maxExponent bounds the exponent of an amount written in E notation.
const maxExponent = 40

// RoundingMode names how an exact product is brought to a currency's minor
// unit. The pipeline uses one mode everywhere: RoundHalfEven.
type RoundingMode int

const (
	// RoundHalfEven rounds to the nearest value and a tie to the even
	// neighbour (banker's rounding): 0.125 → 0.12, 0.135 → 0.14. It carries
	// no bias up or down over many conversions.
	RoundHalfEven RoundingMode = iota
)

// String names the mode.
func (m RoundingMode) String() string {
	switch m {
	case RoundHalfEven:
		return "half-even"
	default:
		return fmt.Sprintf("RoundingMode(%d)", int(m))
	}
}

// Round brings d to places fraction digits with the mode.
func (m RoundingMode) Round(d decimal.Decimal, places int) decimal.Decimal {
	// RoundHalfEven is the only mode; a new one gets its own case.
	return d.RoundBank(int32(places)) //nolint:gosec // G115: places are a currency's fraction digits, 0 to 4
}

// Money is an exact amount in a currency.
type Money struct {
	Amount   decimal.Decimal
	Currency Currency
}

// NewMoney checks that amount fits currency (positive, at most the
// currency's minor digits, at most MaxIntegerDigits integer digits) and
// returns the Money. Errors wrap ErrInvalidAmount.
func NewMoney(amount decimal.Decimal, currency Currency) (Money, error) {
	if currency.IsZero() {
		return Money{}, fmt.Errorf("%w: no currency", ErrInvalidAmount)
	}
	if code, msg := checkAmount(amount, currency); code != "" {
		return Money{}, fmt.Errorf("%w: %s", ErrInvalidAmount, msg)
	}
	return Money{Amount: amount, Currency: currency}, nil
}

// String formats the amount with exactly the currency's minor digits and
// no currency: "100.00" for USD, "12345" for JPY, "1.234" for BHD.
func (m Money) String() string {
	return m.Amount.StringFixed(int32(m.Currency.MinorUnit())) //nolint:gosec // G115: ISO 4217 minor units, 0 to 4
}

// Equal reports whether m and o are the same amount in the same currency;
// 100 and 100.00 are equal.
func (m Money) Equal(o Money) bool {
	return m.Currency == o.Currency && m.Amount.Equal(o.Amount)
}

// Convert returns amount × rate in the target currency, rounded to the
// target's minor unit with RoundHalfEven. The product is computed exactly
// before the one rounding.
func Convert(amount Money, rate decimal.Decimal, target Currency) Money {
	return Money{
		Amount:   RoundHalfEven.Round(amount.Amount.Mul(rate), target.MinorUnit()),
		Currency: target,
	}
}

// ParseDecimal parses the text of a decimal number exactly: an optional
// sign, digits with an optional fraction, and an optional exponent, as JSON
// writes numbers ("100", "100.5", "1.005e2"). It refuses texts longer than 64
// characters and exponents beyond ±40, so no input makes it slow.
// Errors wrap ErrInvalidAmount.
func ParseDecimal(s string) (decimal.Decimal, error) {
	if len(s) == 0 {
		return decimal.Decimal{}, fmt.Errorf("%w: empty", ErrInvalidAmount)
	}
	if len(s) > maxLiteralLen {
		return decimal.Decimal{}, fmt.Errorf("%w: longer than %d characters", ErrInvalidAmount, maxLiteralLen)
	}
	if !isDecimalLiteral(s) {
		return decimal.Decimal{}, fmt.Errorf("%w: %q is not a decimal number", ErrInvalidAmount, s)
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, fmt.Errorf("%w: %q is not a decimal number", ErrInvalidAmount, s)
	}
	return d, nil
}

// isDecimalLiteral reports whether s is -?digits(.digits)?([eE][+-]?digits)?
// with an exponent of at most maxExponent in magnitude. A leading "+" and a
// bare "." are refused, as JSON refuses them.
func isDecimalLiteral(s string) bool {
	i := 0
	if s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == start {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == fracStart {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		expStart := i
		exp := 0
		for i < len(s) && isDigit(s[i]) {
			exp = exp*10 + int(s[i]-'0')
			if exp > maxExponent {
				return false
			}
			i++
		}
		if i == expStart {
			return false
		}
	}
	return i == len(s)
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// checkAmount returns an error code and message when amount does not fit
// currency, and "" when it does.
func checkAmount(amount decimal.Decimal, currency Currency) (code, msg string) {
	if amount.Sign() <= 0 {
		return CodeNotPositive, "must be greater than 0"
	}
	minor := currency.MinorUnit()
	if !amount.Equal(amount.Truncate(int32(minor))) { //nolint:gosec // G115: ISO 4217 minor units, 0 to 4
		if minor == 0 {
			return CodeTooPrecise, fmt.Sprintf("%s has no minor unit: the amount must be a whole number", currency.Code())
		}
		return CodeTooPrecise, fmt.Sprintf("%s allows at most %d fraction digits", currency.Code(), minor)
	}
	if intDigits(amount) > MaxIntegerDigits {
		return CodeTooLarge, fmt.Sprintf("at most %d integer digits", MaxIntegerDigits)
	}
	return "", ""
}

// intDigits counts the digits of the integer part of a positive d.
func intDigits(d decimal.Decimal) int {
	s := d.Truncate(0).String()
	if s == "0" {
		return 0
	}
	return len(s)
}
