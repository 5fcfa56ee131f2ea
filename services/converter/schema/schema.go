// Package schema is the converter's database schema, and what it publishes of
// it: the converter owns the tables conversions (created and changed by
// its migrations only), and other modules read and write them only
// through the view conversion_outcomes and the function forget_failed_outcomes (migration 00003), never with SQL of
// their own on the tables.
//
// It is a module of its own, free of the converter's code, so that the
// modules that reach the converter's data (and their tests, which prepare a
// database with pgtest.NewDatabase) depend on the schema alone.
package schema

import (
	"context"
	"embed"
	"log/slog"

	"github.com/txpersister/txpersister/libs/pgkit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the converter's migrations to the database at
// databaseURL, recording them in the table converter_schema_version, under
// an advisory lock, so that replicas starting together apply each once.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	return pgkit.Migrate(ctx, databaseURL, migrations, "migrations", "converter_schema_version", log)
}
