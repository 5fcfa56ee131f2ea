package txmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
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
// item's Body must be one JSON object (a Message); it is written as it is,
// not compacted. The envelope is written directly rather than through
// json.Marshal, which would scan and copy every body twice more (it
// validates and compacts a json.RawMessage): on the relay's path that was
// about 40 % of its CPU. Header keys are written in sorted order, so that
// the same items give the same bytes.
func EncodeBatch(items []BatchItem) ([]byte, error) {
	if len(items) == 0 || len(items) > MaxBatchItems {
		return nil, fmt.Errorf("encode batch: %d items, want 1 to %d", len(items), MaxBatchItems)
	}
	size := 32
	for i, it := range items {
		body := bytes.TrimSpace(it.Body)
		if len(body) == 0 || body[0] != '{' || !json.Valid(body) {
			return nil, fmt.Errorf("encode batch: item %d (%s): the message is not a JSON object", i, it.MessageID)
		}
		size += len(body) + len(it.MessageID) + 48
		for k, v := range it.Headers {
			size += len(k) + len(v) + 6
		}
	}
	b := make([]byte, 0, size)
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, BatchVersion, 10)
	b = append(b, `,"items":[`...)
	var keys []string
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"message_id":`...)
		b = appendJSONString(b, it.MessageID)
		if len(it.Headers) > 0 {
			keys = keys[:0]
			for k := range it.Headers {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			b = append(b, `,"headers":{`...)
			for j, k := range keys {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, k)
				b = append(b, ':')
				b = appendJSONString(b, it.Headers[k])
			}
			b = append(b, '}')
		}
		b = append(b, `,"message":`...)
		b = append(b, bytes.TrimSpace(it.Body)...)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	return b, nil
}

// appendJSONString appends s to b as a JSON string. Like encoding/json, it
// writes invalid UTF-8 as U+FFFD and escapes the control characters, the
// quote and the backslash, and also U+2028 and U+2029 (for JavaScript
// readers); it leaves <, > and & as they are.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += n
			continue
		}
		i += n
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
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
