package store

import (
	"context"
	"fmt"
)

// sweepSQL settles up to $1 received entries of status_index whose
// transaction has an outcome: deletes the processed, marks the failed.
// SKIP LOCKED lets the apis sweep side by side, each its own entries.
const sweepSQL = `
WITH settled AS (
    SELECT s.tenant, s.transaction_id, c.status
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
SELECT (SELECT count(*) FROM processed), (SELECT count(*) FROM failed)`

// Sweep settles up to limit entries of status_index (schema 00007) whose
// transactions have an outcome, and returns how many were processed and
// how many failed. The listings are exact without it; it keeps the index
// to the transactions that are not processed.
func (s *Store) Sweep(ctx context.Context, limit int) (processed, failed int, err error) {
	if err := s.pool.QueryRow(ctx, sweepSQL, limit).Scan(&processed, &failed); err != nil {
		return 0, 0, fmt.Errorf("sweep the status index: %w", classify(err))
	}
	return processed, failed, nil
}
