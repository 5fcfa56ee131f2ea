package txmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// MessageVersion is the version of the queue message this code writes.
// A reader accepts every version up to it. Version 2 added the tenant;
// a message of version 1 belongs to DefaultTenant.
const MessageVersion = 2

// MessageContentType is the AMQP content type of a Message.
const MessageContentType = "application/json"

// MessageType is the AMQP type of a Message, naming its schema.
const MessageType = "txpersister.transaction.v1"

// MessageTenantHeader is the AMQP header that names the tenant of a
// Message besides its body, so that a message whose body cannot be read
// still says whose transaction it is about.
const MessageTenantHeader = "txpersister-tenant"

// Message is the queue message that hands a stored transaction from the api
// to the converter: the tenant it belongs to, the transaction as
// normalised, and when the api received it. It is versioned JSON; amounts
// travel as decimal strings with the currency's minor digits, never as
// JSON numbers.
type Message struct {
	Version       int       `json:"version"`
	Tenant        string    `json:"tenant,omitempty"`
	TransactionID string    `json:"transaction_id"`
	UserID        string    `json:"user_id"`
	Amount        string    `json:"amount"`
	Currency      string    `json:"currency"`
	Timestamp     time.Time `json:"timestamp"`
	ReceivedAt    time.Time `json:"received_at"`
}

// Envelope is what a queue message carries: a transaction, the tenant it
// belongs to (transaction ids are unique per tenant), and when the api
// received it.
type Envelope struct {
	Tenant      string
	Transaction Transaction
	ReceivedAt  time.Time
}

