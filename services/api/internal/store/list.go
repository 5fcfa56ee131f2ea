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
func (s *Store) List(ctx context.Context, f transactions.Filter) (transactions.Page, error) {
	q := s.selectRecords().
		OrderBy("t.received_at DESC", "t.transaction_id DESC").
		Limit(uint64(f.Limit) + 1). //nolint:gosec // G115: Limit is at least 1. One more tells whether a next page exists.
		Where(sq.Eq{"t.tenant": f.Tenant})
	if f.UserID != "" {
		q = q.Where(sq.Eq{"t.user_id": f.UserID})
	}
	switch f.Status {
	case "":
	case txmodel.StatusReceived:
		q = q.Where("c.transaction_id IS NULL")
	default:
		q = q.Where(sq.Eq{"c.status": string(f.Status)})
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(f.Cursor)
		if err != nil {
			return transactions.Page{}, err
		}
		q = q.Where("(t.received_at, t.transaction_id) < (?, ?)", at, id)
	}
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
