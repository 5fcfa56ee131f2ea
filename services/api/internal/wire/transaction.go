// Package wire is the JSON the api writes of its resources: what GET
// answers and what a webhook message carries are the same bytes.
package wire

import (
	"time"

	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// Transaction is the JSON form of a transaction and its conversion. Amounts are
// decimal strings with exactly the currency's minor digits; times are RFC
// 3339 in UTC. The conversion fields are null until the converter has
// processed it, failure_reason until it failed. The rate_* fields say
// where the rate came from, enough with the amount to recompute
// converted_amount by hand; rate_provider, rate_quotes and rate_quote_base
// are null for a conversion to the same currency (no provider is asked),
// and all of them for conversions recorded before they were kept.
type Transaction struct {
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
	// RateRule is "day" or "as-of".
	RateRule *string `json:"rate_rule"`
	// RateProvider names the provider asked.
	RateProvider *string `json:"rate_provider"`
	// RateQuotes are the quotes used exactly as the provider wrote them,
	// each the units of its currency one unit of RateQuoteBase bought.
	RateQuotes    map[string]string `json:"rate_quotes"`
	RateQuoteBase *string           `json:"rate_quote_base"`
	ProcessedAt   *string           `json:"processed_at"`
	FailureReason *string           `json:"failure_reason"`
}

// NewTransaction is the one conversion from the store's record to the
// wire.
func NewTransaction(r transactions.Record) Transaction {
	tx := r.Transaction
	res := Transaction{
		TransactionID: tx.ID,
		UserID:        tx.UserID,
		Amount:        tx.Amount.String(),
		Currency:      tx.Amount.Currency.Code(),
		Timestamp:     FormatTime(tx.Timestamp),
		Status:        string(r.Status()),
		ReceivedAt:    FormatTime(r.ReceivedAt),
	}
	c := r.Conversion
	if c == nil {
		return res
	}
	res.ProcessedAt = ptr(FormatTime(c.ProcessedAt))
	if c.FailureReason != "" {
		res.FailureReason = ptr(c.FailureReason)
	}
	if !c.Converted.Currency.IsZero() {
		res.ConvertedAmount = ptr(c.Converted.String())
		res.TargetCurrency = ptr(c.Converted.Currency.Code())
		res.ExchangeRate = ptr(c.Rate.Value.String())
		res.RateDate = ptr(c.Rate.Date.Format(time.DateOnly))
		src := c.Rate.Source
		res.RateRule = OrNull(string(src.Rule))
		res.RateProvider = OrNull(src.Provider)
		res.RateQuoteBase = OrNull(src.Base)
		res.RateQuotes = src.Quotes
	}
	return res
}

// FormatTime is how the api writes a time: RFC 3339 in UTC, with the
// fraction of a second it has.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func ptr[T any](v T) *T { return &v }

// OrNull is s, or null when it is empty: how the api writes an optional
// string.
func OrNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// TimeOrNull is t as FormatTime writes it, or null when it is zero.
func TimeOrNull(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return ptr(FormatTime(t))
}
