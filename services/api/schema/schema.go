// Package schema is the api's database schema, and what it publishes of
// it: the api owns the tables transactions and outbox (created and changed by
// its migrations only), and other modules read and write them only
// through the view accepted_transactions, the view outbox_backlog and the function enqueue_transactions (migration 00003), never with SQL of
// their own on the tables.
//
// It is a module of its own, free of the api's code, so that the
// modules that reach the api's data (and their tests, which prepare a
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

// Migrate applies the api's migrations to the database at databaseURL,
// recording them in the table api_schema_version, under an advisory lock,
// so that replicas starting together apply each once.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	return pgkit.Migrate(ctx, databaseURL, migrations, "migrations", "api_schema_version", log)
}
