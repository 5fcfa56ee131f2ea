package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/pgkit"
)

// OutboxChannel is the PostgreSQL notification channel on which every
// commit that adds outbox entries is announced.
const OutboxChannel = "txpersister_outbox"

// OutboxEntry is a queue message waiting for the broker's confirm.
type OutboxEntry struct {
	ID            int64
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
			SELECT id, transaction_id, payload, headers, created_at
			FROM outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return pgkit.Classify(err)
		}
		entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (OutboxEntry, error) {
			var e OutboxEntry
			var headers []byte
			if err := row.Scan(&e.ID, &e.TransactionID, &e.Payload, &headers, &e.CreatedAt); err != nil {
				return e, err
			}
			if err := json.Unmarshal(headers, &e.Headers); err != nil {
				return e, fmt.Errorf("outbox entry %d headers: %w", e.ID, err)
			}
			return e, nil
		})
		if err != nil {
			return pgkit.Classify(err)
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
			return pgkit.Classify(err)
		}
		n = len(entries)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("relay outbox: %w", pgkit.Classify(err))
	}
	return n, nil
}

// OutboxStats returns how many entries wait in the outbox and when the
// oldest was written (zero when none waits).
func (s *Store) OutboxStats(ctx context.Context) (backlog int64, oldest time.Time, err error) {
	var at *time.Time
	err = s.pool.QueryRow(ctx, `SELECT count(*), min(created_at) FROM outbox`).Scan(&backlog, &at)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("outbox stats: %w", pgkit.Classify(err))
	}
	if at != nil {
		oldest = *at
	}
	return backlog, oldest, nil
}

// Listener receives the notifications of OutboxChannel on a connection of
// its own.
type Listener struct {
	conn *pgxpool.Conn
}

// ListenOutbox starts listening on OutboxChannel. The caller must Close the
// Listener.
func (s *Store) ListenOutbox(ctx context.Context) (*Listener, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen for outbox entries: %w", pgkit.Classify(err))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+OutboxChannel); err != nil {
		conn.Release()
		return nil, fmt.Errorf("listen for outbox entries: %w", pgkit.Classify(err))
	}
	return &Listener{conn: conn}, nil
}

// Wait blocks until a commit added outbox entries, up to timeout. It returns
// nil on a notification or when the timeout passed, and an error when the
// connection broke; the Listener is then useless and must be closed.
func (l *Listener) Wait(ctx context.Context, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := l.conn.Conn().WaitForNotification(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	if err != nil {
		return pgkit.Classify(err)
	}
	return nil
}

// Close gives the connection back, closing it: a connection that waited
// for notifications may hold an interrupted read. ctx bounds the goodbye to
// PostgreSQL; the connection is closed either way.
func (l *Listener) Close(ctx context.Context) {
	_ = l.conn.Conn().Close(ctx)
	l.conn.Release()
}
