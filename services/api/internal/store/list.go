package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// List returns a page of a tenant's transactions, newest received first, by keyset
// pagination on (received_at, transaction_id): pages stay stable while new
// transactions arrive. It returns an error wrapping transactions.ErrBadCursor for a
// cursor it cannot read, transactions.ErrUnavailable when PostgreSQL cannot be reached.
//
// The unfiltered and the processed listings walk transactions in that
// order (nearly every transaction is processed); the received and the
// failed ones walk status_index (schema 00007), which holds only those,
// and the outcomes decide: the listing is exact even before the sweeper
// has caught up.
func (s *Store) List(ctx context.Context, f transactions.Filter) (transactions.Page, error) {
	var at time.Time
	var id string
	if f.Cursor != "" {
		var err error
		if at, id, err = decodeCursor(f.Cursor); err != nil {
			return transactions.Page{}, err
		}
	}
	q, err := s.listAll(f, at, id), error(nil)
	if f.Status == txmodel.StatusReceived || f.Status == txmodel.StatusFailed {
		if q, err = s.listIndexed(f, at, id); err != nil {
			return transactions.Page{}, fmt.Errorf("build list query: %w", err)
		}
	}
	q = q.Limit(uint64(f.Limit) + 1) //nolint:gosec // G115: Limit is at least 1. One more tells whether a next page exists.
	sql, args, err := q.ToSql()
	if err != nil {
		return transactions.Page{}, fmt.Errorf("build list query: %w", err)
	}
	recs, err := s.queryRecords(ctx, sql, args)
	if err != nil {
		return transactions.Page{}, fmt.Errorf("list transactions: %w", err)
	}
	var p transactions.Page
	if len(recs) > f.Limit {
		recs = recs[:f.Limit]
		last := recs[len(recs)-1]
		p.Next = encodeCursor(last.ReceivedAt, last.Transaction.ID)
	}
	p.Records = recs
	return p, nil
}

// listAll is the listing over transactions: everything, or the processed.
func (s *Store) listAll(f transactions.Filter, at time.Time, id string) sq.SelectBuilder {
	q := s.selectRecords().
		OrderBy("t.received_at DESC", "t.transaction_id DESC").
		Where(sq.Eq{"t.tenant": f.Tenant})
	if f.UserID != "" {
		q = q.Where(sq.Eq{"t.user_id": f.UserID})
	}
	if f.Status != "" {
		q = q.Where(sq.Eq{"c.status": string(f.Status)})
	}
	if !at.IsZero() {
		q = q.Where("(t.received_at, t.transaction_id) < (?, ?)", at, id)
	}
	return q
}

// listIndexed is the listing over status_index: the received, or the
// failed. A failed transaction is in the index as failed once swept, as
// received until then: the failed listing merges both. Each arm walks its
// index in order and stops at a page and one; the merge keeps the first
// of both. The received entries are checked against the outcomes (the
// converter's outcomes decide, so the listing is exact whatever the
// sweeper's lag); a swept failed entry is failed by construction (only
// the sweeper marks it, from a failed outcome, and txctl reprocess makes
// it received again in the transaction that forgets the outcome), and is
// not checked: a check there would have the planner read every failed
// outcome and sort them (5 s at 10 million), not knowing they match.
func (s *Store) listIndexed(f transactions.Filter, at time.Time, id string) (sq.SelectBuilder, error) {
	limit := uint64(f.Limit) + 1 //nolint:gosec // G115: Limit is at least 1.
	outcome := "NOT EXISTS (SELECT 1 FROM conversion_outcomes c WHERE c.tenant = si.tenant AND c.transaction_id = si.transaction_id)"
	if f.Status == txmodel.StatusFailed {
		outcome = "EXISTS (SELECT 1 FROM conversion_outcomes c WHERE c.tenant = si.tenant AND c.transaction_id = si.transaction_id AND c.status = 'failed')"
	}
	arm := func(status string) (string, []any, error) {
		q := sq.Select("si.tenant", "si.transaction_id", "si.received_at").From("status_index si").
			Where(sq.Eq{"si.tenant": f.Tenant, "si.status": status}).
			OrderBy("si.received_at DESC", "si.transaction_id DESC").
			Limit(limit)
		if f.UserID != "" {
			q = q.Where(sq.Eq{"si.user_id": f.UserID})
		}
		if !at.IsZero() {
			q = q.Where("(si.received_at, si.transaction_id) < (?, ?)", at, id)
		}
		if status == "received" {
			q = q.Where(outcome)
		}
		return q.ToSql()
	}
	sql, args, err := arm("received")
	if err != nil {
		return sq.SelectBuilder{}, err
	}
	sql = "(" + sql + ")"
	if f.Status == txmodel.StatusFailed {
		swept, sweptArgs, err := arm("failed")
		if err != nil {
			return sq.SelectBuilder{}, err
		}
		sql = "(" + swept + ") UNION ALL " + sql
		args = append(sweptArgs, args...)
	}
	return s.psql.Select(recordColumns...).
		Prefix("WITH s AS ("+sql+")", args...).
		From("s").
		Join("transactions t USING (tenant, transaction_id)").
		LeftJoin("conversion_outcomes c USING (tenant, transaction_id)").
		OrderBy("s.received_at DESC", "s.transaction_id DESC"), nil
}

// A cursor is the position of the last record of a page: its received_at in
// Unix microseconds and its id, base64url-encoded so it is opaque to
// clients.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + ":" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: not base64url", transactions.ErrBadCursor)
	}
	micros, id, ok := strings.Cut(string(b), ":")
	if !ok {
		return time.Time{}, "", fmt.Errorf("%w: no position", transactions.ErrBadCursor)
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: bad position", transactions.ErrBadCursor)
	}
	return time.UnixMicro(us).UTC(), id, nil
}
