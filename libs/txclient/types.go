package txclient

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Transaction is a transaction to send. The API validates it: IDs of 1 to
// 128 characters, an amount greater than 0 with at most the currency's
// minor digits, an ISO 4217 currency, a timestamp at most 5 minutes ahead.
type Transaction struct {
	ID        string
	UserID    string
	Amount    decimal.Decimal
	Currency  string
	Timestamp time.Time
}

// MarshalJSON writes the API's request body: the amount as a decimal
// string, exactly, and the timestamp in RFC 3339 with its offset.
func (t Transaction) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		TransactionID string `json:"transaction_id"`
		UserID        string `json:"user_id"`
		Amount        string `json:"amount"`
		Currency      string `json:"currency"`
		Timestamp     string `json:"timestamp"`
	}{t.ID, t.UserID, t.Amount.String(), t.Currency, t.Timestamp.Format(time.RFC3339Nano)})
}

// Status is where a transaction is in the pipeline.
type Status string

// The statuses of a transaction.
const (
	// StatusReceived: stored, not yet converted.
	StatusReceived Status = "received"
	// StatusProcessed: converted; the conversion fields are set.
	StatusProcessed Status = "processed"
	// StatusFailed: no rate could be had; FailureReason says why.
	StatusFailed Status = "failed"
)

// Resource is a stored transaction and its conversion, as the API answers
// it. Until the transaction is processed, ConvertedAmount and ExchangeRate
// are not Valid, TargetCurrency and RateDate are empty and ProcessedAt is
// nil; FailureReason is empty unless it failed.
type Resource struct {
	ID              string              `json:"transaction_id"`
	UserID          string              `json:"user_id"`
	Amount          decimal.Decimal     `json:"amount"`
	Currency        string              `json:"currency"`
	Timestamp       time.Time           `json:"timestamp"`
	Status          Status              `json:"status"`
	ReceivedAt      time.Time           `json:"received_at"`
	ConvertedAmount decimal.NullDecimal `json:"converted_amount"`
	TargetCurrency  string              `json:"target_currency"`
	ExchangeRate    decimal.NullDecimal `json:"exchange_rate"`
	// RateDate is the day of the rate, YYYY-MM-DD: a weekend's transaction
	// gets the previous business day's.
	RateDate      string     `json:"rate_date"`
	ProcessedAt   *time.Time `json:"processed_at"`
	FailureReason string     `json:"failure_reason"`
}

// BatchResult is what one transaction of a batch got: the status it would
// have had alone (201 created, 200 replayed, 409, 422 or 400) and its
// Resource, or its Problem.
type BatchResult struct {
	Status   int
	Resource *Resource
	Problem  *Problem
}

// Created reports whether this transaction was stored by this batch.
func (r BatchResult) Created() bool { return r.Status == 201 }

// ListOptions filter and page a listing; the zero value lists everything,
// 50 to a page.
type ListOptions struct {
	UserID string
	Status Status
	// Limit is the page size, 1 to 500; 0 leaves it to the API (50).
	Limit int
	// Cursor is a Page's NextCursor, for the page after it.
	Cursor string
}

// Page is one page of a listing, newest first. NextCursor is empty on the
// last page.
type Page struct {
	Items      []Resource
	NextCursor string
}

// Problem is an error the API answered: an RFC 9457 problem detail, or a
// stand-in built from the status when the body was none. Compare with
// errors.As.
type Problem struct {
	// Type names the kind of problem, e.g. "/problems/invalid-fields"; the
	// constants Type* name the API's.
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail"`
	Errors []FieldError `json:"errors"`
	// RetryAfter is the wait the API asked for (429, 503); 0 if none.
	RetryAfter time.Duration `json:"-"`
}

// Problem types of the API, txmodel's.
const (
	TypeInvalidFields = txmodel.ProblemInvalidFields
	TypeMalformedBody = txmodel.ProblemMalformedBody
	TypeConflict      = txmodel.ProblemConflict
	TypeNotFound      = txmodel.ProblemNotFound
	TypeInvalidQuery  = txmodel.ProblemInvalidQuery
	TypeUnavailable   = txmodel.ProblemUnavailable
	TypeUnauthorized  = txmodel.ProblemUnauthorized
	TypeRateLimited   = txmodel.ProblemRateLimited
	TypeBlank         = txmodel.ProblemBlank
)

// FieldError names one invalid field (or query parameter) and why: the
// model's own.
type FieldError = txmodel.FieldError

// Error says the status, the type, and what was wrong.
func (p *Problem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "txclient: %d %s", p.Status, p.Type)
	if p.Title != "" {
		b.WriteString(": " + p.Title)
	}
	if p.Detail != "" {
		b.WriteString(": " + p.Detail)
	}
	for i, fe := range p.Errors {
		if i == 0 {
			b.WriteString(" (")
		} else {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", fe.Field, fe.Code)
	}
	if len(p.Errors) > 0 {
		b.WriteString(")")
	}
	return b.String()
}
