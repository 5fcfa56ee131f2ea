package e2e

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
)

// TestCeilingScriptsFitTheSchema runs the pgbench scripts of `make
// ceilings` a few times on a database with the current schema: a change
// to the tables must not leave the machine's ceilings unmeasurable (a
// NOT NULL column they do not write, as the tenant once was).
func TestCeilingScriptsFitTheSchema(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	migrateUpTo(t, dbURL, "services/api/schema/migrations", "api_schema_version", 1<<30)
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		t.Fatalf("pgbench is needed (Debian: postgresql-client or postgresql-contrib): %v", err)
	}
	for _, script := range []string{"one-per-commit.sql", "hundred-per-commit.sql"} {
		out, err := exec.Command(pgbench, "-n", "-c", "1", "-t", "3", "-f", filepath.Join("..", "..", "vegeta", "ceilings", script), dbURL).CombinedOutput()
		if err != nil {
			t.Errorf("pgbench -f %s: %v\n%s", script, err, out)
		}
	}
}
