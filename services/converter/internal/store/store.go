// Package store records the converter's outcomes in PostgreSQL (pgx): one
// row per transaction in conversions, written once, many per round trip.
// The table's schema, and what other modules may use of it, is
// services/converter/schema.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/batch"
	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/txmodel"
)

// ErrUnavailable: PostgreSQL could not be reached or did not answer in
// time; the write may or may not have happened, and repeating it is safe.
var ErrUnavailable = pgkit.ErrUnavailable

// ErrRefused: PostgreSQL refused this outcome's data (a date it cannot
// hold, a text it cannot store); the same outcome will be refused again.
// Nothing of it was written.
var ErrRefused = pgkit.ErrRefused

// Store is the converter's PostgreSQL store, safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool}
}

// Ping checks that PostgreSQL answers; errors wrap ErrUnavailable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", pgkit.Classify(err))
	}
	return nil
}

// Save records c unless an outcome for its transaction is recorded
// already, and reports whether this call recorded it. The first outcome
// stands: a redelivered message, or a duplicate one, changes nothing.
// attempts is how many deliveries the outcome took. Errors wrap
// ErrUnavailable when PostgreSQL cannot be reached, ErrRefused when it
// refused c's data.
func (s *Store) Save(ctx context.Context, c txmodel.Conversion, attempts int) (bool, error) {
	saved, err := s.SaveBatch(ctx, []Outcome{{Conversion: c, Attempts: attempts}})
	if err != nil {
		return false, err
	}
	return saved[0].Recorded, saved[0].Err
}

// Outcome is one conversion to record, with the deliveries it took.
type Outcome struct {
	Conversion txmodel.Conversion
	Attempts   int
}

// Saved is what a save did with one Outcome.
type Saved struct {
	// Recorded is false when an outcome for its transaction was recorded
	// before, or earlier in the same batch, or when Err is set.
	Recorded bool
	// Err, wrapping ErrRefused, says PostgreSQL refused this outcome alone;
	// the others of its batch are recorded as if it had not been there.
	Err error
}

// saveSQL records outcomes in one statement; it returns the tenants and
// ids it inserted, so each outcome learns whether it was the first.
const saveSQL = `
INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date,
                         failure_reason, attempts, processed_at, rate_provider, rate_rule, rate_base, rate_quotes)
SELECT tenant, id, status, amount::numeric, target, rate::numeric, rate_date::date, reason, attempts, processed_at,
       provider, rule, base, quotes::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::timestamptz[],
            $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
    AS o(id, status, amount, target, rate, rate_date, reason, attempts, processed_at, provider, rule, base, quotes, tenant)
ON CONFLICT (tenant, transaction_id) DO NOTHING
RETURNING tenant, transaction_id`

// key is what identifies a transaction: its id within its tenant.
type key struct{ tenant, id string }

func keyOf(c txmodel.Conversion) key { return key{c.Tenant, c.TransactionID} }

// SaveBatch records outcomes in one round trip and reports for each, in
// order, what it did. When PostgreSQL refuses the data of some outcomes,
// the statement fails as a whole; each outcome is then written on its own,
// so the refused ones are told apart (Saved.Err) and the rest recorded.
// Errors wrap ErrUnavailable when PostgreSQL cannot be reached; then none,
// some or all were recorded, and the same batch again is safe.
func (s *Store) SaveBatch(ctx context.Context, outcomes []Outcome) ([]Saved, error) {
	cols, first, err := newColumns(outcomes)
	if err != nil {
		return nil, err
	}
	inserted, err := s.insert(ctx, cols)
	if errors.Is(err, ErrRefused) && len(cols.ids) > 1 {
		return s.saveOneByOne(ctx, outcomes, first)
	}
	saved := make([]Saved, len(outcomes))
	if errors.Is(err, ErrRefused) {
		saved[first[key{cols.tenants[0], cols.ids[0]}]].Err = err
		return saved, nil
	}
	if err != nil {
		return nil, err
	}
	for _, k := range inserted {
		saved[first[k]].Recorded = true
	}
	return saved, nil
}

// saveOneByOne writes each first outcome of a transaction in a statement
// of its own, to isolate those PostgreSQL refuses.
func (s *Store) saveOneByOne(ctx context.Context, outcomes []Outcome, first map[key]int) ([]Saved, error) {
	saved := make([]Saved, len(outcomes))
	for i, o := range outcomes {
		if first[keyOf(o.Conversion)] != i {
			continue
		}
		one, _, err := newColumns([]Outcome{o})
		if err != nil {
			return nil, err
		}
		inserted, err := s.insert(ctx, one)
		switch {
		case errors.Is(err, ErrRefused):
			saved[i].Err = err
		case err != nil:
			return nil, err
		default:
			saved[i].Recorded = len(inserted) == 1
		}
	}
	return saved, nil
}

// columns are outcomes as the columns of saveSQL, each transaction once.
type columns struct {
	tenants, ids, statuses                  []string
	amounts, targets, rates, dates, reasons []*string
	providers, rules, bases, quotes         []*string
	attempts                                []int32
	at                                      []time.Time
}

