// Package store is txctl's view of the pipeline's PostgreSQL tables: the
// api's transactions and outbox, the converter's conversions. It reads what
// an operator needs to see and, to reprocess failed transactions, writes
// the one change the pipeline allows from outside: a failed outcome
// forgotten and the transaction queued again through the outbox.
package store

import (
	"context"
	"fmt"
	"time"

	sq "github.com/Masterminds/squirrel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/txmodel"
)

// Store reads and reprocesses the pipeline's tables. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
	psql sq.StatementBuilderType
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, psql: sq.StatementBuilder.PlaceholderFormat(sq.Dollar)}
}

// Outbox is the state of the api's outbox.
type Outbox struct {
	// Backlog is how many entries wait for the relay.
	Backlog int64
	// Oldest is when the oldest waiting entry was written; zero when none
	// waits.
	Oldest time.Time
}

// Outbox returns the outbox's backlog and the time of its oldest entry.
// Errors wrap pgkit.ErrUnavailable when PostgreSQL cannot be reached.
func (s *Store) Outbox(ctx context.Context) (Outbox, error) {
	var o Outbox
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `SELECT backlog, oldest FROM outbox_backlog`).Scan(&o.Backlog, &oldest)
	if err != nil {
		return Outbox{}, fmt.Errorf("outbox backlog: %w", pgkit.Classify(err))
	}
	if oldest != nil {
		o.Oldest = oldest.UTC()
	}
	return o, nil
}

// CountByStatus returns how many transactions of tenant (of every
// tenant, when empty) are in each status: received (no outcome yet),
// processed and failed. Every status is present, zero when no transaction
// has it. Errors wrap pgkit.ErrUnavailable when PostgreSQL cannot be
// reached.
func (s *Store) CountByStatus(ctx context.Context, tenant string) (map[txmodel.Status]int64, error) {
	//nolint:rowserrcheck // pgx.ForEachRow below checks rows.Err
	rows, err := s.pool.Query(ctx, `
		SELECT coalesce(c.status, 'received'), count(*)
		FROM accepted_transactions t LEFT JOIN conversion_outcomes c USING (tenant, transaction_id)
		WHERE $1 = '' OR t.tenant = $1
		GROUP BY 1`, tenant)
	if err != nil {
		return nil, fmt.Errorf("count transactions by status: %w", pgkit.Classify(err))
	}
	counts := map[txmodel.Status]int64{txmodel.StatusReceived: 0, txmodel.StatusProcessed: 0, txmodel.StatusFailed: 0}
	var status string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[txmodel.Status(status)] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count transactions by status: %w", pgkit.Classify(err))
	}
	return counts, nil
}

// Filter selects failed transactions of one tenant to reprocess. Only
// transactions whose outcome is failed are ever selected; every set field
// narrows the selection further.
type Filter struct {
	// Tenant owns the transactions (ids are unique per tenant); empty is
	// txmodel.DefaultTenant.
	Tenant string
	// IDs, when not empty, are the transaction ids to consider.
	IDs []string
	// ReasonLike is an SQL LIKE pattern (% and _ are wildcards) the failure
	// reason must match; empty matches every reason.
	ReasonLike string
	// Since and Until bound when the failure was recorded (the
	// conversion's processed_at): from Since inclusive to Until exclusive.
	// A zero time does not bound.
	Since, Until time.Time
}

func (f Filter) tenant() string {
	if f.Tenant == "" {
		return txmodel.DefaultTenant
	}
	return f.Tenant
}

func (f Filter) where() sq.And {
	w := sq.And{sq.Eq{"t.tenant": f.tenant()}, sq.Eq{"c.status": string(txmodel.StatusFailed)}}
	if len(f.IDs) > 0 {
		w = append(w, sq.Eq{"t.transaction_id": f.IDs})
	}
	if f.ReasonLike != "" {
		w = append(w, sq.Like{"c.failure_reason": f.ReasonLike})
	}
	if !f.Since.IsZero() {
		w = append(w, sq.GtOrEq{"c.processed_at": f.Since})
	}
	if !f.Until.IsZero() {
		w = append(w, sq.Lt{"c.processed_at": f.Until})
	}
	return w
}

// DefaultBatchSize is how many transactions Reprocess handles in one
// database transaction when the caller does not say.
const DefaultBatchSize = 500

// Reprocessed is what Reprocess did.
type Reprocessed struct {
	// IDs are the transactions queued again (or, in a dry run, that would
	// be), in id order.
	IDs []string
	// Batches is how many database transactions committed them; zero in a
	// dry run.
	Batches int
}

