// Package convert is the converter's use case: find the exchange rate a
// transaction's rule names, convert its amount exactly from the quotes the
// provider published, and record the outcome once, with where the rate
// came from.
package convert

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/raterule"
	"github.com/txpersister/txpersister/services/converter/internal/store"
)

// ErrRatesUnavailable: the rates provider is unreachable, timing out,
// failing, refusing the requests or answering nonsense; nothing was
// recorded and the transaction should be tried again later.
var ErrRatesUnavailable = errors.New("rates provider unavailable")

// ErrWaiting: the rate the transaction's rule names is not final yet (its
// day is not over and the provider has not published it); nothing was
// recorded and the transaction should be tried again later. Errors
// wrapping it are a *WaitError.
var ErrWaiting = errors.New("waiting for the day's rate")

// WaitError says which day's rate a transaction waits for.
type WaitError struct {
	// Asked is the day whose rate the rule names.
	Asked time.Time
	// Latest is the date of the provider's latest rate on or before it.
	Latest time.Time
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("%s: the provider's latest rate on or before %s is of %s, and %s is not over in its calendar",
		ErrWaiting, e.Asked.Format(time.DateOnly), e.Latest.Format(time.DateOnly), e.Asked.Format(time.DateOnly))
}

func (e *WaitError) Unwrap() error { return ErrWaiting }

// Rates gives the quotes of a day against ratesclient.Base.
type Rates interface {
	// Quotes returns the quotes of codes published for day, or the closest
	// earlier business day, with whether the answer is final. Errors wrap
	// ratesclient.ErrNotFound when the provider says it has none, and
	// ratesclient.ErrUnavailable when it cannot answer now.
	Quotes(ctx context.Context, day time.Time, codes ...string) (ratesclient.Quotes, error)
}

var _ Rates = (*ratesclient.Client)(nil)

// Store records outcomes.
type Store interface {
	// Save records c unless an outcome is recorded already and reports
	// whether it did, waiting out PostgreSQL's outages until ctx ends;
	// errors wrap store.ErrUnavailable when PostgreSQL stayed away,
	// store.ErrRefused when it refuses c.
	Save(ctx context.Context, c txmodel.Conversion, attempts int) (bool, error)
}

var _ Store = (*store.BatchSaver)(nil)

// Service converts transactions.
type Service struct {
	rates  Rates
	store  Store
	target txmodel.Currency
	rule   raterule.Rule
	now    func() time.Time
}

// New returns a Service converting to target with the rate rule names.
func New(rates Rates, st Store, target txmodel.Currency, rule raterule.Rule, now func() time.Time) *Service {
	return &Service{rates: rates, store: st, target: target, rule: rule, now: now}
}

// Result is what Process did.
type Result struct {
	Conversion txmodel.Conversion
	// Recorded is false when an outcome was recorded before (a redelivered
	// or duplicate message): Conversion is then this attempt's, not the
	// stored one, and nothing changed.
	Recorded bool
	// Asked is the day whose rate the rule named; zero when none was
	// asked for (Fail).
	Asked time.Time
	// Quoted is the date of the provider's answer, used or refused as too
	// old; zero when no provider was asked.
	Quoted time.Time
}

