// Package store keeps the api's transactions and its outbox in PostgreSQL
// (pgx and squirrel). A transaction and the outbox entry that will carry it
// to the converter are written in one statement, so either both are
// committed or neither is: nothing accepted is ever lost between the
// database and the queue.
package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	sq "github.com/Masterminds/squirrel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// Store is the api's PostgreSQL store. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	psql   sq.StatementBuilderType
	tracer trace.Tracer
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{
		pool:   pool,
		psql:   sq.StatementBuilder.PlaceholderFormat(sq.Dollar),
		tracer: otel.Tracer("github.com/txpersister/txpersister/services/api/internal/store"),
	}
}

// Ping checks that PostgreSQL answers. It returns an error wrapping
// transactions.ErrUnavailable when it does not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", classify(err))
	}
	return nil
}

// insertSQL writes transactions and their outbox entries in one statement:
// an outbox row exists exactly for the transactions this statement inserted.
// ON CONFLICT DO NOTHING waits for a concurrent insert of the same id to
// commit, so concurrent retries of one transaction insert it once. The
// rows are inserted in the order of the arrays, which columnsOf sorts by
// (tenant, id): two statements that hold the same new ids wait for each
// other in one order, never in a cycle (a deadlock PostgreSQL would break
// by failing one of them).
const insertSQL = `
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::bytea[], $9::text[])
        WITH ORDINALITY AS i(tenant, transaction_id, user_id, amount, currency, occurred_at, received_at, payload, headers, n)
), inserted AS (
    INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at)
    SELECT tenant, transaction_id, user_id, amount::numeric, currency, occurred_at, received_at FROM input ORDER BY n
    ON CONFLICT (tenant, transaction_id) DO NOTHING
    RETURNING tenant, transaction_id
), queued AS (
    INSERT INTO outbox (tenant, transaction_id, payload, headers)
    SELECT i.tenant, i.transaction_id, i.payload, i.headers::jsonb FROM input i JOIN inserted USING (tenant, transaction_id)
    ORDER BY i.n
)
SELECT tenant, transaction_id FROM inserted`

// key is what identifies a transaction: its id within its tenant.
type key struct{ tenant, id string }

func keyOf(e transactions.Entry) key { return key{e.Tenant, e.Transaction.ID} }

// Insert stores each transaction with its outbox entry, in one round trip
// and one database transaction for all of them, and reports per item
// whether it was created, a replay of a stored transaction of its tenant
// with the same content, or a conflict with one of other content. Items
// that share a tenant and id are resolved in order: the first is inserted,
// the rest are compared with it. Results are in the order of items.
//
// It returns an error wrapping transactions.ErrUnavailable when PostgreSQL cannot be
// reached; then nothing or everything was committed, and the same insert
// again is safe.
func (s *Store) Insert(ctx context.Context, items []transactions.Entry) ([]transactions.Result, error) {
	cols, first, err := columnsOf(items)
	if err != nil {
		return nil, err
	}
	created, err := s.insert(ctx, cols)
	if err != nil {
		return nil, fmt.Errorf("insert %d transactions: %w", len(cols.ids), err)
	}
	isCreated := make(map[key]bool, len(created))
	for _, k := range created {
		isCreated[k] = true
	}
	existing, err := s.existing(ctx, cols, isCreated)
	if err != nil {
		return nil, err
	}
	return resolve(items, first, isCreated, existing)
}

// insertColumns are insertSQL's arrays: one element per transaction.
type insertColumns struct {
	tenants, ids, users, amounts, currencies []string
	occurred, received                       []time.Time
	payloads                                 [][]byte
	headers                                  []string
}

// columnsOf lays out the first item of each tenant and id in columns,
// sorted by tenant and id, and maps each to the index of its first item.
func columnsOf(items []transactions.Entry) (insertColumns, map[key]int, error) {
	first := make(map[key]int, len(items))
	order := make([]int, 0, len(items))
	for i, it := range items {
		if _, dup := first[keyOf(it)]; !dup {
			first[keyOf(it)] = i
			order = append(order, i)
		}
	}
	slices.SortFunc(order, func(a, b int) int {
		ka, kb := keyOf(items[a]), keyOf(items[b])
		return cmp.Or(strings.Compare(ka.tenant, kb.tenant), strings.Compare(ka.id, kb.id))
	})
	n := len(order)
	c := insertColumns{
		tenants: make([]string, 0, n), ids: make([]string, 0, n), users: make([]string, 0, n), amounts: make([]string, 0, n), currencies: make([]string, 0, n),
		occurred: make([]time.Time, 0, n), received: make([]time.Time, 0, n), payloads: make([][]byte, 0, n), headers: make([]string, 0, n),
	}
	for _, i := range order {
		it := items[i]
		tx := it.Transaction
		h, err := json.Marshal(it.Headers)
		if err != nil {
			return c, nil, fmt.Errorf("encode headers of transaction %s: %w", tx.ID, err)
		}
		if it.Headers == nil {
			h = []byte("{}")
		}
		c.tenants = append(c.tenants, it.Tenant)
		c.ids = append(c.ids, tx.ID)
		c.users = append(c.users, tx.UserID)
		c.amounts = append(c.amounts, tx.Amount.String())
		c.currencies = append(c.currencies, tx.Amount.Currency.Code())
		c.occurred = append(c.occurred, tx.Timestamp)
		c.received = append(c.received, it.ReceivedAt)
		c.payloads = append(c.payloads, it.Message)
		c.headers = append(c.headers, string(h))
	}
	return c, first, nil
}

