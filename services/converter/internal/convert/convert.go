// Package convert is the converter's use case: find the exchange rate for a
// transaction's day, convert its amount exactly, and record the outcome
// once.
package convert

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/store"
)

// ErrRatesUnavailable: the rates provider is unreachable, timing out or
// failing; nothing was recorded and the transaction should be tried again
// later.
var ErrRatesUnavailable = errors.New("rates provider unavailable")

// Rates gives exchange rates.
type Rates interface {
	// Rate returns the rate from → to published for date, or the closest
	// earlier business day. Errors wrap ratesclient.ErrNotFound when the
	// provider does not know the currency or date, and
	// ratesclient.ErrUnavailable when it cannot answer now.
	Rate(ctx context.Context, from, to string, date time.Time) (ratesclient.Rate, error)
}

var _ Rates = (*ratesclient.Client)(nil)

// Store records outcomes.
type Store interface {
	// Save records c unless an outcome is recorded already and reports
	// whether it did; errors wrap store.ErrUnavailable when PostgreSQL is
	// away.
	Save(ctx context.Context, c txmodel.Conversion, attempts int) (bool, error)
}

var (
	_ Store = (*store.Store)(nil)
	_ Store = (*store.BatchSaver)(nil)
)

// Service converts transactions.
type Service struct {
	rates  Rates
	store  Store
	target txmodel.Currency
	now    func() time.Time
	tracer trace.Tracer
	// storeRetry is the longest wait between attempts to record an outcome
	// while PostgreSQL is away.
	storeRetry time.Duration
}

// New returns a Service converting to target.
func New(rates Rates, st Store, target txmodel.Currency, now func() time.Time) *Service {
	return &Service{
		rates: rates, store: st, target: target, now: now,
		tracer:     otel.Tracer("github.com/txpersister/txpersister/services/converter/internal/convert"),
		storeRetry: 5 * time.Second,
	}
}

// Result is what Process did.
type Result struct {
	Conversion txmodel.Conversion
	// Recorded is false when an outcome was recorded before (a redelivered
	// or duplicate message): Conversion is then this attempt's, not the
	// stored one, and nothing changed.
	Recorded bool
}

// Process converts tx with the rate of its day and records the outcome:
// processed with the converted amount, or failed when the provider does
// not know the currency or the date (a permanent answer, never a default
// rate). attempts counts the deliveries so far, this one included.
//
// It returns an error wrapping ErrRatesUnavailable, with nothing recorded,
// when the provider cannot answer now. While PostgreSQL is away it keeps
// trying to record the outcome until ctx ends, and then returns an error
// wrapping store.ErrUnavailable.
func (s *Service) Process(ctx context.Context, tx txmodel.Transaction, attempts int) (Result, error) {
	rate, err := s.rate(ctx, tx)
	var c txmodel.Conversion
	switch {
	case err == nil:
		c = txmodel.Conversion{
			TransactionID: tx.ID,
			Status:        txmodel.StatusProcessed,
			Converted:     txmodel.Convert(tx.Amount, rate.Value, s.target),
			Rate:          rate,
		}
	case errors.Is(err, ratesclient.ErrNotFound):
		c = txmodel.Conversion{TransactionID: tx.ID, Status: txmodel.StatusFailed, FailureReason: "no exchange rate: " + err.Error()}
	default:
		return Result{}, fmt.Errorf("convert transaction %s: %w: %w", tx.ID, ErrRatesUnavailable, err)
	}
	return s.record(ctx, c, attempts)
}

// Fail records that a transaction failed for reason, unless an outcome is
// recorded already: the provider stayed away through every retry, or its
// message could not be read. It keeps trying while PostgreSQL is away,
// until ctx ends.
func (s *Service) Fail(ctx context.Context, transactionID, reason string, attempts int) (Result, error) {
	return s.record(ctx, txmodel.Conversion{TransactionID: transactionID, Status: txmodel.StatusFailed, FailureReason: reason}, attempts)
}

// rate returns the rate from tx's currency to the target for tx's day; 1,
// without asking, when they are the same currency.
//
// In the trace, the rates client's HTTP span is a child of the span in ctx
// (the worker's CONSUMER span) of the message whose call went to the
// provider. A rate served from the client's cache makes no HTTP span, and
// neither does one shared from another message's call in flight for the
// same currency and day (the client coalesces them): that call's span is
// in the other message's trace.
func (s *Service) rate(ctx context.Context, tx txmodel.Transaction) (txmodel.Rate, error) {
	from := tx.Amount.Currency
	if from == s.target {
		return txmodel.Rate{From: from, To: s.target, Value: decimal.NewFromInt(1), Date: tx.RateDay()}, nil
	}
	r, err := s.rates.Rate(ctx, from.Code(), s.target.Code(), tx.RateDay())
	if err != nil {
		return txmodel.Rate{}, err
	}
	if !r.Value.IsPositive() {
		// The client refuses these already; a zero rate must never convert.
		return txmodel.Rate{}, fmt.Errorf("rate %s->%s is %s: %w", from, s.target, r.Value, ratesclient.ErrUnavailable)
	}
	return txmodel.Rate{From: from, To: s.target, Value: r.Value, Date: r.Date}, nil
}

// record saves c, retrying while PostgreSQL is away.
func (s *Service) record(ctx context.Context, c txmodel.Conversion, attempts int) (Result, error) {
	ctx, span := s.tracer.Start(ctx, "INSERT conversions", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("db.system.name", "postgresql"),
			attribute.String("db.system", "postgresql"), // the name before semantic conventions 1.30; many backends still read it
			attribute.String("db.operation.name", "INSERT"),
			attribute.String("db.collection.name", "conversions"),
		))
	defer span.End()
	wait := 50 * time.Millisecond
	for {
		c.ProcessedAt = s.now().UTC().Truncate(time.Microsecond)
		saved, err := s.store.Save(ctx, c, attempts)
		if err == nil {
			return Result{Conversion: c, Recorded: saved}, nil
		}
		if !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "save failed")
			return Result{}, err
		}
		select {
		case <-ctx.Done():
			span.RecordError(err)
			span.SetStatus(codes.Error, "save failed")
			return Result{}, err
		case <-time.After(wait):
		}
		wait = min(2*wait, s.storeRetry)
	}
}
