package txmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The JSON fields of a transaction, in the order of the contract.
const (
	FieldTransactionID = "transaction_id"
	FieldUserID        = "user_id"
	FieldAmount        = "amount"
	FieldCurrency      = "currency"
	FieldTimestamp     = "timestamp"
)

var contractFields = []string{FieldTransactionID, FieldUserID, FieldAmount, FieldCurrency, FieldTimestamp}

// Fields returns the JSON fields of a transaction, in the order of the
// contract: a field error names one of them, or a field the contract does
// not have. It returns a new slice on each call.
func Fields() []string { return slices.Clone(contractFields) }

// ParseTransaction decodes and validates one transaction from a JSON object
// with exactly the fields transaction_id, user_id, amount, currency and
// timestamp. now is the time the timestamp may not lie more than
// MaxFutureSkew beyond.
//
// It returns an error wrapping ErrMalformed when data is not one JSON object
// in valid UTF-8, and a *ValidationError listing every invalid field when the
// object's content is wrong: a missing or null field, a value of the wrong
// JSON type or out of bounds, an unknown field (a typo such as "ammount"
// must not pass silently) or a field given twice.
//
// amount may be a JSON number or a string; either is parsed exactly as a
// decimal, never through a float. currency is accepted in any case.
// timestamp is read by ParseTimestamp: RFC 3339, with a T, t or space
// between date and time; without a zone it means UTC; a leap second
// (23:59:60 UTC) reads as the first instant of the next second, and second
// 60 at any other time is an error with CodeInvalidValue, as is any text
// ParseTimestamp refuses.
func ParseTransaction(data []byte, now time.Time) (Transaction, error) {
	fields, extra, err := decodeObject(data)
	if err != nil {
		return Transaction{}, err
	}
	var v validator
	t := v.transaction(fields, now)
	if errs := append(v.sorted(), extra...); len(errs) > 0 {
		return Transaction{}, &ValidationError{Errors: errs}
	}
	return t, nil
}

// decodeObject splits a JSON object into its raw field values. Unknown and
// duplicate fields come back as field errors, not values. It reads with
// jsontext, for the reason decodeMessage does.
func decodeObject(data []byte) (map[string]json.RawMessage, []FieldError, error) {
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	dec := getDecoder(data, messageDecoding) // duplicates are field errors here
	defer messageDecoders.Put(dec)
	fields := make(map[string]json.RawMessage, len(contractFields))
	var errs []FieldError
	err := readObject(dec, func(key string) error {
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if _, seen := fields[key]; seen {
			errs = append(errs, FieldError{Field: key, Code: CodeDuplicateField, Message: "given more than once"})
			return nil
		}
		if !isContractField(key) {
			errs = append(errs, FieldError{Field: key, Code: CodeUnknownField, Message: "unknown field"})
			// Remember it all the same, so a second copy reads as a duplicate.
		}
		fields[key] = json.RawMessage(slices.Clone(v))
		return nil
	})
	switch {
	case errors.Is(err, errNotObject):
		return nil, nil, fmt.Errorf("%w: want a JSON object", ErrMalformed)
	case err != nil:
		return nil, nil, fmt.Errorf("%w: %s", ErrMalformed, jsonErrorText(err))
	}
	if _, err := dec.ReadValue(); !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%w: data after the JSON object", ErrMalformed)
	}
	// Duplicates of a contract field are reported once and the field itself
	// is not validated: neither copy may win.
	for _, fe := range errs {
		if fe.Code == CodeDuplicateField {
			fields[fe.Field] = nil
		}
	}
	return fields, errs, nil
}

// unquote returns the text of raw, a JSON string decodeObject read (so
// valid JSON), as encoding/json decodes it; without an escape it is the
// bytes between the quotes.
func unquote(raw json.RawMessage) (string, error) {
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

func isContractField(key string) bool {
	for _, f := range contractFields {
		if f == key {
			return true
		}
	}
	return false
}

func jsonErrorText(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON"
	}
	return strings.TrimPrefix(err.Error(), "jsontext: ")
}

// validator collects field errors while it builds a Transaction.
type validator struct {
	errs []FieldError
}

// sorted returns the errors in the order of the contract's fields.
func (v *validator) sorted() []FieldError {
	rank := func(field string) int {
		for i, f := range contractFields {
			if f == field {
				return i
			}
		}
		return len(contractFields)
	}
	sort.SliceStable(v.errs, func(i, j int) bool { return rank(v.errs[i].Field) < rank(v.errs[j].Field) })
	return v.errs
}

