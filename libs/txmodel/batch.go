package txmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// BatchMessageType is the AMQP type of a batch message: many queue
// messages in one AMQP message, so that the hand-over from the api to the
// converter costs one publish, one confirm and one ack for many
// transactions. A reader tells a batch from a single Message by this type;
// a single Message keeps MessageType, so a converter that knows batches
// reads both, and one that does not refuses a batch rather than misread
// it.
const BatchMessageType = "txpersister.transaction-batch.v1"

// BatchVersion is the version of the batch envelope this code writes.
const BatchVersion = 1

// MaxBatchItems bounds the items of a batch a reader accepts.
const MaxBatchItems = 10_000

// BatchItem is one message of a batch: its body (a Message, as
// EncodeMessage writes it), its id (the transaction's, the AMQP message id
// it would have had alone) and its headers, among them its own W3C trace
// context: each transaction of a batch keeps its own trace.
type BatchItem struct {
	MessageID string            `json:"message_id"`
	Headers   map[string]string `json:"headers,omitempty"`
	Body      json.RawMessage   `json:"message"`
}

type batch struct {
	Version int         `json:"version"`
	Items   []BatchItem `json:"items"`
}

// EncodeBatch returns the batch message of items, in their order. Each
// item's Body must be one JSON object (a Message).
func EncodeBatch(items []BatchItem) ([]byte, error) {
	if len(items) == 0 || len(items) > MaxBatchItems {
		return nil, fmt.Errorf("encode batch: %d items, want 1 to %d", len(items), MaxBatchItems)
	}
	for i, it := range items {
		if !json.Valid(it.Body) || !bytes.HasPrefix(bytes.TrimSpace(it.Body), []byte("{")) {
			return nil, fmt.Errorf("encode batch: item %d (%s): the message is not a JSON object", i, it.MessageID)
		}
	}
	b, err := json.Marshal(batch{Version: BatchVersion, Items: items})
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	return b, nil
}

// DecodeBatch reads the items of a batch message; it does not read the
// items' messages (DecodeMessage does, one by one, so that one bad item
// fails alone). It returns an error wrapping ErrMalformed for a body that
// is not a batch of 1 to MaxBatchItems items each with a message id and
// a JSON object for message, or whose version is not BatchVersion
// (ErrUnsupportedVersion).
func DecodeBatch(body []byte) ([]BatchItem, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var b batch
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: batch: %s", ErrMalformed, jsonErrorText(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: batch: more than one JSON value", ErrMalformed)
	}
	if b.Version != BatchVersion {
		return nil, fmt.Errorf("%w: batch version %d (this reader knows %d)", ErrUnsupportedVersion, b.Version, BatchVersion)
	}
	if len(b.Items) == 0 || len(b.Items) > MaxBatchItems {
		return nil, fmt.Errorf("%w: batch of %d items, want 1 to %d", ErrMalformed, len(b.Items), MaxBatchItems)
	}
	for i, it := range b.Items {
		if it.MessageID == "" {
			return nil, fmt.Errorf("%w: batch item %d has no message_id", ErrMalformed, i)
		}
		if !bytes.HasPrefix(bytes.TrimSpace(it.Body), []byte("{")) {
			return nil, fmt.Errorf("%w: batch item %d (%s): message is not a JSON object", ErrMalformed, i, truncate(it.MessageID, 64))
		}
	}
	return b.Items, nil
}
