package ratesclient

import (
	"errors"
	"fmt"
)

// ErrNotFound is wrapped by errors that will not go away by asking again:
// the provider itself says it has no quote of the currency for the day
// (Frankfurter's JSON "not found" answer, exchangerate-api's
// "unsupported-code", a currency its answer does not hold), or a code is
// not a currency code at all.
var ErrNotFound = errors.New("not found")

// ErrUnavailable is wrapped by errors that may go away by asking again
// later: the provider is unreachable, timed out, answered 5xx or 429,
// refused the request (ErrRejected) or answered something that is not a
// usable answer (ErrBadAnswer).
var ErrUnavailable = errors.New("rate provider unavailable")

// ErrRejected is wrapped, with ErrUnavailable, when the provider answered
// a 4xx status that is not its own "not found": a wrong RATES_API_URL, a
// key it refuses, a proxy or gateway in between. It is retried like an
// outage and counted as an error, never taken as a verdict on a
// transaction.
var ErrRejected = fmt.Errorf("request rejected: %w", ErrUnavailable)

// ErrBadAnswer is wrapped, with ErrUnavailable, when the provider answered
// 200 with something that is not a usable answer: not the JSON asked for,
// another base or date than asked, a quote that is not a positive decimal
// within bounds. A provider that misbehaves so is treated as one that is
// down.
var ErrBadAnswer = fmt.Errorf("unusable answer: %w", ErrUnavailable)

// Outcome names the kind of a call's result, for metrics: "ok",
// "not_found", "rejected", "bad_answer" or "unavailable".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrBadAnswer):
		return "bad_answer"
	default:
		return "unavailable"
	}
}

// Outcomes lists every value Outcome returns.
func Outcomes() []string { return []string{"ok", "not_found", "rejected", "bad_answer", "unavailable"} }
