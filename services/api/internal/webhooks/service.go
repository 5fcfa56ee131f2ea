package webhooks

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Store is what the use case needs of the store. Every method is within
// tenant; an endpoint of another tenant is not found.
type Store interface {
	// CreateEndpoint stores e unless its tenant has max endpoints
	// (ErrLimit).
	CreateEndpoint(ctx context.Context, e Endpoint, max int) error
	Endpoints(ctx context.Context, tenant string) ([]Endpoint, error)
	// Endpoint and the methods below return ErrNotFound for an id the
	// tenant has no endpoint of.
	Endpoint(ctx context.Context, tenant, id string) (Endpoint, error)
	DeleteEndpoint(ctx context.Context, tenant, id string) error
	// RotateSecret makes secret the endpoint's, the one before it valid
	// until previousUntil.
	RotateSecret(ctx context.Context, tenant, id, secret string, previousUntil time.Time) (Endpoint, error)
	// Attempts returns the endpoint's latest attempts, newest first.
	Attempts(ctx context.Context, tenant, id string, limit int) ([]Attempt, error)
	// Replay makes every delivery to the endpoint of a message that
	// occurred in [from, to) due again at now, and returns how many.
	Replay(ctx context.Context, tenant, id string, from, to, now time.Time) (int, error)
}

// Service is the webhooks' use case.
type Service struct {
	store  Store
	policy *Policy
	now    func() time.Time
	// overlap is how long a rotated-out secret keeps signing.
	overlap time.Duration
}

// NewService returns the use case over st. A rotated-out secret keeps
// signing beside the new one for overlap.
func NewService(st Store, p *Policy, now func() time.Time, overlap time.Duration) *Service {
	return &Service{store: st, policy: p, now: now, overlap: overlap}
}

// Create checks and stores a new endpoint of tenant for url and events,
// with a new secret. Invalid fields are an *InvalidError listing each.
func (s *Service) Create(ctx context.Context, tenant, url string, events []string) (Endpoint, error) {
	var errs []txmodel.FieldError
	u, fe := s.policy.CheckURL(ctx, url)
	if fe != nil {
		errs = append(errs, *fe)
	}
	evs, fes := checkEvents(events)
	errs = append(errs, fes...)
	if len(errs) > 0 {
		return Endpoint{}, &InvalidError{Errors: errs}
	}
	e := Endpoint{
		Tenant: tenant, ID: NewEndpointID(), URL: u, Events: evs, Secret: NewSecret(),
		CreatedAt: s.now().UTC().Truncate(time.Microsecond),
	}
	if err := s.store.CreateEndpoint(ctx, e, MaxEndpoints); err != nil {
		return Endpoint{}, err
	}
	return e, nil
}

// checkEvents returns the events, each once in the contract's order, or
// the field errors of those that are not.
func checkEvents(events []string) ([]string, []txmodel.FieldError) {
	if len(events) == 0 {
		return nil, []txmodel.FieldError{{Field: "events", Code: txmodel.CodeRequired, Message: "at least one of " + fmt.Sprint(EventTypes())}}
	}
	var errs []txmodel.FieldError
	for i, ev := range events {
		if !slices.Contains(EventTypes(), ev) {
			errs = append(errs, txmodel.FieldError{
				Field: fmt.Sprintf("events[%d]", i), Code: txmodel.CodeInvalidValue,
				Message: fmt.Sprintf("unknown event %q; the events are %v", truncate(ev, 64), EventTypes()),
			})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var out []string
	for _, ev := range EventTypes() {
		if slices.Contains(events, ev) {
			out = append(out, ev)
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// List returns the tenant's endpoints, oldest first.
func (s *Service) List(ctx context.Context, tenant string) ([]Endpoint, error) {
	return s.store.Endpoints(ctx, tenant)
}

// Get returns one endpoint of tenant.
func (s *Service) Get(ctx context.Context, tenant, id string) (Endpoint, error) {
	return s.store.Endpoint(ctx, tenant, id)
}

// Delete removes an endpoint, its deliveries and their attempts.
func (s *Service) Delete(ctx context.Context, tenant, id string) error {
	return s.store.DeleteEndpoint(ctx, tenant, id)
}

// RotateSecret gives the endpoint a new secret; the old one signs beside
// it for the overlap, so that a receiver has time to take the new one.
func (s *Service) RotateSecret(ctx context.Context, tenant, id string) (Endpoint, error) {
	return s.store.RotateSecret(ctx, tenant, id, NewSecret(), s.now().Add(s.overlap))
}

// MaxAttempts is the most attempts Attempts returns.
const MaxAttempts = 100

// Attempts returns the endpoint's latest attempts, newest first, at most
// limit (1 to MaxAttempts).
func (s *Service) Attempts(ctx context.Context, tenant, id string, limit int) ([]Attempt, error) {
	return s.store.Attempts(ctx, tenant, id, min(max(limit, 1), MaxAttempts))
}

// Replay sends again, from now on, every message the endpoint was sent,
// or was to be sent, of an outcome in [from, to); it returns how many.
func (s *Service) Replay(ctx context.Context, tenant, id string, from, to time.Time) (int, error) {
	if !from.Before(to) {
		return 0, &InvalidError{Errors: []txmodel.FieldError{{Field: "until", Code: txmodel.CodeInvalidValue, Message: "must be after since"}}}
	}
	return s.store.Replay(ctx, tenant, id, from, to, s.now())
}