// existing reads the stored transactions the insert did not create.
func (s *Store) existing(ctx context.Context, c insertColumns, created map[key]bool) (map[key]transactions.Record, error) {
	var tenants, ids []string
	for i, id := range c.ids {
		if !created[key{c.tenants[i], id}] {
			tenants, ids = append(tenants, c.tenants[i]), append(ids, id)
		}
	}
	existing := map[key]transactions.Record{}
	if len(ids) == 0 {
		return existing, nil
	}
	recs, err := s.get(ctx, sq.Expr("(t.tenant, t.transaction_id) IN (SELECT * FROM unnest(?::text[], ?::text[]))", tenants, ids))
	if err != nil {
		return nil, fmt.Errorf("read %d existing transactions: %w", len(ids), err)
	}
	for _, r := range recs {
		existing[key{r.Tenant, r.Transaction.ID}] = r
	}
	return existing, nil
}

// resolve gives each item its outcome: created (the first item of an id
// the insert created), replayed (same content as the stored one, or as
// the first item of its id) or conflict.
func resolve(items []transactions.Entry, first map[key]int, created map[key]bool, existing map[key]transactions.Record) ([]transactions.Result, error) {
	results := make([]transactions.Result, len(items))
	for i, it := range items {
		tx, k := it.Transaction, keyOf(it)
		f := first[k]
		var stored transactions.Record
		switch {
		case created[k] && f == i:
			results[i] = transactions.Result{Outcome: transactions.Created, Record: transactions.Record{Tenant: it.Tenant, Transaction: tx, ReceivedAt: it.ReceivedAt}}
			continue
		case created[k]:
			stored = results[f].Record
		default:
			r, ok := existing[k]
			if !ok {
				// Not inserted and not found: deleted in between, which the
				// pipeline never does.
				return nil, fmt.Errorf("transaction %s of tenant %s neither inserted nor found", tx.ID, it.Tenant)
			}
			stored = r
		}
		if stored.Transaction.SameContent(tx) {
			results[i] = transactions.Result{Outcome: transactions.Replayed, Record: stored}
		} else {
			results[i] = transactions.Result{Outcome: transactions.Conflict, Record: stored}
		}
	}
	return results, nil
}

// insert runs insertSQL inside a CLIENT span and returns the ids it
// inserted. The span follows OpenTelemetry's database conventions; a batch
// of more than one transaction carries db.operation.batch.size, which the
// conventions reserve for batches.
func (s *Store) insert(ctx context.Context, c insertColumns) ([]key, error) {
	attrs := []attribute.KeyValue{
		semconv.DBSystemNamePostgreSQL,
		attribute.String("db.system", "postgresql"), // the name before semantic conventions 1.30; many backends still read it
		semconv.DBOperationName("INSERT"),
		semconv.DBCollectionName("transactions"),
	}
	if len(c.ids) > 1 {
		attrs = append(attrs, semconv.DBOperationBatchSize(len(c.ids)))
	}
	ctx, span := s.tracer.Start(ctx, "INSERT transactions",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()

	rows, err := s.pool.Query(ctx, insertSQL, c.tenants, c.ids, c.users, c.amounts, c.currencies, c.occurred, c.received, c.payloads, c.headers)
	if err == nil {
		var created []key
		created, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (key, error) {
			var k key
			return k, row.Scan(&k.tenant, &k.id)
		})
		if err == nil {
			span.SetAttributes(semconv.DBResponseReturnedRows(len(created)))
			return created, nil
		}
	}
	err = classify(err)
	span.RecordError(err)
	span.SetStatus(codes.Error, "insert failed")
	return nil, err
}

// Get returns the transaction of tenant with id, and its conversion if
// any. It returns an error wrapping transactions.ErrNotFound when there is
// none (another tenant's transaction of that id is none),
// transactions.ErrUnavailable when PostgreSQL cannot be reached.
func (s *Store) Get(ctx context.Context, tenant, id string) (transactions.Record, error) {
	recs, err := s.get(ctx, sq.Eq{"t.tenant": tenant, "t.transaction_id": id})
	if err != nil {
		return transactions.Record{}, fmt.Errorf("get transaction %s: %w", id, err)
	}
	if len(recs) == 0 {
		return transactions.Record{}, fmt.Errorf("get transaction %s: %w", id, transactions.ErrNotFound)
	}
	return recs[0], nil
}

