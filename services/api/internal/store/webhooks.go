package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/services/api/internal/webhooks"
)

// endpointColumns are the columns scanEndpoint reads, in its order.
const endpointColumns = `tenant, endpoint_id, url, events, secret, previous_secret, previous_secret_until,
    created_at, failing_since, disabled_at, disabled_reason`

func scanEndpoint(row pgx.CollectableRow) (webhooks.Endpoint, error) {
	var (
		e                               webhooks.Endpoint
		previous, reason                *string
		previousUntil, failing, disable *time.Time
	)
	if err := row.Scan(&e.Tenant, &e.ID, &e.URL, &e.Events, &e.Secret, &previous, &previousUntil,
		&e.CreatedAt, &failing, &disable, &reason); err != nil {
		return webhooks.Endpoint{}, err
	}
	e.PreviousSecret, e.DisabledReason = deref(previous), deref(reason)
	e.CreatedAt = e.CreatedAt.UTC()
	e.PreviousSecretUntil, e.FailingSince, e.DisabledAt = utcOrZero(previousUntil), utcOrZero(failing), utcOrZero(disable)
	return e, nil
}

func utcOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateEndpoint stores e unless its tenant has max endpoints already
// (webhooks.ErrLimit). A lock of the tenant's makes two creations at
// once count each other.
func (s *Store) CreateEndpoint(ctx context.Context, e webhooks.Endpoint, max int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('webhook_endpoints:' || $1, 0))`, e.Tenant); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
INSERT INTO webhook_endpoints (tenant, endpoint_id, url, events, secret, created_at)
SELECT $1, $2, $3, $4, $5, $6
WHERE (SELECT count(*) FROM webhook_endpoints WHERE tenant = $1 AND deleted_at IS NULL) < $7`,
			e.Tenant, e.ID, e.URL, e.Events, e.Secret, e.CreatedAt, max)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("tenant %s has %d endpoints: %w", e.Tenant, max, webhooks.ErrLimit)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create webhook endpoint: %w", classify(err))
	}
	return nil
}

// Endpoints returns the tenant's endpoints, oldest first.
func (s *Store) Endpoints(ctx context.Context, tenant string) ([]webhooks.Endpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE tenant = $1 AND deleted_at IS NULL ORDER BY created_at, endpoint_id`, tenant)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", classify(err))
	}
	eps, err := pgx.CollectRows(rows, scanEndpoint)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", classify(err))
	}
	return eps, nil
}

// Endpoint returns one endpoint of tenant, or webhooks.ErrNotFound.
func (s *Store) Endpoint(ctx context.Context, tenant, id string) (webhooks.Endpoint, error) {
	return s.endpointQuery(ctx, "get", `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE tenant = $1 AND endpoint_id = $2 AND deleted_at IS NULL`, tenant, id)
}

func (s *Store) endpointQuery(ctx context.Context, what, sql string, args ...any) (webhooks.Endpoint, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("%s webhook endpoint: %w", what, classify(err))
	}
	e, err := pgx.CollectExactlyOneRow(rows, scanEndpoint)
	if errors.Is(err, pgx.ErrNoRows) {
		return webhooks.Endpoint{}, fmt.Errorf("%s webhook endpoint %s: %w", what, args[1], webhooks.ErrNotFound)
	}
	if err != nil {
		return webhooks.Endpoint{}, fmt.Errorf("%s webhook endpoint: %w", what, classify(err))
	}
	return e, nil
}

// DeleteEndpoint removes an endpoint, or returns webhooks.ErrNotFound:
// it is marked deleted, gone for every read and send at once, and Prune
// deletes it with its deliveries and their attempts, in rounds.
func (s *Store) DeleteEndpoint(ctx context.Context, tenant, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_endpoints SET deleted_at = now() WHERE tenant = $1 AND endpoint_id = $2 AND deleted_at IS NULL`, tenant, id)
	if err != nil {
		return fmt.Errorf("delete webhook endpoint: %w", classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, webhooks.ErrNotFound)
	}
	return nil
}

// RotateSecret makes secret the endpoint's, the one it had valid until
// previousUntil.
func (s *Store) RotateSecret(ctx context.Context, tenant, id, secret string, previousUntil time.Time) (webhooks.Endpoint, error) {
	return s.endpointQuery(ctx, "rotate the secret of", `
UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $4, secret = $3
WHERE tenant = $1 AND endpoint_id = $2 AND deleted_at IS NULL
RETURNING `+endpointColumns, tenant, id, secret, previousUntil)
}

