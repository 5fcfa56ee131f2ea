package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/webhooks"
)

// sweepSQL settles up to $1 received entries of status_index whose
// transaction has an outcome: deletes the processed, marks the failed.
// SKIP LOCKED lets the apis sweep side by side, each its own entries. It
// returns a row for each entry settled: its outcome, and the whole record
// (recordColumns) when the tenant has an endpoint for the outcome's event,
// read in the same statement, so the same snapshot, as the settling.
const sweepSQL = `
WITH settled AS (
    SELECT s.tenant, s.transaction_id, c.status, c.converted_amount, c.target_currency, c.exchange_rate, c.rate_date,
        c.processed_at, c.failure_reason, c.rate_provider, c.rate_rule, c.rate_base, c.rate_quotes
    FROM status_index s JOIN conversion_outcomes c USING (tenant, transaction_id)
    WHERE s.status = 'received'
    LIMIT $1
    FOR UPDATE OF s SKIP LOCKED
), processed AS (
    DELETE FROM status_index s USING settled d
    WHERE d.status = 'processed' AND s.tenant = d.tenant AND s.transaction_id = d.transaction_id
    RETURNING 1
), failed AS (
    UPDATE status_index s SET status = 'failed' FROM settled d
    WHERE d.status = 'failed' AND s.tenant = d.tenant AND s.transaction_id = d.transaction_id
    RETURNING 1
)
SELECT d.status,
    t.tenant, t.transaction_id, t.user_id, t.amount::text, t.currency, t.occurred_at, t.received_at,
    d.status, d.converted_amount::text, d.target_currency, d.exchange_rate::text, d.rate_date, d.processed_at, d.failure_reason,
    d.rate_provider, d.rate_rule, d.rate_base, d.rate_quotes
FROM settled d
LEFT JOIN transactions t ON t.tenant = d.tenant AND t.transaction_id = d.transaction_id
    AND EXISTS (SELECT 1 FROM webhook_endpoints e
                WHERE e.tenant = d.tenant AND e.deleted_at IS NULL AND 'transaction.' || d.status = ANY (e.events))`

// insertMessagesSQL records messages ($1…: their columns as arrays) and
// a delivery of each to every endpoint of its tenant subscribed to its
// event: pending, due at once; failed already for a disabled endpoint, so
// that a replay can send it.
const insertMessagesSQL = `
WITH m AS (
    INSERT INTO webhook_messages (tenant, message_id, event_type, transaction_id, occurred_at, body)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bytea[])
    RETURNING tenant, message_id, event_type, occurred_at
)
INSERT INTO webhook_deliveries (tenant, endpoint_id, message_id, state, next_attempt_at, occurred_at, last_error)
SELECT m.tenant, e.endpoint_id, m.message_id,
    CASE WHEN e.disabled_at IS NULL THEN 'pending' ELSE 'failed' END,
    $7, m.occurred_at,
    CASE WHEN e.disabled_at IS NULL THEN NULL ELSE 'the endpoint is disabled' END
FROM m JOIN webhook_endpoints e ON e.tenant = m.tenant AND e.deleted_at IS NULL AND m.event_type = ANY (e.events)`

// Sweep settles up to limit entries of status_index (schema 00007) whose
// transactions have an outcome, and returns how many were processed and
// how many failed. The listings are exact without it; it keeps the index
// to the transactions that are not processed. In the same database
// transaction it records the message of each outcome settled whose
// tenant has an endpoint for it (schema 00009): the entry is settled once
// per outcome, so the message is recorded once, or not at all when the
// sweep fails and its entries wait for the next.
func (s *Store) Sweep(ctx context.Context, limit int) (processed, failed, messages int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sweepSQL, limit) //nolint:rowserrcheck // pgx.ForEachRow checks rows.Err
		if err != nil {
			return err
		}
		var news []webhooks.Message
		var status string
		var rr recordRow
		_, err = pgx.ForEachRow(rows, append([]any{&status}, rr.dests()...), func() error {
			switch txmodel.Status(status) {
			case txmodel.StatusProcessed:
				processed++
			case txmodel.StatusFailed:
				failed++
			}
			if rr.id == nil { // nobody to tell
				return nil
			}
			rec, err := rr.record()
			if err != nil {
				return err
			}
			m, ok, err := webhooks.NewMessage(rec)
			if err != nil || !ok {
				return err
			}
			news = append(news, m)
			return nil
		})
		if err != nil || len(news) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, insertMessagesSQL,
			column(news, func(m webhooks.Message) string { return m.Tenant }),
			column(news, func(m webhooks.Message) string { return m.ID }),
			column(news, func(m webhooks.Message) string { return m.EventType }),
			column(news, func(m webhooks.Message) string { return m.TransactionID }),
			column(news, func(m webhooks.Message) time.Time { return m.OccurredAt }),
			column(news, func(m webhooks.Message) []byte { return m.Body }),
			time.Now())
		messages = len(news)
		return err
	})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("sweep the status index: %w", classify(err))
	}
	return processed, failed, messages, nil
}

// column is one field of every element of s: a column for unnest.
func column[E, V any](s []E, field func(E) V) []V {
	out := make([]V, len(s))
	for i, e := range s {
		out[i] = field(e)
	}
	return out
}
