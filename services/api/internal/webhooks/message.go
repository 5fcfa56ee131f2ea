package webhooks

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/internal/wire"
)

// Message is the news of one outcome, as recorded and as sent.
type Message struct {
	Tenant        string
	ID            string // the webhook-id header
	EventType     string
	TransactionID string
	OccurredAt    time.Time
	// Body is the exact bytes sent: {"type", "timestamp", "data"}, data
	// being the transaction as GET /v1/transactions/{id} answered when
	// the outcome was recorded.
	Body []byte
}

// body is the JSON of a message.
type body struct {
	Type      string           `json:"type"`
	Timestamp string           `json:"timestamp"`
	Data      wire.Transaction `json:"data"`
}

// NewMessage returns the message of rec's outcome; ok is false when rec
// has none (it is received).
func NewMessage(rec transactions.Record) (m Message, ok bool, err error) {
	event, ok := EventOf(rec.Status())
	if !ok {
		return Message{}, false, nil
	}
	at := rec.Conversion.ProcessedAt
	b, err := json.Marshal(body{Type: event, Timestamp: wire.FormatTime(at), Data: wire.NewTransaction(rec)})
	if err != nil {
		return Message{}, false, fmt.Errorf("message of transaction %s: %w", rec.Transaction.ID, err)
	}
	return Message{
		Tenant: rec.Tenant, ID: NewMessageID(), EventType: event, TransactionID: rec.Transaction.ID,
		OccurredAt: at, Body: b,
	}, true, nil
}
