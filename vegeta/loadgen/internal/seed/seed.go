// Package seed fills a database migrated to the services' schema with
// stored transactions and their outcomes, quickly, for measuring how the
// pipeline behaves as its tables grow (`make seed`, vegeta/growth.sh). It
// writes the real tables with generate_series, in chunks of one commit
// each; a second run appends after the first.
//
// The data is synthetic and says so: ids seed-0000000001 onwards, users
// user-0 to user-(Users-1), five currencies in turn, one transaction every
// Spacing of received_at from Origin, outcomes from the provider "seed" at
// fixed quotes, every FailedEvery-th transaction failed, and the last
// Pending of a run without an outcome (received).
package seed

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config is what to seed.
type Config struct {
	Rows        int64         // transactions to add
	Tenant      string        // whose they are
	Users       int           // distinct user ids, at least 1
	FailedEvery int64         // every FailedEvery-th transaction failed; 0 for none
	Pending     int64         // the newest Pending of this run have no outcome
	Origin      time.Time     // received_at of seed-0000000001
	Spacing     time.Duration // between consecutive received_at, at least 1 µs
	Chunk       int64         // transactions a commit, at least 1
	// Progress, when set, is called after each chunk with the
	// transactions added so far.
	Progress func(done int64)

	keepTriggers bool // tests: seed as a role that cannot skip triggers
}

// Defaults are the flags' defaults: 100,000 users, one failure in 1,000,
// and 50 million transactions spanning about 289 days.
var Defaults = Config{
	Tenant: "default", Users: 100_000, FailedEvery: 1000,
	Origin: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Spacing: 500 * time.Millisecond, Chunk: 500_000,
}

// Result is what a run added.
type Result struct {
	First, Last int64 // the numbers of its first and last seed ids
	Took        time.Duration
}

const idPrefix = "seed-"

// Run adds c.Rows transactions after the tenant's last seeded one, and
// their outcomes.
func Run(ctx context.Context, conn *pgx.Conn, c Config) (Result, error) {
	if err := c.check(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	// A seeded database is rebuilt, not recovered: its commits need not
	// wait for the disk.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = off"); err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	last, err := lastSeeded(ctx, conn, c.Tenant)
	if err != nil {
		return Result{}, err
	}
	var statusIndex bool // the api's schema 00007 and later
	if err := conn.QueryRow(ctx, `SELECT to_regclass('status_index') IS NOT NULL`).Scan(&statusIndex); err != nil {
		return Result{}, fmt.Errorf("seed: %w", err)
	}
	// A superuser seeds without the api's trigger (replica mode skips
	// triggers) and writes the status index's few entries itself; any
	// other role lets the trigger add every transaction and settles them.
	mode := settleAfter
	if !statusIndex {
		mode = noIndex
	} else if !c.keepTriggers {
		if _, err := conn.Exec(ctx, "SET session_replication_role = replica"); err == nil {
			mode = writeIndex
		}
	}
	first, end := last+1, last+c.Rows
	converted := end - c.Pending // the last with an outcome
	for from := first; from <= end; from += c.Chunk {
		to := min(from+c.Chunk-1, end)
		if err := chunk(ctx, conn, c, from, to, min(to, converted), mode); err != nil {
			return Result{}, err
		}
		if c.Progress != nil {
			c.Progress(to - first + 1)
		}
	}
	if _, err := conn.Exec(ctx, "ANALYZE"); err != nil {
		return Result{}, fmt.Errorf("seed: analyze: %w", err)
	}
	return Result{First: first, Last: end, Took: time.Since(start)}, nil
}

func (c Config) check() error {
	var problems []string
	if c.Rows < 1 {
		problems = append(problems, "rows must be at least 1")
	}
	if c.Tenant == "" {
		problems = append(problems, "no tenant")
	}
	if c.Users < 1 {
		problems = append(problems, "users must be at least 1")
	}
	if c.FailedEvery < 0 || c.Pending < 0 || c.Pending > c.Rows {
		problems = append(problems, "failed-every must be 0 or more, pending from 0 to rows")
	}
	if c.Spacing < time.Microsecond || c.Chunk < 1 {
		problems = append(problems, "spacing must be at least 1µs and chunk at least 1")
	}
	if len(problems) > 0 {
		return errors.New("seed: " + strings.Join(problems, "; "))
	}
	return nil
}

// lastSeeded returns the number of the tenant's last seed id, or 0. The
// ids are zero-padded, so the last in the key's order is the highest.
func lastSeeded(ctx context.Context, conn *pgx.Conn, tenant string) (int64, error) {
	var id string
	err := conn.QueryRow(ctx, `SELECT transaction_id FROM transactions
		WHERE tenant = $1 AND transaction_id >= $2 AND transaction_id < $3
		ORDER BY transaction_id DESC LIMIT 1`, tenant, idPrefix, "seed.").Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("seed: the last seeded id: %w", err)
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(id, idPrefix), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("seed: the last seeded id %q is not seed- and a number", id)
	}
	return n, nil
}

// The columns of seed number i, as SQL over generate_series's i, with
// the named arguments of chunk.
const (
	idOf       = `'seed-' || lpad(i::text, 10, '0')`
	userOf     = `'user-' || (i % @users::int)`
	currencyOf = `(ARRAY['USD','GBP','JPY','CHF','EUR'])[i % 5 + 1]`
	// JPY has no minor unit; the others have two.
	amountOf     = `CASE WHEN i % 5 = 2 THEN (i % 99999 + 1)::numeric ELSE (i % 99999 + 1)::numeric / 100 END`
	quoteOf      = `(ARRAY[1.0850, 0.8420, 162.45, 0.9620, 1]::numeric[])[i % 5 + 1]`
	receivedAtOf = `@origin::timestamptz + (i - 1) * @spacing::bigint * interval '1 microsecond'`
)

