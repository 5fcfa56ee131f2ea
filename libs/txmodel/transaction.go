package txmodel

import (
	"time"
)

// MaxIDLength bounds transaction_id and user_id, in characters.
const MaxIDLength = 128

// MaxFutureSkew is how far in the future a transaction's timestamp may lie:
// clients' clocks drift, but not by hours.
const MaxFutureSkew = 5 * time.Minute

// Transaction is a valid incoming transaction, normalised: the currency in
// upper case, the timestamp in UTC with microsecond precision (what
// PostgreSQL keeps).
type Transaction struct {
	ID        string
	UserID    string
	Amount    Money
	Timestamp time.Time
}

// SameContent reports whether t and o carry the same transaction: the same
// id, user, amount (100 and 100.00 are one amount), currency and instant
// (+02:00 and Z may name one instant). A client's retry has the same
// content; a different transaction under a reused id does not.
func (t Transaction) SameContent(o Transaction) bool {
	return t.ID == o.ID &&
		t.UserID == o.UserID &&
		t.Amount.Equal(o.Amount) &&
		t.Timestamp.Equal(o.Timestamp)
}

// Status is where a transaction is in the pipeline.
type Status string

// The statuses of a transaction.
const (
	// StatusReceived: stored by the api and on its way to the converter.
	StatusReceived Status = "received"
	// StatusProcessed: converted; the Conversion holds the result.
	StatusProcessed Status = "processed"
	// StatusFailed: could not be converted; the Conversion holds the reason.
	StatusFailed Status = "failed"
)

// ParseStatus returns the Status named by s, or false.
func ParseStatus(s string) (Status, bool) {
	switch st := Status(s); st {
	case StatusReceived, StatusProcessed, StatusFailed:
		return st, true
	default:
		return "", false
	}
}

// Conversion is the converter's outcome for one transaction: the converted
// amount and the rate used when processed, the reason when failed.
type Conversion struct {
	// Tenant owns the transaction; TransactionID is unique within it.
	Tenant        string
	TransactionID string
	Status        Status // StatusProcessed or StatusFailed
	Converted     Money  // zero when failed
	Rate          Rate   // zero when failed
	ProcessedAt   time.Time
	FailureReason string // empty when processed
}

// Rate is an exchange rate used for a conversion: one unit of From is
// Value units of To, as published for Date.
type Rate struct {
	From Currency
	To   Currency
	// Value is the effective rate, for reading: since 0.2.0 a conversion
	// is computed from Source's quotes (ConvertQuoted), and Value is their
	// CrossRate.
	Value Decimal
	// Date is the business day the rate was published for (UTC midnight),
	// which can be before the transaction's day: weekends and holidays have
	// no rates of their own.
	Date time.Time
	// Source is where the rate came from; zero for an outcome recorded
	// before it was kept.
	Source RateSource
}

// RateDay is the calendar day whose exchange rate converts t: the UTC date
// of its timestamp.
func (t Transaction) RateDay() time.Time {
	y, m, d := t.Timestamp.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