func (v *validator) fail(field, code, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

// transaction validates the contract fields of fields. A field whose value
// is nil was given twice and is already reported.
func (v *validator) transaction(fields map[string]json.RawMessage, now time.Time) Transaction {
	var t Transaction
	t.ID, _ = v.stringField(fields, FieldTransactionID, v.checkID)
	t.UserID, _ = v.stringField(fields, FieldUserID, v.checkID)
	amountText, amountOK := v.amountText(fields)
	code, currencyOK := v.stringField(fields, FieldCurrency, nil)
	if currencyOK {
		c, err := LookupCurrency(code)
		if err != nil {
			v.fail(FieldCurrency, CodeUnknownCurr, "%q is not an active ISO 4217 currency code with a minor unit", code)
			currencyOK = false
		}
		t.Amount.Currency = c
	}
	if amountOK {
		t.Amount.Amount = v.amount(amountText, t.Amount.Currency, currencyOK)
	}
	if ts, ok := v.stringField(fields, FieldTimestamp, nil); ok {
		t.Timestamp = v.timestamp(ts, now)
	}
	return t
}

// stringField reads a JSON string field and runs check on it. ok is false
// when the field is missing, of another type, or fails check.
func (v *validator) stringField(fields map[string]json.RawMessage, field string, check func(field, s string) bool) (s string, ok bool) {
	raw, present := fields[field]
	if !present {
		v.fail(field, CodeRequired, "is required")
		return "", false
	}
	if raw == nil {
		return "", false
	}
	if len(raw) == 0 || raw[0] != '"' {
		v.fail(field, CodeInvalidType, "must be a string")
		return "", false
	}
	s, err := unquote(raw)
	if err != nil {
		v.fail(field, CodeInvalidType, "must be a string")
		return "", false
	}
	if check != nil && !check(field, s) {
		return "", false
	}
	return s, true
}

// checkID applies the rules of transaction_id and user_id.
func (v *validator) checkID(field, s string) bool {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		v.fail(field, CodeRequired, "must not be empty")
		return false
	case n > MaxIDLength:
		v.fail(field, CodeTooLong, "must be at most %d characters, got %d", MaxIDLength, n)
		return false
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		v.fail(field, CodeControlChar, "must not contain control characters")
		return false
	}
	return true
}

// amountText returns the text of the amount, from a JSON number or string.
func (v *validator) amountText(fields map[string]json.RawMessage) (string, bool) {
	raw, present := fields[FieldAmount]
	if !present {
		v.fail(FieldAmount, CodeRequired, "is required")
		return "", false
	}
	if raw == nil {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		s, err := unquote(raw)
		if err != nil {
			v.fail(FieldAmount, CodeInvalidType, "must be a number or a string holding a decimal number")
			return "", false
		}
		return s, true
	case c == '-' || isDigit(c):
		return string(raw), true
	default:
		v.fail(FieldAmount, CodeInvalidType, "must be a number or a string holding a decimal number")
		return "", false
	}
}

// amount parses text and checks it against currency; when the currency is
// unknown only the checks that do not need it are made.
func (v *validator) amount(text string, currency Currency, currencyOK bool) Decimal {
	d, err := ParseDecimal(text)
	if err != nil {
		v.fail(FieldAmount, CodeInvalidValue, "%q is not a decimal number (digits, an optional fraction and exponent, at most %d characters)", truncate(text, maxLiteralLen), maxLiteralLen)
		return Decimal{}
	}
	if !currencyOK {
		if d.Sign() <= 0 {
			v.fail(FieldAmount, CodeNotPositive, "must be greater than 0")
		} else if intDigits(d) > MaxIntegerDigits {
			v.fail(FieldAmount, CodeTooLarge, "at most %d integer digits", MaxIntegerDigits)
		}
		return d
	}
	if code, msg := checkAmount(d, currency); code != "" {
		v.fail(FieldAmount, code, "%s", msg)
	}
	return d
}

// timestamp parses s and checks it against now. Every refusal of
// ParseTimestamp, a second 60 outside 23:59:60 UTC among them, is a
// CodeInvalidValue on the timestamp field whose message is ParseTimestamp's,
// so the client reads why.
func (v *validator) timestamp(s string, now time.Time) time.Time {
	t, err := ParseTimestamp(s)
	if err != nil {
		v.fail(FieldTimestamp, CodeInvalidValue, "%s", err)
		return time.Time{}
	}
	if limit := now.Add(MaxFutureSkew); t.After(limit) {
		v.fail(FieldTimestamp, CodeInFuture, "must not be more than %s in the future", MaxFutureSkew)
	}
	return t
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