// Attempts returns the endpoint's latest attempts, newest first, or
// webhooks.ErrNotFound.
func (s *Store) Attempts(ctx context.Context, tenant, id string, limit int) ([]webhooks.Attempt, error) {
	if _, err := s.Endpoint(ctx, tenant, id); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
SELECT a.message_id, m.event_type, m.transaction_id, a.attempt, a.started_at, a.duration, a.status_code, a.error, d.state
FROM webhook_attempts a
JOIN webhook_deliveries d USING (tenant, endpoint_id, message_id)
JOIN webhook_messages m USING (tenant, message_id)
WHERE a.tenant = $1 AND a.endpoint_id = $2
ORDER BY a.started_at DESC, a.message_id, a.attempt DESC
LIMIT $3`, tenant, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", classify(err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhooks.Attempt, error) {
		var (
			a      webhooks.Attempt
			status *int32
			msg    *string
		)
		if err := row.Scan(&a.MessageID, &a.EventType, &a.TransactionID, &a.Attempt, &a.StartedAt, &a.Duration, &status, &msg, &a.State); err != nil {
			return webhooks.Attempt{}, err
		}
		a.StartedAt = a.StartedAt.UTC()
		if status != nil {
			a.StatusCode = int(*status)
		}
		a.Error = deref(msg)
		return a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", classify(err))
	}
	return out, nil
}

// Replay makes every delivery to the endpoint of a message that occurred
// in [from, to) pending and due at now, from the start of the retry
// schedule, and enables the endpoint if it was disabled. It returns how
// many, or webhooks.ErrNotFound.
func (s *Store) Replay(ctx context.Context, tenant, id string, from, to, now time.Time) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
UPDATE webhook_endpoints SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL
WHERE tenant = $1 AND endpoint_id = $2 AND deleted_at IS NULL`, tenant, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("replay to webhook endpoint %s: %w", id, webhooks.ErrNotFound)
		}
		tag, err = tx.Exec(ctx, `
UPDATE webhook_deliveries SET state = 'pending', tries = 0, next_attempt_at = $5
WHERE tenant = $1 AND endpoint_id = $2 AND occurred_at >= $3 AND occurred_at < $4`, tenant, id, from, to, now)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("replay webhooks: %w", classify(err))
	}
	return n, nil
}

// claimSQL leases up to $3 due deliveries until $1 + $2 and counts an
// attempt for each. SKIP LOCKED lets senders claim side by side, each
// its own.
const claimSQL = `
WITH due AS (
    -- One table, in the order of its partial index: a claim reads what it
    -- takes, however many are pending (a join here let the planner sort
    -- every pending delivery of an endpoint for each claim).
    SELECT tenant, endpoint_id, message_id FROM webhook_deliveries
    WHERE state = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, tries = d.tries + 1, next_attempt_at = $1::timestamptz + $2::interval
FROM due, webhook_endpoints e, webhook_messages m
WHERE d.tenant = due.tenant AND d.endpoint_id = due.endpoint_id AND d.message_id = due.message_id
  AND e.tenant = d.tenant AND e.endpoint_id = d.endpoint_id AND e.deleted_at IS NULL -- a deleted one's wait for the pruner
  AND m.tenant = d.tenant AND m.message_id = d.message_id
RETURNING d.tenant, d.endpoint_id, d.message_id, e.url, e.secret, e.previous_secret, e.previous_secret_until,
    m.body, d.attempts, d.tries, d.occurred_at`

// Claim leases up to limit deliveries due at now until now+lease.
func (s *Store) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]webhooks.Due, error) {
	rows, err := s.pool.Query(ctx, claimSQL, now, lease, limit)
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", classify(err))
	}
	due, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (webhooks.Due, error) {
		var (
			d             webhooks.Due
			secret        string
			previous      *string
			previousUntil *time.Time
		)
		if err := row.Scan(&d.Tenant, &d.EndpointID, &d.MessageID, &d.URL, &secret, &previous, &previousUntil,
			&d.Body, &d.Attempt, &d.Try, &d.OccurredAt); err != nil {
			return webhooks.Due{}, err
		}
		e := webhooks.Endpoint{Secret: secret, PreviousSecret: deref(previous), PreviousSecretUntil: utcOrZero(previousUntil)}
		d.Secrets = e.Secrets(now)
		return d, nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", classify(err))
	}
	return due, nil
}

