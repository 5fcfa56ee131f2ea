package store

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"

	"github.com/txpersister/txpersister/libs/pgkit"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable records which of the api's migrations were applied; the
// converter keeps its own.
const VersionTable = "api_schema_version"

// Migrate applies the api's migrations to the database at databaseURL, under
// an advisory lock so replicas that start together apply each once.
func Migrate(ctx context.Context, databaseURL string, log *slog.Logger) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	return pgkit.Migrate(ctx, databaseURL, fsys, VersionTable, log)
}
