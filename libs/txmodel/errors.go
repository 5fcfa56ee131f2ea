package txmodel

import (
	"errors"
	"strings"
)

// Sentinel errors of the model. Functions wrap them; compare with errors.Is.
var (
	// ErrUnknownCurrency: the code is not an active ISO 4217 currency with a
	// minor unit.
	ErrUnknownCurrency = errors.New("unknown currency")
	// ErrInvalidAmount: the amount is not an exact decimal within bounds.
	ErrInvalidAmount = errors.New("invalid amount")
	// ErrMalformed: the input is not a JSON object at all (bad JSON, another
	// JSON type, invalid UTF-8). Distinct from a *ValidationError, which says
	// the object's fields are wrong.
	ErrMalformed = errors.New("malformed input")
	// ErrUnsupportedVersion: a queue message of a version this code does not
	// know.
	ErrUnsupportedVersion = errors.New("unsupported message version")
)

// Error codes of a FieldError: stable, machine-readable, and used as metric
// label values, so the set is small and fixed.
const (
	CodeRequired       = "required"
	CodeInvalidType    = "invalid_type"
	CodeInvalidValue   = "invalid_value"
	CodeTooLong        = "too_long"
	CodeControlChar    = "control_character"
	CodeNotPositive    = "not_positive"
	CodeTooPrecise     = "too_many_fraction_digits"
	CodeTooLarge       = "too_many_integer_digits"
	CodeUnknownCurr    = "unknown_currency"
	CodeInFuture       = "in_future"
	CodeUnknownField   = "unknown_field"
	CodeDuplicateField = "duplicate_field"
)

// Codes returns every code a FieldError carries, for metric labels. It
// returns a new slice on each call.
func Codes() []string {
	return []string{
		CodeRequired, CodeInvalidType, CodeInvalidValue, CodeTooLong, CodeControlChar, CodeNotPositive,
		CodeTooPrecise, CodeTooLarge, CodeUnknownCurr, CodeInFuture, CodeUnknownField, CodeDuplicateField,
	}
}

// FieldError says which field of a transaction is invalid and why.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ValidationError lists every invalid field of one transaction, in the order
// of the fields in the contract, then unknown and repeated fields in input
// order.
type ValidationError struct {
	Errors []FieldError
}

// Error joins the field errors into one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "invalid transaction: " + strings.Join(parts, "; ")
}