// newColumns lays outcomes out as columns, keeping the first outcome of each
// transaction; first maps each transaction to the index of that outcome.
func newColumns(outcomes []Outcome) (columns, map[key]int, error) {
	n := len(outcomes)
	r := columns{
		tenants: make([]string, 0, n), ids: make([]string, 0, n), statuses: make([]string, 0, n),
		amounts: make([]*string, 0, n), targets: make([]*string, 0, n), rates: make([]*string, 0, n),
		dates: make([]*string, 0, n), reasons: make([]*string, 0, n),
		providers: make([]*string, 0, n), rules: make([]*string, 0, n), bases: make([]*string, 0, n), quotes: make([]*string, 0, n),
		attempts: make([]int32, 0, n), at: make([]time.Time, 0, n),
	}
	first := make(map[key]int, n)
	for i, o := range outcomes {
		c := o.Conversion
		if _, dup := first[keyOf(c)]; dup {
			continue
		}
		first[keyOf(c)] = i
		r.tenants = append(r.tenants, c.Tenant)
		r.ids = append(r.ids, c.TransactionID)
		r.statuses = append(r.statuses, string(c.Status))
		r.attempts = append(r.attempts, int32(o.Attempts)) //nolint:gosec // G115: deliveries of one message, a handful
		r.at = append(r.at, c.ProcessedAt)
		switch c.Status {
		case txmodel.StatusProcessed:
			src := c.Rate.Source
			var quotes *string
			if src.Quotes != nil {
				b, err := json.Marshal(src.Quotes)
				if err != nil {
					return columns{}, nil, fmt.Errorf("save conversion of %s: quotes: %w", c.TransactionID, err)
				}
				quotes = ptr(string(b))
			}
			r.amounts = append(r.amounts, ptr(c.Converted.String()))
			r.targets = append(r.targets, ptr(c.Converted.Currency.Code()))
			r.rates = append(r.rates, ptr(c.Rate.Value.String()))
			r.dates = append(r.dates, ptr(c.Rate.Date.Format(time.DateOnly)))
			r.reasons = append(r.reasons, nil)
			r.providers = append(r.providers, orNull(src.Provider))
			r.rules = append(r.rules, orNull(string(src.Rule)))
			r.bases = append(r.bases, orNull(src.Base))
			r.quotes = append(r.quotes, quotes)
		case txmodel.StatusFailed:
			r.amounts, r.targets, r.rates, r.dates = append(r.amounts, nil), append(r.targets, nil), append(r.rates, nil), append(r.dates, nil)
			r.providers, r.rules, r.bases, r.quotes = append(r.providers, nil), append(r.rules, nil), append(r.bases, nil), append(r.quotes, nil)
			r.reasons = append(r.reasons, ptr(c.FailureReason))
		default:
			return columns{}, nil, fmt.Errorf("save conversion of %s: status %q is not an outcome", c.TransactionID, c.Status)
		}
	}
	return r, first, nil
}

// insert runs saveSQL and returns the tenants and ids it inserted.
func (s *Store) insert(ctx context.Context, r columns) ([]key, error) {
	res, err := s.pool.Query(ctx, saveSQL, r.ids, r.statuses, r.amounts, r.targets, r.rates, r.dates, r.reasons, r.attempts, r.at,
		r.providers, r.rules, r.bases, r.quotes, r.tenants)
	if err != nil {
		return nil, fmt.Errorf("save %d conversions: %w", len(r.ids), pgkit.Classify(err))
	}
	inserted, err := pgx.CollectRows(res, func(row pgx.CollectableRow) (key, error) {
		var k key
		return k, row.Scan(&k.tenant, &k.id)
	})
	if err != nil {
		return nil, fmt.Errorf("save %d conversions: %w", len(r.ids), pgkit.Classify(err))
	}
	return inserted, nil
}

func ptr(s string) *string { return &s }

func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// BatchSaver records outcomes of concurrent callers in shared round trips
// (see batch.Batcher), each inside a CLIENT span of its own, and waits out
// PostgreSQL's outages. Close stops it.
type BatchSaver struct {
	b       *batch.Batcher[Outcome, Saved]
	tracer  trace.Tracer
	maxWait time.Duration
}

// Batched returns a BatchSaver writing through s.
func (s *Store) Batched(cfg batch.Config) *BatchSaver {
	return &BatchSaver{
		b:       batch.New(s.SaveBatch, cfg),
		tracer:  otel.Tracer("github.com/txpersister/txpersister/services/converter/internal/store"),
		maxWait: 5 * time.Second,
	}
}

// Save is Store.Save, sharing a round trip with concurrent calls; an
// outcome PostgreSQL refuses fails only its own call (ErrRefused). While
// PostgreSQL is away it tries again, after 50 ms doubling up to 5 s, until
// ctx ends; the error then wraps ErrUnavailable.
func (b *BatchSaver) Save(ctx context.Context, c txmodel.Conversion, attempts int) (bool, error) {
	ctx, span := b.tracer.Start(ctx, "INSERT conversions", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			semconv.DBSystemNamePostgreSQL,
			attribute.String("db.system", "postgresql"), // the name before semantic conventions 1.30; many backends still read it
			semconv.DBOperationName("INSERT"),
			semconv.DBCollectionName("conversions"),
		))
	defer span.End()
	var last error
	saved, err := backoff.Retry(ctx, func() (Saved, error) {
		saved, err := b.b.Do(ctx, Outcome{Conversion: c, Attempts: attempts})
		last = err
		if err != nil && !errors.Is(err, ErrUnavailable) {
			return Saved{}, backoff.Permanent(err)
		}
		return saved, err
	}, backoff.WithBackOff(&backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, Multiplier: 2, MaxInterval: b.maxWait}),
		backoff.WithMaxElapsedTime(0))
	if err == nil {
		err = saved.Err
	} else if last != nil {
		err = last // ctx ended while PostgreSQL was away: say so
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "save failed")
		return false, err
	}
	return saved.Recorded, nil
}

// Close records what is queued and stops.
func (b *BatchSaver) Close() { b.b.Close() }
