package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// OutboxEntry is a queue message waiting for the broker's confirm.
type OutboxEntry struct {
	ID            int64
	Tenant        string
	TransactionID string
	Payload       []byte
	Headers       map[string]string
	CreatedAt     time.Time
}

// RelayOutbox locks up to limit outbox entries that no other relay holds
// (FOR UPDATE SKIP LOCKED, so several api instances share the work), oldest
// first, hands them to publish, and deletes them if publish returns nil, all
// in one database transaction. When publish fails nothing is deleted and the
// entries are offered again later: a message may be published twice, never
// lost. It returns how many entries were relayed.
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []OutboxEntry) error) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, tenant, transaction_id, payload, headers, created_at
			FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return classify(err)
		}
		entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OutboxEntry, error) {
			var e OutboxEntry
			var headers []byte
			if err := row.Scan(&e.ID, &e.Tenant, &e.TransactionID, &e.Payload, &headers, &e.CreatedAt); err != nil {
				return e, err
			}
			if err := json.Unmarshal(headers, &e.Headers); err != nil {
				return e, fmt.Errorf("outbox entry %d headers: %w", e.ID, err)
			}
			return e, nil
		})
		if err != nil {
			return classify(err)
		}
		if len(entries) == 0 {
			return nil
		}
		if err := publish(ctx, entries); err != nil {
			return fmt.Errorf("publish %d outbox entries: %w", len(entries), err)
		}
		ids := make([]int64, len(entries))
		for i, e := range entries {
			ids[i] = e.ID
		}
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids); err != nil {
			return classify(err)
		}
		n = len(entries)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", classify(err))
	}
	return n, nil
}

// OutboxStats returns how many entries wait in the outbox and when the
// oldest was written (zero when none waits).
func (s *Store) OutboxStats(ctx context.Context) (backlog int64, oldest time.Time, err error) {
	var at *time.Time
	err = s.pool.QueryRow(ctx, `SELECT count(*), min(created_at) FROM outbox`).Scan(&backlog, &at)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats: %w", classify(err))
	}
	if at != nil {
		oldest = *at
	}
	return backlog, oldest, nil
}