var insertTransactions = `INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at)
SELECT @tenant, ` + idOf + `, ` + userOf + `, ` + amountOf + `, ` + currencyOf + `,
       ` + receivedAtOf + ` - interval '1 minute', ` + receivedAtOf + `
FROM generate_series(@from::bigint, @to::bigint) AS i`

// The outcomes: rounded half away from zero, which the converter's
// half-even rounding differs from only on an exact half; the provider
// "seed" marks them as synthetic.
var insertConversions = `INSERT INTO conversions (tenant, transaction_id, status, converted_amount, target_currency, exchange_rate,
       rate_date, failure_reason, processed_at, rate_provider, rate_rule, rate_base, rate_quotes)
SELECT @tenant, ` + idOf + `, CASE WHEN f THEN 'failed' ELSE 'processed' END,
       CASE WHEN f THEN NULL ELSE round(` + amountOf + ` / ` + quoteOf + `, 2) END,
       CASE WHEN f THEN NULL ELSE 'EUR' END,
       CASE WHEN f THEN NULL ELSE 1 / ` + quoteOf + ` END,
       CASE WHEN f THEN NULL ELSE (` + receivedAtOf + ` - interval '1 minute')::date END,
       CASE WHEN f THEN 'seed: a synthetic failure' END,
       ` + receivedAtOf + ` + interval '50 milliseconds',
       CASE WHEN f THEN NULL ELSE 'seed' END, CASE WHEN f THEN NULL ELSE 'day' END, CASE WHEN f THEN NULL ELSE 'EUR' END,
       CASE WHEN f THEN NULL ELSE jsonb_build_object(` + currencyOf + `, (` + quoteOf + `)::text) END
FROM generate_series(@from::bigint, @to::bigint) AS i, LATERAL (SELECT @failed_every::bigint > 0 AND i % @failed_every::bigint = 0 AS f) AS failed`

// settleStatusIndex does what the api's sweeper would have done long ago
// for the seeded outcomes: the trigger of the api's schema 00007 added
// every seeded transaction to status_index as received; the processed
// ones leave it, the failed ones are marked. Which ones failed follows
// from their numbers, so the statements walk the key's range and join
// nothing (a join would be planned on the statistics of a table that
// grew inside this commit).
const (
	seededRange   = `tenant = @tenant AND transaction_id BETWEEN 'seed-' || lpad((@from::bigint)::text, 10, '0') AND 'seed-' || lpad((@to::bigint)::text, 10, '0')`
	seededFailed  = `(@failed_every::bigint > 0 AND substr(transaction_id, 6)::bigint % @failed_every::bigint = 0)`
	deleteSettled = `DELETE FROM status_index WHERE ` + seededRange + ` AND NOT ` + seededFailed
	markFailedSQL = `UPDATE status_index SET status = 'failed' WHERE ` + seededRange + ` AND ` + seededFailed
)

// writeIndexSQL writes the status index's entries of the seeded
// transactions from to to: the failed, and those after converted.
var writeIndexSQL = `INSERT INTO status_index (tenant, transaction_id, user_id, received_at, status)
SELECT @tenant, ` + idOf + `, ` + userOf + `, ` + receivedAtOf + `,
       CASE WHEN i > @converted::bigint THEN 'received' ELSE 'failed' END
FROM generate_series(@from::bigint, @to::bigint) AS i
WHERE i > @converted::bigint OR (@failed_every::bigint > 0 AND i % @failed_every::bigint = 0)`

// indexMode is how a run keeps the api's status index.
type indexMode int

const (
	noIndex     indexMode = iota // an api schema before 00007
	settleAfter                  // the trigger adds each; the chunk settles them
	writeIndex                   // the trigger skipped; the chunk writes the entries
)

// chunk adds the transactions from to to, and the outcomes of those up to
// converted, in one commit, and keeps the status index as mode says.
func chunk(ctx context.Context, conn *pgx.Conn, c Config, from, to, converted int64, mode indexMode) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	args := pgx.NamedArgs{
		"tenant": c.Tenant, "users": c.Users, "origin": c.Origin, "spacing": c.Spacing.Microseconds(),
		"from": from, "to": to, "failed_every": c.FailedEvery, "converted": converted,
	}
	if _, err := tx.Exec(ctx, insertTransactions, args); err != nil {
		return fmt.Errorf("seed: transactions %d to %d: %w", from, to, err)
	}
	if converted >= from {
		args["to"] = converted
		if _, err := tx.Exec(ctx, insertConversions, args); err != nil {
			return fmt.Errorf("seed: outcomes %d to %d: %w", from, converted, err)
		}
		for _, sql := range []string{deleteSettled, markFailedSQL} {
			if mode != settleAfter {
				break
			}
			if _, err := tx.Exec(ctx, sql, args); err != nil {
				return fmt.Errorf("seed: status index %d to %d: %w", from, converted, err)
			}
		}
	}
	if mode == writeIndex {
		args["to"] = to
		if _, err := tx.Exec(ctx, writeIndexSQL, args); err != nil {
			return fmt.Errorf("seed: status index %d to %d: %w", from, to, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("seed: commit %d to %d: %w", from, to, err)
	}
	return nil
}
