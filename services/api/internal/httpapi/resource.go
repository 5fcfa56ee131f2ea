package httpapi

import (
	"time"

	"github.com/txpersister/txpersister/services/api/internal/store"
)

// resource is the JSON form of a transaction and its conversion. Amounts are
// decimal strings with exactly the currency's minor digits; times are RFC
// 3339 in UTC. The conversion fields are null until the converter has
// processed it, failure_reason until it failed.
type resource struct {
	TransactionID   string  `json:"transaction_id"`
	UserID          string  `json:"user_id"`
	Amount          string  `json:"amount"`
	Currency        string  `json:"currency"`
	Timestamp       string  `json:"timestamp"`
	Status          string  `json:"status"`
	ReceivedAt      string  `json:"received_at"`
	ConvertedAmount *string `json:"converted_amount"`
	TargetCurrency  *string `json:"target_currency"`
	ExchangeRate    *string `json:"exchange_rate"`
	RateDate        *string `json:"rate_date"`
	ProcessedAt     *string `json:"processed_at"`
	FailureReason   *string `json:"failure_reason"`
}

// newResource is the one conversion from the store's record to the wire.
func newResource(r store.Record) resource {
	tx := r.Transaction
	res := resource{
		TransactionID: tx.ID,
		UserID:        tx.UserID,
		Amount:        tx.Amount.String(),
		Currency:      tx.Amount.Currency.Code(),
		Timestamp:     formatTime(tx.Timestamp),
		Status:        string(r.Status()),
		ReceivedAt:    formatTime(r.ReceivedAt),
	}
	c := r.Conversion
	if c == nil {
		return res
	}
	res.ProcessedAt = ptr(formatTime(c.ProcessedAt))
	if c.FailureReason != "" {
		res.FailureReason = ptr(c.FailureReason)
	}
	if !c.Converted.Currency.IsZero() {
		res.ConvertedAmount = ptr(c.Converted.String())
		res.TargetCurrency = ptr(c.Converted.Currency.Code())
		res.ExchangeRate = ptr(c.Rate.Value.String())
		res.RateDate = ptr(c.Rate.Date.Format(time.DateOnly))
	}
	return res
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func ptr[T any](v T) *T { return &v }
