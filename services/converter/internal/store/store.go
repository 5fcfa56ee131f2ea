// Package store records the converter's outcomes in PostgreSQL (pgx and
// squirrel): one row per transaction in conversions, written once.
package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	sq "github.com/Masterminds/squirrel"
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
	psql sq.StatementBuilderType
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, psql: sq.StatementBuilder.PlaceholderFormat(sq.Dollar)}
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
	q := s.psql.Insert("conversions").
		Columns("transaction_id", "status", "converted_amount", "target_currency", "exchange_rate", "rate_date",
			"failure_reason", "attempts", "processed_at")
	switch c.Status {
	case txmodel.StatusProcessed:
		q = q.Values(c.TransactionID, string(c.Status),
			sq.Expr("?::numeric", c.Converted.String()), c.Converted.Currency.Code(),
			sq.Expr("?::numeric", c.Rate.Value.String()), c.Rate.Date,
			nil, attempts, c.ProcessedAt)
	case txmodel.StatusFailed:
		q = q.Values(c.TransactionID, string(c.Status), nil, nil, nil, nil, c.FailureReason, attempts, c.ProcessedAt)
	default:
		return false, fmt.Errorf("save conversion of %s: status %q is not an outcome", c.TransactionID, c.Status)
	}
	sql, args, err := q.Suffix("ON CONFLICT (transaction_id) DO NOTHING").ToSql()
	if err != nil {
		return false, fmt.Errorf("save conversion of %s: %w", c.TransactionID, err)
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return false, fmt.Errorf("save conversion of %s: %w", c.TransactionID, pgkit.Classify(err))
	}
	return tag.RowsAffected() == 1, nil
}
