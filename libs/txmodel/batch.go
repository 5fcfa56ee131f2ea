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

	"github.com/go-json-experiment/json/jsontext"
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
// a JSON object for message, that names a field it does not know, names
// one twice or in another case, or whose version is not BatchVersion
// (ErrUnsupportedVersion).
func DecodeBatch(body []byte) ([]BatchItem, error) {
	malformed := func(err error) error { return fmt.Errorf("%w: batch: %s", ErrMalformed, jsonErrorText(err)) }
	dec := getDecoder(body, batchDecoding)
	defer messageDecoders.Put(dec)
	var b batch
	err := readObject(dec, func(name string) error {
		switch name {
		case "version":
			return readInt(dec, name, &b.Version)
		case "items":
			return readItems(dec, &b.Items)
		default:
			return unknownField(dec, name)
		}
	})
	if err != nil {
		return nil, malformed(err)
	}
	switch _, err := dec.ReadValue(); {
	case err == nil:
		return nil, fmt.Errorf("%w: batch: more than one JSON value", ErrMalformed)
	case !errors.Is(err, io.EOF):
		return nil, malformed(err)
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
		if len(it.Body) == 0 || it.Body[0] != '{' {
			return nil, fmt.Errorf("%w: batch item %d (%s): message is not a JSON object", ErrMalformed, i, truncate(it.MessageID, 64))
		}
	}
	return b.Items, nil
}

// batchDecoding is how DecodeBatch reads JSON: a name given twice is
// refused, and invalid UTF-8 in a string reads as U+FFFD.
var batchDecoding = []jsontext.Options{jsontext.AllowDuplicateNames(false), jsontext.AllowInvalidUTF8(true)}

// readItems reads the array of a batch's items into items; null is none.
// It refuses more than MaxBatchItems without reading past them.
func readItems(dec *jsontext.Decoder, items *[]BatchItem) error {
	switch k := dec.PeekKind(); k {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '[':
	default:
		return wrongKind(dec, "items", "an array", k)
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		if len(*items) == MaxBatchItems {
			return fmt.Errorf("more than %d items", MaxBatchItems)
		}
		var it BatchItem
		err := readObject(dec, func(name string) error {
			switch name {
			case "message_id":
				return readString(dec, name, &it.MessageID)
			case "headers":
				return readHeaders(dec, &it.Headers)
			case "message":
				v, err := dec.ReadValue()
				if err != nil {
					return err
				}
				it.Body = json.RawMessage(slices.Clone(v))
				return nil
			default:
				return unknownField(dec, name)
			}
		})
		if err != nil {
			return fmt.Errorf("item %d: %w", len(*items), err)
		}
		*items = append(*items, it)
	}
	_, err := dec.ReadToken() // the closing bracket, or what stands in its place
	return err
}

// readHeaders reads an object of string values into h; null is none.
func readHeaders(dec *jsontext.Decoder, h *map[string]string) error {
	if dec.PeekKind() == 'n' {
		_, err := dec.ReadToken()
		return err
	}
	return readObject(dec, func(name string) error {
		var v string
		if err := readString(dec, "headers."+name, &v); err != nil {
			return err
		}
		if *h == nil {
			*h = make(map[string]string, 2)
		}
		(*h)[name] = v
		return nil
	})
}

// readObject reads a JSON object from dec, calling field with each name;
// field must read the name's value. A value that is not an object is a
// notObjectError, once its syntax is checked.
func readObject(dec *jsontext.Decoder, field func(name string) error) error {
	if k := dec.PeekKind(); k != '{' {
		if _, err := dec.ReadValue(); err != nil {
			return err
		}
		return notObjectError{k}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		if err := field(tok.String()); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken() // the closing brace, or what stands in its place
	return err
}

// notObjectError is readObject's error for a value of another kind; it
// is errNotObject, which a caller tests for without the allocation an
// errors.As target would cost.
type notObjectError struct{ kind jsontext.Kind }

var errNotObject = errors.New("not a JSON object")

func (e notObjectError) Error() string { return "field value: want an object, not " + kindName(e.kind) }

func (e notObjectError) Is(target error) bool { return target == errNotObject }

// readString reads a JSON string into s; null leaves s as it is.
func readString(dec *jsontext.Decoder, name string, s *string) error {
	switch k := dec.PeekKind(); k {
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		*s = tok.String()
		return nil
	case 'n':
		_, err := dec.ReadToken()
		return err
	default:
		return wrongKind(dec, name, "a string", k)
	}
}

// readInt reads a JSON number that is an integer into n; null leaves n as
// it is.
func readInt(dec *jsontext.Decoder, name string, n *int) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case 'n':
		return nil
	case '0':
		i, err := strconv.ParseInt(string(v), 10, 0)
		if err != nil {
			return fmt.Errorf("field %s: %s is not an integer of this machine's int", name, truncate(string(v), 64))
		}
		*n = int(i)
		return nil
	default:
		return fmt.Errorf("field %s: want a number, not %s", name, kindName(v.Kind()))
	}
}

// wrongKind reads the value of kind k that stands where want was, and
// says so; a syntax error in it is the error.
func wrongKind(dec *jsontext.Decoder, name, want string, k jsontext.Kind) error {
	if _, err := dec.ReadValue(); err != nil {
		return err
	}
	return fmt.Errorf("field %s: want %s, not %s", name, want, kindName(k))
}

// unknownField refuses a field; a syntax error before it is the error.
func unknownField(dec *jsontext.Decoder, name string) error {
	if err := dec.SkipValue(); err != nil {
		return err
	}
	return fmt.Errorf("unknown field %q", truncate(name, 64))
}