// Process converts tx, of tenant, at the rate its rule names and records the outcome:
// processed with the converted amount and the rate's provenance, or
// failed with the reason when the provider has no rate for it, when its
// latest rate is older than the rule allows (never a default or a stale
// rate), or when PostgreSQL refuses the processed outcome. attempts counts
// the deliveries so far, this one included.
//
// It returns, with nothing recorded, an error wrapping ErrRatesUnavailable
// when the provider cannot answer now, and a *WaitError when the rate is
// not final yet. While PostgreSQL is away it keeps trying to record the
// outcome until ctx ends, and then returns an error wrapping
// store.ErrUnavailable; an error wrapping store.ErrRefused means PostgreSQL
// refused even the failure.
func (s *Service) Process(ctx context.Context, tenant string, tx txmodel.Transaction, attempts int) (Result, error) {
	asked := s.rule.Day(tx.Timestamp)
	from := tx.Amount.Currency
	if from == s.target {
		rate := txmodel.Rate{From: from, To: s.target, Value: decimal.NewFromInt(1), Date: asked, Source: txmodel.RateSource{Rule: s.rule.Kind}}
		res, err := s.processed(ctx, tenant, tx, tx.Amount, rate, attempts)
		res.Asked = asked
		return res, err
	}

	q, err := s.rates.Quotes(ctx, asked, from.Code(), s.target.Code())
	switch {
	case errors.Is(err, ratesclient.ErrNotFound):
		res, err := s.Fail(ctx, tenant, tx.ID, "no exchange rate: "+err.Error(), attempts)
		res.Asked = asked
		return res, err
	case err != nil:
		return Result{}, fmt.Errorf("convert transaction %s: %w: %w", tx.ID, ErrRatesUnavailable, err)
	}
	if s.rule.Stale(asked, q.Date) {
		reason := fmt.Sprintf("no exchange rate for %s: the latest rate %s has on or before it is of %s, %d days earlier (at most %d allowed)",
			asked.Format(time.DateOnly), q.Provider, q.Date.Format(time.DateOnly), raterule.Age(asked, q.Date), s.rule.MaxAgeDays)
		res, err := s.Fail(ctx, tenant, tx.ID, reason, attempts)
		res.Asked, res.Quoted = asked, q.Date
		return res, err
	}
	if !q.Final {
		return Result{}, fmt.Errorf("convert transaction %s: %w", tx.ID, &WaitError{Asked: asked, Latest: q.Date})
	}

	perBase := func(c txmodel.Currency) decimal.Decimal {
		if c.Code() == ratesclient.Base {
			return decimal.NewFromInt(1)
		}
		return q.Rates[c.Code()].Value
	}
	qFrom, qTo := perBase(from), perBase(s.target)
	quotes := make(map[string]string, len(q.Rates))
	for code, quote := range q.Rates {
		quotes[code] = quote.Text
	}
	rate := txmodel.Rate{
		From: from, To: s.target, Value: txmodel.CrossRate(qFrom, qTo), Date: q.Date,
		Source: txmodel.RateSource{Provider: q.Provider, Rule: s.rule.Kind, Base: ratesclient.Base, Quotes: quotes},
	}
	res, err := s.processed(ctx, tenant, tx, txmodel.ConvertQuoted(tx.Amount, qFrom, qTo, s.target), rate, attempts)
	res.Asked, res.Quoted = asked, q.Date
	return res, err
}

// processed records tx converted to amount at rate; when PostgreSQL
// refuses that, it records the failure, with PostgreSQL's reason, instead.
func (s *Service) processed(ctx context.Context, tenant string, tx txmodel.Transaction, amount txmodel.Money, rate txmodel.Rate, attempts int) (Result, error) {
	res, err := s.record(ctx, txmodel.Conversion{Tenant: tenant, TransactionID: tx.ID, Status: txmodel.StatusProcessed, Converted: amount, Rate: rate}, attempts)
	if errors.Is(err, store.ErrRefused) {
		return s.Fail(ctx, tenant, tx.ID, "the conversion could not be stored: "+err.Error(), attempts)
	}
	return res, err
}

// Fail records that a transaction failed for reason, unless an outcome is
// recorded already: the provider stayed away through every retry, or its
// message could not be read. The reason is cleaned first
// (txmodel.CleanReason), since it may quote what a provider or a message
// said. The store keeps trying while PostgreSQL is away, until ctx ends;
// an error wrapping store.ErrRefused means PostgreSQL refused even that.
func (s *Service) Fail(ctx context.Context, tenant, transactionID, reason string, attempts int) (Result, error) {
	return s.record(ctx, txmodel.Conversion{Tenant: tenant, TransactionID: transactionID, Status: txmodel.StatusFailed, FailureReason: txmodel.CleanReason(reason)}, attempts)
}

// record saves c, stamped with the time it was decided.
func (s *Service) record(ctx context.Context, c txmodel.Conversion, attempts int) (Result, error) {
	c.ProcessedAt = s.now().UTC().Truncate(time.Microsecond)
	saved, err := s.store.Save(ctx, c, attempts)
	if err != nil {
		return Result{}, err
	}
	return Result{Conversion: c, Recorded: saved}, nil
}
