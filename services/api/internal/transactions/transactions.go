// Package transactions is the api's domain: a transaction as stored, with
// what the converter made of it (Record); what storing one did (Outcome);
// a page of them (Filter, Page); and the errors the layers below report,
// as sentinels every layer compares with errors.Is. The store translates
// rows and PostgreSQL's errors into these at its edge; the use case and
// the HTTP handlers speak nothing else.
package transactions

import (
	"errors"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Errors of the domain, compared with errors.Is.
var (
	// ErrNotFound: no transaction of the tenant has that id.
	ErrNotFound = errors.New("transaction not found")
	// ErrBadCursor: a pagination cursor this api did not write.
	ErrBadCursor = errors.New("invalid cursor")
	// ErrConflict: the id is taken by a transaction of other content.
	ErrConflict = errors.New("transaction id taken by other content")
	// ErrUnavailable: the database could not be reached or did not answer
	// in time; the outcome of a write is unknown, and a retry with the same
	// transaction_id is safe.
	ErrUnavailable = errors.New("database unavailable")
)

// Record is a stored transaction with what the converter made of it.
type Record struct {
	Tenant      string
	Transaction txmodel.Transaction
	ReceivedAt  time.Time
	// Conversion is nil while the transaction waits for the converter.
	Conversion *txmodel.Conversion
}

// Status is where the transaction is in the pipeline.
func (r Record) Status() txmodel.Status {
	if r.Conversion == nil {
		return txmodel.StatusReceived
	}
	return r.Conversion.Status
}

// Entry is a transaction to store with the queue message that will carry
// it to the converter (its outbox entry).
type Entry struct {
	// Tenant owns the transaction: ids are unique per tenant.
	Tenant      string
	Transaction txmodel.Transaction
	ReceivedAt  time.Time
	// Message is the queue message's body.
	Message []byte
	// Headers travel with the message: the W3C trace context of the
	// request, since the relay publishes later, from another context.
	Headers map[string]string
}

// Outcome says what storing one transaction did.
type Outcome int

// The outcomes of storing a transaction.
const (
	// Created: stored now, with its outbox entry.
	Created Outcome = iota + 1
	// Replayed: stored before with the same content; nothing was written.
	Replayed
	// Conflict: stored before with other content under the same id;
	// nothing was written.
	Conflict
)

// String names the outcome, for logs.
func (o Outcome) String() string {
	switch o {
	case Created:
		return "created"
	case Replayed:
		return "replayed"
	case Conflict:
		return "conflict"
	default:
		return "unknown"
	}
}

// Result is the outcome for one transaction, and the stored record: the
// new one when Created, the existing one otherwise.
type Result struct {
	Outcome Outcome
	Record  Record
}

// Filter selects a page of a tenant's transactions, newest first.
type Filter struct {
	Tenant string         // required: a listing never crosses tenants
	UserID string         // empty: every user of the tenant
	Status txmodel.Status // empty: every status
	Limit  int            // at least 1
	Cursor string         // empty: the first page; else a Page's Next
}

// Page is one page of a listing.
type Page struct {
	Records []Record
	// Next is the cursor of the following page, empty on the last page.
	Next string
}
