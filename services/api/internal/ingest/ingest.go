// Package ingest is the api's use case: accept validated transactions,
// store each with its outbox entry, and read transactions back.
//
// Concurrent requests share database round trips and commits: Accept hands
// its transaction to a batch.Batcher, whose flushers write what is queued in
// one statement. A lone request is written at once; under load a batch
// holds what arrived during the previous round trip.
package ingest

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/txpersister/txpersister/libs/batch"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/store"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// Store is what the use case needs of the database.
type Store interface {
	// Insert stores transactions with their outbox entries; see store.Store.Insert.
	Insert(ctx context.Context, items []transactions.Entry) ([]transactions.Result, error)
	// Get returns one transaction of a tenant or an error wrapping
	// transactions.ErrNotFound.
	Get(ctx context.Context, tenant, id string) (transactions.Record, error)
	// List returns a page of transactions.
	List(ctx context.Context, f transactions.Filter) (transactions.Page, error)
}

var _ Store = (*store.Store)(nil)

// BatchConfig is how concurrent Accepts share round trips; see
// batch.Config.
type BatchConfig = batch.Config

// Service accepts and reads transactions. Close stops it.
type Service struct {
	store     Store
	now       func() time.Time
	prop      propagation.TextMapPropagator
	batcher   *batch.Batcher[transactions.Entry, transactions.Result]
	committed func()
}

// New returns a Service on st. now is the clock (time.Now in production).
// committed, when not nil, is called after every commit that created
// transactions, and so outbox entries: the relay's Wake.
func New(st Store, now func() time.Time, cfg BatchConfig, committed func()) *Service {
	if committed == nil {
		committed = func() {}
	}
	s := &Service{store: st, now: now, prop: otel.GetTextMapPropagator(), committed: committed}
	s.batcher = batch.New(s.insert, cfg)
	return s
}

// insert stores items in one commit and calls committed if it created any.
func (s *Service) insert(ctx context.Context, items []transactions.Entry) ([]transactions.Result, error) {
	res, err := s.store.Insert(ctx, items)
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		if r.Outcome == transactions.Created {
			s.committed()
			break
		}
	}
	return res, nil
}

// Close writes the transactions still queued and stops the batching.
func (s *Service) Close() { s.batcher.Close() }

// Accept stores tx as tenant's with the outbox entry that will hand it to
// the converter, the request's trace context travelling with it. It
// reports whether tx was created, replayed (stored before by the tenant
// with the same content) or conflicts with another transaction of the
// tenant under the same id. Errors wrap transactions.ErrUnavailable when
// PostgreSQL cannot be reached.
func (s *Service) Accept(ctx context.Context, tenant string, tx txmodel.Transaction) (transactions.Result, error) {
	item, err := s.newItem(ctx, tenant, tx)
	if err != nil {
		return transactions.Result{}, err
	}
	res, err := s.batcher.Do(ctx, item)
	if err != nil {
		return transactions.Result{}, fmt.Errorf("accept transaction %s: %w", tx.ID, err)
	}
	return res, nil
}

// AcceptBatch stores txs in one round trip and reports for each, in order,
// what Accept would have.
func (s *Service) AcceptBatch(ctx context.Context, tenant string, txs []txmodel.Transaction) ([]transactions.Result, error) {
	items := make([]transactions.Entry, len(txs))
	for i, tx := range txs {
		var err error
		if items[i], err = s.newItem(ctx, tenant, tx); err != nil {
			return nil, err
		}
	}
	res, err := s.insert(ctx, items)
	if err != nil {
		return nil, fmt.Errorf("accept %d transactions: %w", len(txs), err)
	}
	return res, nil
}

func (s *Service) newItem(ctx context.Context, tenant string, tx txmodel.Transaction) (transactions.Entry, error) {
	receivedAt := s.now().UTC().Truncate(time.Microsecond)
	msg, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: tenant, Transaction: tx, ReceivedAt: receivedAt})
	if err != nil {
		return transactions.Entry{}, err
	}
	headers := propagation.MapCarrier{}
	s.prop.Inject(ctx, headers)
	return transactions.Entry{Tenant: tenant, Transaction: tx, ReceivedAt: receivedAt, Message: msg, Headers: boundHeaders(headers)}, nil
}

// Get returns tenant's transaction with id; errors wrap
// transactions.ErrNotFound (also for another tenant's) or
// transactions.ErrUnavailable.
func (s *Service) Get(ctx context.Context, tenant, id string) (transactions.Record, error) {
	return s.store.Get(ctx, tenant, id)
}

// List returns a page of a tenant's transactions, newest first.
func (s *Service) List(ctx context.Context, f transactions.Filter) (transactions.Page, error) {
	return s.store.List(ctx, f)
}