// recordAttemptsSQL keeps the attempts ($1…: their columns as arrays) of
// deliveries not deleted meanwhile.
const recordAttemptsSQL = `
INSERT INTO webhook_attempts (tenant, endpoint_id, message_id, attempt, started_at, duration, status_code, error)
SELECT r.tenant, r.endpoint_id, r.message_id, r.attempt, r.started_at, r.secs * interval '1 second', r.status_code, r.error
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::float8[], $7::int[], $8::text[])
    AS r(tenant, endpoint_id, message_id, attempt, started_at, secs, status_code, error)
WHERE EXISTS (SELECT 1 FROM webhook_deliveries d
              WHERE d.tenant = r.tenant AND d.endpoint_id = r.endpoint_id AND d.message_id = r.message_id)
ON CONFLICT DO NOTHING`

// recordDeliveriesSQL sets each delivery's new state, unless another
// sender has claimed it since (attempts moved on).
const recordDeliveriesSQL = `
UPDATE webhook_deliveries d
SET state = r.state, next_attempt_at = coalesce(r.next, d.next_attempt_at), last_attempt_at = r.started_at, last_error = r.error
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::text[])
    AS r(tenant, endpoint_id, message_id, attempt, state, next, started_at, error)
WHERE d.tenant = r.tenant AND d.endpoint_id = r.endpoint_id AND d.message_id = r.message_id AND d.attempts = r.attempt`

// Record stores attempts and their deliveries' new states, in one
// transaction; a delivery another sender has claimed since (its lease ran
// out) keeps that sender's state, and only the attempt is kept. Then each
// endpoint's health: a delivery clears its failure; a failed attempt after
// the endpoint's last success marks it failing since the first such, and
// an endpoint failing for disableAfter is disabled, its pending deliveries
// failed.
func (s *Store) Record(ctx context.Context, rs []webhooks.Result, disableAfter time.Duration) error {
	n := len(rs)
	tenants, endpoints, messages := make([]string, n), make([]string, n), make([]string, n)
	attempts, codes := make([]int32, n), make([]*int32, n)
	started, secs := make([]time.Time, n), make([]float64, n)
	states, errs, next := make([]string, n), make([]*string, n), make([]*time.Time, n)
	health := map[[2]string]*endpointHealth{}
	for i, r := range rs {
		d := r.Due
		tenants[i], endpoints[i], messages[i], attempts[i] = d.Tenant, d.EndpointID, d.MessageID, int32(d.Attempt) //nolint:gosec // attempts are few
		if r.StatusCode != 0 {
			c := int32(r.StatusCode) //nolint:gosec // an HTTP status
			codes[i] = &c
		}
		started[i], secs[i], states[i], errs[i], next[i] = r.StartedAt, r.Duration.Seconds(), r.State, nullString(r.Err), nullTime(r.Next)
		k := [2]string{d.Tenant, d.EndpointID}
		if health[k] == nil {
			health[k] = &endpointHealth{}
		}
		health[k].add(r)
	}
	keys := slices.SortedFunc(maps.Keys(health), func(a, b [2]string) int { // one order: no deadlock between senders
		return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1]))
	})
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, recordAttemptsSQL, tenants, endpoints, messages, attempts, started, secs, codes, errs); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, recordDeliveriesSQL, tenants, endpoints, messages, attempts, states, next, started, errs); err != nil {
			return err
		}
		for _, k := range keys {
			if err := health[k].record(ctx, tx, k[0], k[1], disableAfter); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record %d webhook attempts: %w", n, classify(err))
	}
	return nil
}

// endpointHealth is what a batch of attempts says of one endpoint: its
// latest success, and the failures after it.
type endpointHealth struct {
	succeeded           time.Time // the latest success's start; zero: none
	firstFail, lastFail time.Time // of the failures after it
	lastErr             string
}

func (h *endpointHealth) add(r webhooks.Result) {
	if r.Err == "" {
		if r.StartedAt.After(h.succeeded) {
			h.succeeded = r.StartedAt
			if !h.firstFail.After(h.succeeded) {
				h.firstFail, h.lastFail, h.lastErr = time.Time{}, time.Time{}, ""
			}
		}
		return
	}
	if !h.succeeded.IsZero() && !r.StartedAt.After(h.succeeded) {
		return // before the success: no longer news
	}
	if h.firstFail.IsZero() || r.StartedAt.Before(h.firstFail) {
		h.firstFail = r.StartedAt
	}
	if !r.StartedAt.Before(h.lastFail) {
		h.lastFail, h.lastErr = r.StartedAt, r.Err
	}
}

