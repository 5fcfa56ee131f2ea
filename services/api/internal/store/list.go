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
// received until then: the failed listing merges both, each in the order
// of its index (a Merge Append), and the outcome picks.
func (s *Store) listIndexed(f transactions.Filter, at time.Time, id string) (sq.SelectBuilder, error) {
	arm := func(status string) sq.SelectBuilder {
		q := sq.Select("tenant", "transaction_id", "received_at").From("status_index").
			Where(sq.Eq{"tenant": f.Tenant, "status": status})
		if f.UserID != "" {
			q = q.Where(sq.Eq{"user_id": f.UserID})
		}
		if !at.IsZero() {
			q = q.Where("(received_at, transaction_id) < (?, ?)", at, id)
		}
		return q
	}
	from := arm("received")
	if f.Status == txmodel.StatusFailed {
		sql, args, err := arm("received").ToSql()
		if err != nil {
			return sq.SelectBuilder{}, err
		}
		from = arm("failed").Suffix("UNION ALL "+sql, args...)
	}
	q := s.psql.Select(recordColumns...).
		FromSelect(from, "s").
		Join("transactions t USING (tenant, transaction_id)").
		LeftJoin("conversion_outcomes c USING (tenant, transaction_id)").
		OrderBy("s.received_at DESC", "s.transaction_id DESC")
	if f.Status == txmodel.StatusFailed {
		return q.Where(sq.Eq{"c.status": string(txmodel.StatusFailed)}), nil
	}
	return q.Where("c.transaction_id IS NULL"), nil
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
