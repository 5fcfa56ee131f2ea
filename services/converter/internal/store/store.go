// Package store records the converter's outcomes in PostgreSQL (pgx): one
// row per transaction in conversions, written once, many per round trip.
package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/txmodel"
)

// ErrUnavailable: PostgreSQL could not be reached or did not answer in
// time; the write may or may not have happened, and repeating it is safe.
var ErrUnavailable = pgkit.ErrUnavailable

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable records which of the converter's migrations were applied.
const VersionTable = "converter_schema_version"

// Migrate applies the converter's migrations to the database at
// databaseURL, under an advisory lock.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return pgkit.Migrate(ctx, databaseURL, fsys, VersionTable, log)
}

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
// ErrUnavailable when PostgreSQL cannot be reached.
func (s *Store) Save(ctx context.Context, c txmodel.Conversion, attempts int) (bool, error) {
	saved, err := s.SaveBatch(ctx, []Outcome{{Conversion: c, Attempts: attempts}})
	if err != nil {
		return false, err
	}
	return saved[0], nil
}

// Outcome is one conversion to record, with the deliveries it took.
type Outcome struct {
	Conversion txmodel.Conversion
	Attempts   int
}

// saveSQL records outcomes in one statement; it returns the ids it
// inserted, so each outcome learns whether it was the first.
const saveSQL = `
INSERT INTO conversions (transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date,
                         failure_reason, attempts, processed_at)
SELECT id, status, amount::numeric, target, rate::numeric, rate_date::date, reason, attempts, processed_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::timestamptz[])
    AS o(id, status, amount, target, rate, rate_date, reason, attempts, processed_at)
ON CONFLICT (transaction_id) DO NOTHING
RETURNING transaction_id`

// SaveBatch records outcomes in one round trip and reports for each, in
// order, whether it was recorded (false: an outcome for its transaction was
// recorded before, or earlier in the batch). Errors wrap ErrUnavailable when
// PostgreSQL cannot be reached; then none or all were recorded.
func (s *Store) SaveBatch(ctx context.Context, outcomes []Outcome) ([]bool, error) {
	n := len(outcomes)
	ids := make([]string, 0, n)
	statuses := make([]string, 0, n)
	amounts, targets, rates, dates, reasons := make([]*string, 0, n), make([]*string, 0, n), make([]*string, 0, n), make([]*string, 0, n), make([]*string, 0, n)
	attempts := make([]int32, 0, n)
	at := make([]time.Time, 0, n)
	first := make(map[string]int, n)
	for i, o := range outcomes {
		c := o.Conversion
		if _, dup := first[c.TransactionID]; dup {
			continue
		}
		first[c.TransactionID] = i
		ids = append(ids, c.TransactionID)
		statuses = append(statuses, string(c.Status))
		attempts = append(attempts, int32(o.Attempts)) //nolint:gosec // G115: deliveries of one message, a handful
		at = append(at, c.ProcessedAt)
		switch c.Status {
		case txmodel.StatusProcessed:
			amounts = append(amounts, ptr(c.Converted.String()))
			targets = append(targets, ptr(c.Converted.Currency.Code()))
			rates = append(rates, ptr(c.Rate.Value.String()))
			dates = append(dates, ptr(c.Rate.Date.Format(time.DateOnly)))
			reasons = append(reasons, nil)
		case txmodel.StatusFailed:
			amounts, targets, rates, dates = append(amounts, nil), append(targets, nil), append(rates, nil), append(dates, nil)
			reasons = append(reasons, ptr(c.FailureReason))
		default:
			return nil, fmt.Errorf("save conversion of %s: status %q is not an outcome", c.TransactionID, c.Status)
		}
	}
	rows, err := s.pool.Query(ctx, saveSQL, ids, statuses, amounts, targets, rates, dates, reasons, attempts, at)
	if err != nil {
		return nil, fmt.Errorf("save %d conversions: %w", len(ids), pgkit.Classify(err))
	}
	inserted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("save %d conversions: %w", len(ids), pgkit.Classify(err))
	}
	saved := make([]bool, n)
	for _, id := range inserted {
		saved[first[id]] = true
	}
	return saved, nil
}

func ptr(s string) *string { return &s }

// BatchSaver records outcomes of concurrent callers in shared round trips;
// see pgkit.Batcher. Close stops it.
type BatchSaver struct {
	b *pgkit.Batcher[Outcome, bool]
}

// Batched returns a BatchSaver writing through s.
func (s *Store) Batched(cfg pgkit.BatchConfig) *BatchSaver {
	return &BatchSaver{b: pgkit.NewBatcher(s.SaveBatch, cfg)}
}

// Save is Store.Save, sharing a round trip with concurrent calls.
func (b *BatchSaver) Save(ctx context.Context, c txmodel.Conversion, attempts int) (bool, error) {
	return b.b.Do(ctx, Outcome{Conversion: c, Attempts: attempts})
}

// Close records what is queued and stops.
func (b *BatchSaver) Close() { b.b.Close() }