func (h *endpointHealth) record(ctx context.Context, tx pgx.Tx, tenant, id string, disableAfter time.Duration) error {
	if !h.succeeded.IsZero() {
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE tenant = $1 AND endpoint_id = $2 AND failing_since IS NOT NULL`,
			tenant, id); err != nil {
			return err
		}
	}
	if h.firstFail.IsZero() {
		return nil
	}
	var failingSince time.Time
	var disabled bool
	err := tx.QueryRow(ctx, `
UPDATE webhook_endpoints SET failing_since = LEAST(coalesce(failing_since, $3), $3)
WHERE tenant = $1 AND endpoint_id = $2
RETURNING failing_since, disabled_at IS NOT NULL`, tenant, id, h.firstFail).Scan(&failingSince, &disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // deleted meanwhile
	}
	if err != nil || disabled || h.lastFail.Sub(failingSince) < disableAfter {
		return err
	}
	reason := fmt.Sprintf("every delivery failed from %s to %s; the last: %s",
		failingSince.UTC().Format(time.RFC3339), h.lastFail.UTC().Format(time.RFC3339), h.lastErr)
	if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET disabled_at = $3, disabled_reason = $4 WHERE tenant = $1 AND endpoint_id = $2`,
		tenant, id, h.lastFail, reason); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
UPDATE webhook_deliveries SET state = 'failed', last_error = 'the endpoint is disabled'
WHERE tenant = $1 AND endpoint_id = $2 AND state = 'pending'`, tenant, id)
	return err
}

// Backlog returns how many deliveries are pending, when the oldest of
// their messages occurred, and since when the longest-due one has been
// due (zeros when none is).
func (s *Store) Backlog(ctx context.Context, now time.Time) (webhooks.Backlog, error) {
	var (
		b           webhooks.Backlog
		oldest, due *time.Time
	)
	if err := s.pool.QueryRow(ctx, `
SELECT count(*), min(d.occurred_at), min(d.next_attempt_at) FILTER (WHERE d.next_attempt_at <= $1)
FROM webhook_deliveries d JOIN webhook_endpoints e USING (tenant, endpoint_id)
WHERE d.state = 'pending' AND e.deleted_at IS NULL`, now).Scan(&b.Pending, &oldest, &due); err != nil {
		return webhooks.Backlog{}, fmt.Errorf("webhook backlog: %w", classify(err))
	}
	b.Oldest, b.OldestDue = utcOrZero(oldest), utcOrZero(due)
	return b, nil
}

// pruneSQL deletes up to $2 messages whose outcome occurred before $1 and
// that no delivery is still to send, with their deliveries and attempts
// (ON DELETE CASCADE).
const pruneSQL = `
DELETE FROM webhook_messages m
WHERE (m.tenant, m.message_id) IN (
    SELECT o.tenant, o.message_id FROM webhook_messages o
    WHERE o.occurred_at < $1
      AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                      WHERE d.tenant = o.tenant AND d.message_id = o.message_id AND d.state = 'pending')
    LIMIT $2
    FOR UPDATE SKIP LOCKED)`

// purgeDeletedSQL deletes up to $1 deliveries of deleted endpoints, with
// their attempts.
const purgeDeletedSQL = `
DELETE FROM webhook_deliveries d
WHERE (d.tenant, d.endpoint_id, d.message_id) IN (
    SELECT o.tenant, o.endpoint_id, o.message_id
    FROM webhook_deliveries o JOIN webhook_endpoints e USING (tenant, endpoint_id)
    WHERE e.deleted_at IS NOT NULL
    LIMIT $1
    FOR UPDATE OF o SKIP LOCKED)`

// Prune deletes, up to limit rows of each kind, the deliveries of deleted
// endpoints (with their attempts), the deleted endpoints left without
// any, and the messages of outcomes before cutoff that have nothing left
// to send (with their deliveries and attempts). It returns the larger of
// the deliveries and messages it deleted: limit means there may be more.
func (s *Store) Prune(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	deliveries, err := s.pool.Exec(ctx, purgeDeletedSQL, limit)
	if err != nil {
		return 0, fmt.Errorf("prune deleted webhook endpoints: %w", classify(err))
	}
	if _, err := s.pool.Exec(ctx, `
DELETE FROM webhook_endpoints e
WHERE e.deleted_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.tenant = e.tenant AND d.endpoint_id = e.endpoint_id)`); err != nil {
		return 0, fmt.Errorf("prune deleted webhook endpoints: %w", classify(err))
	}
	messages, err := s.pool.Exec(ctx, pruneSQL, cutoff, limit)
	if err != nil {
		return 0, fmt.Errorf("prune webhook messages: %w", classify(err))
	}
	return int(max(deliveries.RowsAffected(), messages.RowsAffected())), nil
}