// recordColumns are the columns scanRecord reads, in its order.
var recordColumns = []string{
	"t.tenant", "t.transaction_id", "t.user_id", "t.amount::text", "t.currency", "t.occurred_at", "t.received_at",
	"c.status", "c.converted_amount::text", "c.target_currency", "c.exchange_rate::text", "c.rate_date", "c.processed_at", "c.failure_reason",
	"c.rate_provider", "c.rate_rule", "c.rate_base", "c.rate_quotes",
}

func (s *Store) selectRecords() sq.SelectBuilder {
	return s.psql.Select(recordColumns...).
		From("transactions t").
		// The converter's outcomes, through what it publishes of them
		// (services/converter/schema), never its table.
		LeftJoin("conversion_outcomes c USING (tenant, transaction_id)")
}

func (s *Store) get(ctx context.Context, where sq.Sqlizer) ([]transactions.Record, error) {
	sql, args, err := s.selectRecords().Where(where).ToSql()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	return s.queryRecords(ctx, sql, args)
}

func (s *Store) queryRecords(ctx context.Context, sql string, args []any) ([]transactions.Record, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, classify(err)
	}
	recs, err := pgx.CollectRows(rows, scanRecord)
	if err != nil {
		return nil, classify(err)
	}
	return recs, nil
}

func scanRecord(row pgx.CollectableRow) (transactions.Record, error) {
	var rr recordRow
	if err := row.Scan(rr.dests()...); err != nil {
		return transactions.Record{}, err
	}
	return rr.record()
}

// recordRow is one row of recordColumns as scanned. Every column may be
// null (the sweep reads a record only for some of its rows); record
// says which must not be.
type recordRow struct {
	tenant, id, userID, amount, currency *string
	occurredAt, receivedAt               *time.Time
	status, converted, target, rate      *string
	rateDate, processedAt                *time.Time
	failure                              *string
	provider, rule, base                 *string
	quotes                               map[string]string
}

func (rr *recordRow) dests() []any {
	return []any{
		&rr.tenant, &rr.id, &rr.userID, &rr.amount, &rr.currency, &rr.occurredAt, &rr.receivedAt,
		&rr.status, &rr.converted, &rr.target, &rr.rate, &rr.rateDate, &rr.processedAt, &rr.failure,
		&rr.provider, &rr.rule, &rr.base, &rr.quotes,
	}
}

func (rr *recordRow) record() (transactions.Record, error) {
	if rr.tenant == nil || rr.id == nil || rr.userID == nil || rr.amount == nil || rr.currency == nil || rr.occurredAt == nil || rr.receivedAt == nil {
		return transactions.Record{}, errors.New("a transaction row with a null column")
	}
	r := transactions.Record{Tenant: *rr.tenant, ReceivedAt: rr.receivedAt.UTC()}
	tx := &r.Transaction
	tx.ID, tx.UserID, tx.Timestamp = *rr.id, *rr.userID, rr.occurredAt.UTC()
	var err error
	if tx.Amount, err = money(*rr.amount, *rr.currency); err != nil {
		return transactions.Record{}, fmt.Errorf("transaction %s: %w", tx.ID, err)
	}
	if rr.status == nil {
		return r, nil
	}
	c := &txmodel.Conversion{TransactionID: tx.ID, Status: txmodel.Status(*rr.status)}
	if rr.processedAt != nil {
		c.ProcessedAt = rr.processedAt.UTC()
	}
	c.FailureReason = deref(rr.failure)
	if c.Status == txmodel.StatusProcessed {
		if rr.converted == nil || rr.target == nil || rr.rate == nil || rr.rateDate == nil {
			return transactions.Record{}, fmt.Errorf("transaction %s: processed without a result", tx.ID)
		}
		if c.Converted, err = money(*rr.converted, *rr.target); err != nil {
			return transactions.Record{}, fmt.Errorf("transaction %s converted amount: %w", tx.ID, err)
		}
		v, err := txmodel.ParseDecimal(*rr.rate)
		if err != nil {
			return transactions.Record{}, fmt.Errorf("transaction %s rate: %w", tx.ID, err)
		}
		c.Rate = txmodel.Rate{
			From: tx.Amount.Currency, To: c.Converted.Currency, Value: v, Date: rr.rateDate.UTC(),
			Source: txmodel.RateSource{Provider: deref(rr.provider), Rule: txmodel.RateRule(deref(rr.rule)), Base: deref(rr.base), Quotes: rr.quotes},
		}
	}
	r.Conversion = c
	return r, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func money(amount, currency string) (txmodel.Money, error) {
	c, err := txmodel.LookupCurrency(currency)
	if err != nil {
		return txmodel.Money{}, err
	}
	d, err := txmodel.ParseDecimal(amount)
	if err != nil {
		return txmodel.Money{}, err
	}
	return txmodel.Money{Amount: d, Currency: c}, nil
}

// classify translates PostgreSQL's errors at the store's edge: one that
// says the database cannot be reached or did not answer in time wraps
// transactions.ErrUnavailable; the rest pass unchanged.
func classify(err error) error {
	if errors.Is(pgkit.Classify(err), pgkit.ErrUnavailable) {
		return fmt.Errorf("%w: %w", transactions.ErrUnavailable, err)
	}
	return err
}
