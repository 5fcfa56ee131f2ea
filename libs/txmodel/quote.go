package txmodel

import (
	"github.com/shopspring/decimal"
)

// RateRule names how the exchange rate of a transaction is chosen. Either
// rule gives one transaction the same rate however often, and wherever, it
// is converted.
type RateRule string

// The rate rules.
const (
	// RateRuleDay takes the rate published for the transaction's UTC
	// calendar day; a day without one (a weekend, a holiday) takes the last
	// business day before it.
	RateRuleDay RateRule = "day"
	// RateRuleAsOf takes the latest rate published before the transaction's
	// timestamp.
	RateRuleAsOf RateRule = "as-of"
)

// ParseRateRule returns the RateRule named s, or false.
func ParseRateRule(s string) (RateRule, bool) {
	switch r := RateRule(s); r {
	case RateRuleDay, RateRuleAsOf:
		return r, true
	default:
		return "", false
	}
}

// RateSource is where a rate came from: with the amount, enough to
// recompute a conversion by hand (see ConvertQuoted).
type RateSource struct {
	// Provider names the rates provider asked ("frankfurter",
	// "exchangerate-api"); empty when none was (a conversion to the same
	// currency).
	Provider string
	// Rule is the rule that chose the rate's day.
	Rule RateRule
	// Base is the currency the quotes are against: each quote is the
	// number of units of its currency that one unit of Base bought.
	Base string
	// Quotes holds, by currency code, each quote used exactly as the
	// provider wrote it; Base itself, whose quote is 1, is not among them.
	Quotes map[string]string
}

// EffectiveRateDigits is the number of significant digits of an effective
// rate (CrossRate), for reading only: converted amounts are computed from
// the quotes themselves.
const EffectiveRateDigits = 10

// ConvertQuoted converts amount into target from two quotes against one base
// currency, from (units of the amount's currency per base unit) and to
// (units of target per base unit): amount × to ÷ from, exact, rounded once
// with RoundHalfEven to target's minor unit. The quotient is never rounded
// on the way: the division is carried out with its remainder, and the
// remainder decides the rounding, so the result is the correctly rounded
// value for every amount. With the base as one of the currencies its quote
// is 1: X to EUR is amount ÷ q(X), EUR to T is amount × q(T).
//
// from and to must be positive.
func ConvertQuoted(amount Money, from, to Decimal, target Currency) Money {
	return Money{
		Amount:   divRoundHalfEven(amount.Amount.Mul(to), from, int32(target.MinorUnit())), //nolint:gosec // G115: ISO 4217 minor units, 0 to 4
		Currency: target,
	}
}

// CrossRate is the effective rate of one unit of a currency quoted from
// against a base into a currency quoted to: to ÷ from, rounded half to
// even to EffectiveRateDigits significant digits. from and to must be
// positive.
func CrossRate(from, to Decimal) Decimal {
	// The quotient's digits before the point: the difference of the
	// operands' ones, plus one when the quotient reaches 10^that.
	lead := intDigitsOf(to) - intDigitsOf(from)
	if to.Cmp(from.Shift(lead)) >= 0 {
		lead++
	}
	return divRoundHalfEven(to, from, EffectiveRateDigits-lead)
}

// intDigitsOf is the position of d's first significant digit: 1 for 1.5,
// 2 for 15, 0 for 0.5, -1 for 0.05. d must not be zero.
func intDigitsOf(d Decimal) int32 {
	return int32(d.NumDigits()) + d.Exponent() //nolint:gosec // G115: a quote's digits, far below 2^31
}

// divRoundHalfEven returns num ÷ den rounded half to even to places
// fraction digits (negative places round to tens, hundreds, …), exactly.
// den must not be zero.
func divRoundHalfEven(num, den Decimal, places int32) Decimal {
	neg := num.Sign()*den.Sign() < 0
	num, den = num.Abs(), den.Abs()
	q, r := num.QuoRem(den, places)
	// num = den·q + r with 0 ≤ r < den·unit: compare 2r with den·unit.
	unit := decimal.New(1, -places)
	switch r.Add(r).Cmp(den.Mul(unit)) {
	case 1:
		q = q.Add(unit)
	case 0:
		if q.Shift(places).BigInt().Bit(0) == 1 {
			q = q.Add(unit)
		}
	}
	if neg {
		q = q.Neg()
	}
	return q
}
