// Package ingest is the api's use case: accept a validated transaction,
// store it with its outbox entry, and read transactions back.
package ingest

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/store"
)

// Store is what the use case needs of the database.
type Store interface {
	// Insert stores transactions with their outbox entries; see store.Store.Insert.
	Insert(ctx context.Context, items []store.NewTransaction) ([]store.Result, error)
	// Get returns one transaction or an error wrapping store.ErrNotFound.
	Get(ctx context.Context, id string) (store.Record, error)
	// List returns a page of transactions.
	List(ctx context.Context, f store.Filter) (store.Page, error)
}

var _ Store = (*store.Store)(nil)

// Service accepts and reads transactions.
type Service struct {
	store Store
	now   func() time.Time
	prop  propagation.TextMapPropagator
}

// New returns a Service on st. now is the clock (time.Now in production).
func New(st Store, now func() time.Time) *Service {
	return &Service{store: st, now: now, prop: otel.GetTextMapPropagator()}
}

// Accept stores tx with the outbox entry that will hand it to the
// converter, the request's trace context travelling with it. It reports
// whether tx was created, replayed (stored before with the same content) or
// conflicts with another transaction under the same id. Errors wrap
// store.ErrUnavailable when PostgreSQL cannot be reached.
func (s *Service) Accept(ctx context.Context, tx txmodel.Transaction) (store.Result, error) {
	receivedAt := s.now().UTC().Truncate(time.Microsecond)
	msg, err := txmodel.EncodeMessage(tx, receivedAt)
	if err != nil {
		return store.Result{}, err
	}
	headers := propagation.MapCarrier{}
	s.prop.Inject(ctx, headers)
	results, err := s.store.Insert(ctx, []store.NewTransaction{{
		Transaction: tx,
		ReceivedAt:  receivedAt,
		Message:     msg,
		Headers:     headers,
	}})
	if err != nil {
		return store.Result{}, fmt.Errorf("accept transaction %s: %w", tx.ID, err)
	}
	return results[0], nil
}

// Get returns the transaction with id; errors wrap store.ErrNotFound or
// store.ErrUnavailable.
func (s *Service) Get(ctx context.Context, id string) (store.Record, error) {
	return s.store.Get(ctx, id)
}

// List returns a page of transactions, newest first.
func (s *Service) List(ctx context.Context, f store.Filter) (store.Page, error) {
	return s.store.List(ctx, f)
}
