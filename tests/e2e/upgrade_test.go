package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/pgkit"
)

// migrateUpTo applies a service's migrations numbered up to last (its
// previous release's schema), from the repository's files, as that
// release's Migrate recorded them.
func migrateUpTo(t *testing.T, dbURL, dir, table string, last int) {
	t.Helper()
	src := filepath.Join("..", "..", dir)
	files, err := filepath.Glob(filepath.Join(src, "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations in %s: %v", src, err)
	}
	old := t.TempDir()
	for _, f := range files {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "_", 2)[0])
		if err != nil || n > last {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(old, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := pgkit.Migrate(context.Background(), dbURL, os.DirFS(old), ".", table, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatalf("migrate %s up to %05d: %v", dir, last, err)
	}
}

// fillPreviousVersion writes what the release before tenants left in a
// database: a processed transaction, and one still in the outbox with its
// queue message of version 1.
func fillPreviousVersion(t *testing.T, dbURL string) {
	t.Helper()
	migrateUpTo(t, dbURL, "services/api/schema/migrations", "api_schema_version", 3)
	migrateUpTo(t, dbURL, "services/converter/schema/migrations", "converter_schema_version", 3)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	msg := `{"version":1,"transaction_id":"old-2","user_id":"123","amount":"12345","currency":"JPY",` +
		`"timestamp":"2024-09-11T12:00:00Z","received_at":"2024-09-11T12:00:01Z"}`
	for _, sql := range []string{
		`INSERT INTO transactions (transaction_id, user_id, amount, currency, occurred_at, received_at) VALUES
			('old-1', '123', 100.00, 'USD', '2024-09-11T00:00:00Z', '2024-09-11T12:00:00Z'),
			('old-2', '123', 12345, 'JPY', '2024-09-11T12:00:00Z', '2024-09-11T12:00:01Z')`,
		`INSERT INTO conversions (transaction_id, status, converted_amount, target_currency, exchange_rate, rate_date, processed_at,
			rate_provider, rate_rule, rate_base, rate_quotes)
		 VALUES ('old-1', 'processed', 90.56, 'EUR', 0.9055510278, '2024-09-11', now(), 'ecb', 'day', 'EUR', '{"USD": "1.1043"}')`,
		`INSERT INTO outbox (transaction_id, payload) VALUES ('old-2', convert_to('` + msg + `', 'UTF8'))`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("fill the previous version's database: %v", err)
		}
	}
}

// TestUpgradeFromBeforeTenants starts the services on a database the
// previous release filled: its transactions belong to the implicit
// tenant, its outbox entry is relayed and converted, ids are unique per
// tenant from then on, and every index of transactions leads with the
// tenant.
func TestUpgradeFromBeforeTenants(t *testing.T) {
	t.Parallel()
	s := start(t, options{prepare: fillPreviousVersion})
	if code, res := s.get("/v1/transactions/old-1"); code != http.StatusOK || res["status"] != "processed" || res["converted_amount"] != "90.56" {
		t.Errorf("old-1 after the upgrade: %d %v, want processed as before", code, res)
	}
	if res := s.waitStatus("old-2", 30*time.Second, "processed", "failed"); res["converted_amount"] != "78.83" {
		t.Errorf("old-2, in the outbox at the upgrade: %v, want processed as 78.83 EUR", res)
	}
	if code, _ := s.post("/v1/transactions", body("old-1", "100.0", "USD", "2024-09-11T00:00:00Z")); code != http.StatusOK {
		t.Errorf("old-1 again: %d, want 200 (a replay within the implicit tenant)", code)
	}
	// The status index (api schema 00007, 00008): old-2, received at the
	// upgrade, was added to it, and the api's sweeper takes it out once
	// processed; the listings by status are exact meanwhile.
	for status, want := range map[string]int{"received": 0, "processed": 2, "failed": 0} {
		if code, res := s.get("/v1/transactions?status=" + status); code != http.StatusOK || len(res["items"].([]any)) != want {
			t.Errorf("list status=%s after the upgrade: %d %v, want %d items", status, code, res, want)
		}
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tenants []string
	rows, err := conn.Query(ctx, `SELECT DISTINCT tenant FROM transactions UNION SELECT DISTINCT tenant FROM conversions`)
	if err != nil {
		t.Fatal(err)
	}
	if tenants, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(tenants) != 1 || tenants[0] != "default" {
		t.Errorf("tenants of the old rows: %v (%v), want [default]", tenants, err)
	}
	rows, err = conn.Query(ctx, `SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
		WHERE indrelid IN ('transactions'::regclass, 'conversions'::regclass)`)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var name, def string
		err := r.Scan(&name, &def)
		return name + ": " + def, err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, def := range defs {
		if !strings.Contains(def, "(tenant,") {
			t.Errorf("an index that does not lead with the tenant: %s", def)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var left int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM status_index`).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("status_index still holds %d entries 30 s after every transaction was processed: the sweeper does not run", left)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, key := range []string{"transactions_pkey", "conversions_pkey"} {
		found := false
		for _, def := range defs {
			found = found || (strings.HasPrefix(def, key+":") && strings.Contains(def, "UNIQUE INDEX") && strings.Contains(def, "(tenant, transaction_id)"))
		}
		if !found {
			t.Errorf("%s is not on (tenant, transaction_id): %v", key, defs)
		}
	}
}
