// Package webhooks tells a tenant's endpoints what became of its
// transactions, as the Standard Webhooks specification
// (standardwebhooks.com) says: one message per outcome, signed with the
// endpoint's secret, retried on a schedule until a 2xx answer.
//
// The rooms: webhooks.go the domain (endpoints, messages, attempts, the
// errors), service.go the use case the HTTP handlers call, url.go which
// addresses may receive (and the dialer that checks them again at send
// time), sign.go the secrets and signatures, message.go the message of
// an outcome, sender.go the loop that delivers.
package webhooks

import (
	"errors"
	"strings"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// The event types an endpoint may subscribe to.
const (
	EventProcessed = "transaction.processed"
	EventFailed    = "transaction.failed"
)

// EventTypes lists every event type, in the contract's order.
func EventTypes() []string { return []string{EventProcessed, EventFailed} }

// EventOf is the event type of an outcome.
func EventOf(s txmodel.Status) (string, bool) {
	switch s {
	case txmodel.StatusProcessed:
		return EventProcessed, true
	case txmodel.StatusFailed:
		return EventFailed, true
	}
	return "", false
}

// MaxEndpoints is the most endpoints one tenant may have: every outcome
// is one message to each.
const MaxEndpoints = 20

// Errors of the domain, compared with errors.Is.
var (
	// ErrNotFound: the tenant has no endpoint of that id.
	ErrNotFound = errors.New("webhook endpoint not found")
	// ErrLimit: the tenant has MaxEndpoints endpoints already.
	ErrLimit = errors.New("webhook endpoint limit reached")
)

// InvalidError lists every invalid field of a webhook request.
type InvalidError struct {
	Errors []txmodel.FieldError
}

func (e *InvalidError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "invalid webhook: " + strings.Join(parts, "; ")
}

// Endpoint is a tenant's URL that receives the events it subscribed to.
type Endpoint struct {
	Tenant string
	ID     string
	URL    string
	Events []string
	// Secret signs every message; PreviousSecret, until
	// PreviousSecretUntil, signs beside it after a rotation.
	Secret              string
	PreviousSecret      string
	PreviousSecretUntil time.Time
	CreatedAt           time.Time
	// FailingSince is the first failure since the last success (zero:
	// none). DisabledAt is when it was disabled (zero: enabled), and
	// DisabledReason why.
	FailingSince   time.Time
	DisabledAt     time.Time
	DisabledReason string
}

// Secrets are the secrets that sign a message sent at now: the current
// one, and the previous one while it is still valid.
func (e Endpoint) Secrets(now time.Time) []string {
	if e.PreviousSecret != "" && now.Before(e.PreviousSecretUntil) {
		return []string{e.Secret, e.PreviousSecret}
	}
	return []string{e.Secret}
}

// Attempt is one try at delivering a message to an endpoint.
type Attempt struct {
	MessageID     string
	EventType     string
	TransactionID string
	Attempt       int
	StartedAt     time.Time
	Duration      time.Duration
	// StatusCode is the answer's status, 0 when there was none.
	StatusCode int
	// Error says why it failed; empty when it succeeded.
	Error string
	// State is the delivery's state now: pending, delivered or failed.
	State string
}

// The states of a delivery.
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateFailed    = "failed"
)
