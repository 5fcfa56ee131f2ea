package txmodel

import (
	"encoding/json"
	"fmt"
	"time"
)

// MessageVersion is the version of the queue message this code writes.
// A reader accepts every version up to it.
const MessageVersion = 1

// MessageContentType is the AMQP content type of a Message.
const MessageContentType = "application/json"

// MessageType is the AMQP type of a Message, naming its schema.
const MessageType = "txpersister.transaction.v1"

// Message is the queue message that hands a stored transaction from the api
// to the converter: the transaction as normalised, and when the api
// received it. It is versioned JSON; amounts travel as decimal strings with
// the currency's minor digits, never as JSON numbers.
type Message struct {
	Version       int       `json:"version"`
	TransactionID string    `json:"transaction_id"`
	UserID        string    `json:"user_id"`
	Amount        string    `json:"amount"`
	Currency      string    `json:"currency"`
	Timestamp     time.Time `json:"timestamp"`
	ReceivedAt    time.Time `json:"received_at"`
}

// EncodeMessage returns the queue message for t, received at receivedAt.
func EncodeMessage(t Transaction, receivedAt time.Time) ([]byte, error) {
	b, err := json.Marshal(Message{
		Version:       MessageVersion,
		TransactionID: t.ID,
		UserID:        t.UserID,
		Amount:        t.Amount.String(),
		Currency:      t.Amount.Currency.Code(),
		Timestamp:     t.Timestamp.UTC(),
		ReceivedAt:    receivedAt.UTC(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode message for transaction %s: %w", t.ID, err)
	}
	return b, nil
}

// DecodeMessage decodes a queue message and validates its transaction with
// the same rules as the api, so the converter never trusts the queue blindly.
// The timestamp may lie at most MaxFutureSkew after the receipt.
//
// It returns an error wrapping ErrMalformed for a body that is not a
// message, ErrUnsupportedVersion for a version newer than MessageVersion,
// and a *ValidationError for a transaction that breaks the rules.
func DecodeMessage(body []byte) (Transaction, time.Time, error) {
	var m Message
	if err := json.Unmarshal(body, &m); err != nil {
		return Transaction{}, time.Time{}, fmt.Errorf("%w: message: %s", ErrMalformed, jsonErrorText(err))
	}
	if m.Version < 1 || m.Version > MessageVersion {
		return Transaction{}, time.Time{}, fmt.Errorf("%w: %d (this reader knows 1 to %d)", ErrUnsupportedVersion, m.Version, MessageVersion)
	}
	if m.ReceivedAt.IsZero() {
		return Transaction{}, time.Time{}, fmt.Errorf("%w: message has no received_at", ErrMalformed)
	}
	var v validator
	t := Transaction{ID: m.TransactionID, UserID: m.UserID}
	v.checkID(FieldTransactionID, m.TransactionID)
	v.checkID(FieldUserID, m.UserID)
	c, err := LookupCurrency(m.Currency)
	if err != nil {
		v.fail(FieldCurrency, CodeUnknownCurr, "%q is not an active ISO 4217 currency code with a minor unit", m.Currency)
	}
	t.Amount = Money{Amount: v.amount(m.Amount, c, err == nil), Currency: c}
	t.Timestamp = normaliseTime(m.Timestamp)
	if t.Timestamp.After(m.ReceivedAt.Add(MaxFutureSkew)) {
		v.fail(FieldTimestamp, CodeInFuture, "must not be more than %s after the receipt", MaxFutureSkew)
	}
	if len(v.errs) > 0 {
		return Transaction{}, time.Time{}, &ValidationError{Errors: v.sorted()}
	}
	return t, m.ReceivedAt.UTC(), nil
}