// Reprocess queues the failed transactions that f selects for conversion
// again. For each batch of up to batchSize (DefaultBatchSize when not
// positive) it deletes their failed outcomes from conversions and writes an
// outbox entry for each, carrying the stored transaction as the queue
// message, in one database transaction; the api's relay then publishes the
// entries. Processed outcomes are never touched, nor transactions that have
// no outcome yet.
//
// It is safe to run twice, and concurrently with itself: a transaction
// queued once is no longer failed, so it is not selected again. With dryRun
// it changes nothing and reports what it would queue.
//
// Errors wrap pgkit.ErrUnavailable when PostgreSQL cannot be reached; the
// batches committed before the error stay committed and are in the result.
func (s *Store) Reprocess(ctx context.Context, f Filter, batchSize int, dryRun bool) (Reprocessed, error) {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	var res Reprocessed
	after := "" // keyset: every id sorts after the empty string
	for {
		var ids []string
		var err error
		if dryRun {
			ids, err = s.failedIDs(ctx, f, after, batchSize)
		} else {
			ids, err = s.reprocessBatch(ctx, f, after, batchSize)
		}
		if err != nil {
			return res, err
		}
		if len(ids) == 0 {
			return res, nil
		}
		res.IDs = append(res.IDs, ids...)
		if !dryRun {
			res.Batches++
		}
		after = ids[len(ids)-1]
	}
}

// selectFailed selects the failed transactions of f with ids after after,
// in id order, at most limit of them.
func (s *Store) selectFailed(f Filter, after string, limit int) sq.SelectBuilder {
	return s.psql.
		Select("t.transaction_id", "t.user_id", "t.amount::text", "t.currency", "t.occurred_at", "t.received_at").
		From("accepted_transactions t").
		Join("conversion_outcomes c USING (tenant, transaction_id)").
		Where(f.where()).
		Where(sq.Gt{"t.transaction_id": after}).
		OrderBy("t.transaction_id").
		Limit(uint64(limit)) //nolint:gosec // G115: a batch size, at least 1 (Reprocess)
}

func (s *Store) failedIDs(ctx context.Context, f Filter, after string, limit int) ([]string, error) {
	sql, args, err := s.selectFailed(f, after, limit).ToSql()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("select failed transactions: %w", pgkit.Classify(err))
	}
	stored, err := pgx.CollectRows(rows, scanStored)
	if err != nil {
		return nil, fmt.Errorf("select failed transactions: %w", pgkit.Classify(err))
	}
	ids := make([]string, len(stored))
	for i, st := range stored {
		ids[i] = st.tx.ID
	}
	return ids, nil
}

// reprocessBatch queues one batch in one database transaction and returns
// the ids it queued.
func (s *Store) reprocessBatch(ctx context.Context, f Filter, after string, limit int) ([]string, error) {
	// Locking the outcomes makes a concurrent run wait, then see them gone
	// (PostgreSQL re-checks a locked row once its lock is released), so each
	// transaction is queued once however many runs race.
	sql, args, err := s.selectFailed(f, after, limit).Suffix("FOR UPDATE OF c").ToSql()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	var queued []string
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("select failed transactions: %w", err)
		}
		stored, err := pgx.CollectRows(rows, scanStored)
		if err != nil {
			return fmt.Errorf("select failed transactions: %w", err)
		}
		if len(stored) == 0 {
			return nil
		}
		ids := make([]string, len(stored))
		payloads := make([][]byte, len(stored))
		for i, st := range stored {
			ids[i] = st.tx.ID
			if payloads[i], err = txmodel.EncodeMessage(txmodel.Envelope{Tenant: f.tenant(), Transaction: st.tx, ReceivedAt: st.receivedAt}); err != nil {
				return err
			}
		}
		var forgotten int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM forget_failed_outcomes($1, $2)`, f.tenant(), ids).Scan(&forgotten); err != nil {
			return fmt.Errorf("forget failed outcomes: %w", err)
		}
		if forgotten != len(ids) {
			// Cannot happen while the rows are locked; refuse rather than
			// queue a transaction whose outcome stays recorded.
			return fmt.Errorf("forgot %d failed outcomes of %d locked", forgotten, len(ids))
		}
		headers := make([]string, len(ids))
		for i := range headers {
			headers[i] = "{}"
		}
		if _, err := tx.Exec(ctx, `SELECT enqueue_transactions($1, $2, $3, $4::jsonb[])`, f.tenant(), ids, payloads, headers); err != nil {
			return fmt.Errorf("write outbox entries: %w", err)
		}
		queued = ids
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reprocess %d failed transactions after %q: %w", limit, after, pgkit.Classify(err))
	}
	return queued, nil
}

// stored is a transaction as the api stored it.
type stored struct {
	tx         txmodel.Transaction
	receivedAt time.Time
}

func scanStored(row pgx.CollectableRow) (stored, error) {
	var st stored
	var amount, currency string
	if err := row.Scan(&st.tx.ID, &st.tx.UserID, &amount, &currency, &st.tx.Timestamp, &st.receivedAt); err != nil {
		return stored{}, err
	}
	c, err := txmodel.LookupCurrency(currency)
	if err != nil {
		return stored{}, fmt.Errorf("transaction %s: %w", st.tx.ID, err)
	}
	d, err := txmodel.ParseDecimal(amount)
	if err != nil {
		return stored{}, fmt.Errorf("transaction %s amount %q: %w", st.tx.ID, amount, err)
	}
	st.tx.Amount = txmodel.Money{Amount: d, Currency: c}
	st.tx.Timestamp = st.tx.Timestamp.UTC()
	st.receivedAt = st.receivedAt.UTC()
	return st, nil
}
