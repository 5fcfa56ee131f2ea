package pgkit

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrate applies the goose SQL migrations in the directory dir of fsys
// (such as an embed.FS of "migrations/*.sql" and "migrations") to the
// database at databaseURL, recording them in versionTable: each service keeps its own
// table, so each applies only its own migrations. A PostgreSQL advisory
// lock is held for the duration, so replicas that start together apply each
// migration once. Errors wrap ErrUnavailable when the database cannot be
// reached.
func Migrate(ctx context.Context, databaseURL string, fsys fs.FS, dir, versionTable string, log *slog.Logger) error {
	fsys, err := fs.Sub(fsys, dir)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("migrate: parse database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	// Ask for the lock every second (goose's default is every 5 s, a delay
	// every replica but the first would pay at start), for up to 5 minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithTableName(versionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", Classify(err))
	}
	for _, r := range results {
		log.InfoContext(ctx, "migration applied", "table", versionTable, "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}