// EncodeMessage returns the queue message of e, in the current version.
// It refuses a tenant CheckTenant refuses.
func EncodeMessage(e Envelope) ([]byte, error) {
	t := e.Transaction
	if err := CheckTenant(e.Tenant); err != nil {
		return nil, fmt.Errorf("encode message for transaction %s: %w", t.ID, err)
	}
	b, err := json.Marshal(Message{
		Version:       MessageVersion,
		Tenant:        e.Tenant,
		TransactionID: t.ID,
		UserID:        t.UserID,
		Amount:        t.Amount.String(),
		Currency:      t.Amount.Currency.Code(),
		Timestamp:     t.Timestamp.UTC(),
		ReceivedAt:    e.ReceivedAt.UTC(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode message for transaction %s: %w", t.ID, err)
	}
	return b, nil
}

// DecodeMessage decodes a queue message and validates its transaction with
// the same rules as the api, so the converter never trusts the queue blindly.
// The timestamp may lie at most MaxFutureSkew after the receipt. A message
// of version 1 has no tenant and belongs to DefaultTenant; from version 2
// the tenant is required.
//
// It returns an error wrapping ErrMalformed for a body that is not a
// message (its received_at missing or outside the years 0001 to 9999,
// its tenant missing or not a tenant's name), ErrUnsupportedVersion for a
// version missing or outside 1 to MessageVersion, and a *ValidationError
// for a transaction that breaks the rules.
func DecodeMessage(body []byte) (Envelope, error) {
	m, err := decodeMessage(body)
	if err != nil {
		return Envelope{}, err
	}
	if m.Version < 1 || m.Version > MessageVersion {
		return Envelope{}, fmt.Errorf("%w: %d (this reader knows 1 to %d)", ErrUnsupportedVersion, m.Version, MessageVersion)
	}
	switch {
	case m.Version == 1 && m.Tenant != "":
		return Envelope{}, fmt.Errorf("%w: a message of version 1 has no tenant", ErrMalformed)
	case m.Version == 1:
		m.Tenant = DefaultTenant
	default:
		if err := CheckTenant(m.Tenant); err != nil {
			return Envelope{}, fmt.Errorf("%w: message: %w", ErrMalformed, err)
		}
	}
	if m.ReceivedAt.IsZero() {
		return Envelope{}, fmt.Errorf("%w: message has no received_at", ErrMalformed)
	}
	if !inRange(m.ReceivedAt) {
		return Envelope{}, fmt.Errorf("%w: received_at %s lies outside the years %s in UTC", ErrMalformed, m.ReceivedAt.UTC(), yearRange)
	}
	t, err := m.transaction()
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{Tenant: m.Tenant, Transaction: t, ReceivedAt: m.ReceivedAt.UTC()}, nil
}

// transaction validates the transaction m carries.
func (m Message) transaction() (Transaction, error) {
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
	switch {
	case m.Timestamp.IsZero():
		v.fail(FieldTimestamp, CodeRequired, "is required")
	case !inRange(t.Timestamp):
		v.fail(FieldTimestamp, CodeInvalidValue, "lies outside the years %s in UTC", yearRange)
	case t.Timestamp.After(m.ReceivedAt.Add(MaxFutureSkew)):
		v.fail(FieldTimestamp, CodeInFuture, "must not be more than %s after the receipt", MaxFutureSkew)
	}
	if len(v.errs) > 0 {
		return Transaction{}, &ValidationError{Errors: v.sorted()}
	}
	return t, nil
}

// messageFields are the JSON names of Message's fields.
var messageFields = [...]string{"version", "tenant", FieldTransactionID, FieldUserID, FieldAmount, FieldCurrency, FieldTimestamp, "received_at"}

// decodeMessage reads a Message from body in one pass, as json.Unmarshal
// would, but refuses with ErrMalformed a body that is not one JSON object,
// names a field twice, or names one of Message's fields in another case
// ("Amount", or "tranſaction_id" with a long s). encoding/json would
// quietly let the last copy win and match names regardless of case; a
// message this code did not write must not be read one way here and
// another way elsewhere. Fields it does not know are skipped.
//
// It reads with jsontext, not encoding/json's Decoder: that one allocates
// an error it then drops for every value it reads (golang/go#56299),
// which made three quarters of the converter's decoding allocations.
func decodeMessage(body []byte) (Message, error) {
	var m Message
	dec := getDecoder(body, messageDecoding)
	defer messageDecoders.Put(dec)
	var seen [len(messageFields)]bool
	var seenOther map[string]bool // fields it does not know, made on the first
	err := readObject(dec, func(key string) error {
		for i, f := range messageFields {
			if key == f {
				if seen[i] {
					return fmt.Errorf("%w: message: field %q given more than once", ErrMalformed, key)
				}
				seen[i] = true
				return m.read(dec, i)
			}
			if strings.EqualFold(key, f) {
				return fmt.Errorf("%w: message: field %q is not %q", ErrMalformed, truncate(key, 64), f)
			}
		}
		if seenOther[key] {
			return fmt.Errorf("%w: message: field %q given more than once", ErrMalformed, truncate(key, 64))
		}
		if seenOther == nil {
			seenOther = map[string]bool{}
		}
		seenOther[key] = true
		return dec.SkipValue()
	})
	switch {
	case errors.Is(err, errNotObject):
		return Message{}, fmt.Errorf("%w: message: want a JSON object", ErrMalformed)
	case errors.Is(err, ErrMalformed):
		return Message{}, err
	case err != nil:
		return Message{}, fmt.Errorf("%w: message: %s", ErrMalformed, jsonErrorText(err))
	}
	switch _, err := dec.ReadValue(); {
	case err == nil:
		return Message{}, fmt.Errorf("%w: message: more than one JSON value", ErrMalformed)
	case !errors.Is(err, io.EOF):
		return Message{}, fmt.Errorf("%w: message: %s", ErrMalformed, jsonErrorText(err))
	}
	return m, nil
}

// messageDecoding is how decodeMessage reads JSON: duplicate names are
// its own to refuse (it says which), and invalid UTF-8 in a string reads
// as U+FFFD, as encoding/json reads it.
var messageDecoding = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// messageDecoders keeps decoders for reuse; getDecoder takes one, and
// its caller puts it back.
var messageDecoders = sync.Pool{New: func() any { return new(jsontext.Decoder) }}

// getDecoder returns a decoder from messageDecoders reading body in
// place (a bytes.Buffer is not copied) with opts.
func getDecoder(body []byte, opts []jsontext.Options) *jsontext.Decoder {
	dec := messageDecoders.Get().(*jsontext.Decoder)
	dec.Reset(bytes.NewBuffer(body), opts...)
	return dec
}

// read decodes the next value from dec into the field of m numbered as in
// messageFields, as encoding/json decodes into Message: a null leaves the
// field as it is; a number or a string where the other is wanted is an
// error; times are read by time.Time's UnmarshalJSON.
func (m *Message) read(dec *jsontext.Decoder, field int) error {
	name := messageFields[field]
	switch field {
	case 0:
		return readInt(dec, name, &m.Version)
	case 1:
		return readString(dec, name, &m.Tenant)
	case 2:
		return readString(dec, name, &m.TransactionID)
	case 3:
		return readString(dec, name, &m.UserID)
	case 4:
		return readString(dec, name, &m.Amount)
	case 5:
		return readString(dec, name, &m.Currency)
	}
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	t := &m.Timestamp
	if field == 7 {
		t = &m.ReceivedAt
	}
	if err := t.UnmarshalJSON(v); err != nil {
		return fmt.Errorf("field %s: %w", name, err)
	}
	return nil
}

// kindName names a JSON kind in an error.
func kindName(k jsontext.Kind) string {
	switch k {
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	default:
		return "invalid JSON"
	}
}
