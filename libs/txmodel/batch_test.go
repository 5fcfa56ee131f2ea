package txmodel_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/txmodel"
)

func TestBatchRoundTrip(t *testing.T) {
	var items []txmodel.BatchItem
	for _, id := range []string{"a", "b", "c"} {
		tx, err := txmodel.ParseTransaction([]byte(body(map[string]string{"transaction_id": `"` + id + `"`})), now)
		if err != nil {
			t.Fatal(err)
		}
		m, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: "acme", Transaction: tx, ReceivedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, txmodel.BatchItem{MessageID: id, Headers: map[string]string{"traceparent": "00-" + strings.Repeat(id, 32) + "-" + strings.Repeat("1", 16) + "-01"}, Body: m})
	}
	b, err := txmodel.EncodeBatch(items)
	if err != nil {
		t.Fatal(err)
	}
	got, err := txmodel.DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(items, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for i, it := range got {
		e, err := txmodel.DecodeMessage(it.Body)
		if err != nil || e.Transaction.ID != items[i].MessageID || e.Tenant != "acme" {
			t.Errorf("item %d: %+v, %v", i, e, err)
		}
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	item := `{"message_id": "a", "message": {"version": 2}}`
	for name, tt := range map[string]struct {
		body string
		want error
	}{
		"not JSON":                 {`nope`, txmodel.ErrMalformed},
		"no items":                 {`{"version": 1, "items": []}`, txmodel.ErrMalformed},
		"another version":          {`{"version": 2, "items": [` + item + `]}`, txmodel.ErrUnsupportedVersion},
		"an unknown field":         {`{"version": 1, "items": [` + item + `], "x": 1}`, txmodel.ErrMalformed},
		"no message id":            {`{"version": 1, "items": [{"message": {}}]}`, txmodel.ErrMalformed},
		"a message not JSON":       {`{"version": 1, "items": [{"message_id": "a", "message": "x"}]}`, txmodel.ErrMalformed},
		"two values":               {`{"version": 1, "items": [` + item + `]} {}`, txmodel.ErrMalformed},
		"too many items":           {`{"version": 1, "items": [` + strings.Repeat(item+",", txmodel.MaxBatchItems) + item + `]}`, txmodel.ErrMalformed},
		"a single message":         {`{"version": 2, "tenant": "a", "transaction_id": "t"}`, txmodel.ErrMalformed},
		"items not an array":       {`{"version": 1, "items": {}}`, txmodel.ErrMalformed},
		"an item not objects":      {`{"version": 1, "items": [1]}`, txmodel.ErrMalformed},
		"a field twice":            {`{"version": 1, "version": 1, "items": [` + item + `]}`, txmodel.ErrMalformed},
		"an item's field twice":    {`{"version": 1, "items": [{"message_id": "a", "message_id": "b", "message": {}}]}`, txmodel.ErrMalformed},
		"a field in another case":  {`{"version": 1, "Items": [` + item + `]}`, txmodel.ErrMalformed},
		"a header not a string":    {`{"version": 1, "items": [{"message_id": "a", "headers": {"h": 1}, "message": {}}]}`, txmodel.ErrMalformed},
		"a version not an integer": {`{"version": 1.0, "items": [` + item + `]}`, txmodel.ErrMalformed},
		"cut short":                {`{"version": 1, "items": [` + item, txmodel.ErrMalformed},
		"garbage after the items":  {`{"version": 1, "items": [` + item + `] x}`, txmodel.ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := txmodel.DecodeBatch([]byte(tt.body)); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	tooMany := `{"version": 1, "items": [` + strings.Repeat(item+",", txmodel.MaxBatchItems) + item + `]}`
	if _, err := txmodel.DecodeBatch([]byte(tooMany)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("more than %d items", txmodel.MaxBatchItems)) {
		t.Errorf("a batch of %d items: err = %v, want one that says more than %d", txmodel.MaxBatchItems+1, err, txmodel.MaxBatchItems)
	}
	if _, err := txmodel.EncodeBatch([]txmodel.BatchItem{{MessageID: "a", Body: json.RawMessage(`[1]`)}}); err == nil {
		t.Error("EncodeBatch accepted an item whose message is not an object")
	}
	if _, err := txmodel.EncodeBatch(nil); err == nil {
		t.Error("EncodeBatch accepted no items")
	}
}

// marshalBatch is the batch EncodeBatch wrote before it wrote the envelope
// itself: the reference its output must mean the same as.
func marshalBatch(t testing.TB, items []txmodel.BatchItem) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"version": txmodel.BatchVersion, "items": items})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncodeBatchMeansWhatMarshalWrites(t *testing.T) {
	odd := []string{
		"plain", `quote " and backslash \`, "new\nline\r\ttab", "\x00\x01\x1f\x7f",
		"<html> & more", "ünïcödé €", "\u2028 and \u2029", "invalid \xff\xfe utf-8", "half \xe2\x82",
		"emoji 😀",
	}
	var items []txmodel.BatchItem
	for i, s := range odd {
		q, _ := json.Marshal(s)
		items = append(items, txmodel.BatchItem{
			MessageID: s,
			Headers:   map[string]string{"traceparent": s, s + "k": "v", "z": s},
			Body:      json.RawMessage(fmt.Sprintf(" {\"version\": 2, \"n\": %d, \"s\": %s}\n", i, q)),
		})
	}
	items = append(items, txmodel.BatchItem{MessageID: "no headers", Body: json.RawMessage(`{}`)})
	got, err := txmodel.EncodeBatch(items)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(got) {
		t.Fatalf("EncodeBatch wrote invalid JSON: %s", got)
	}
	var gotV, wantV any
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(marshalBatch(t, items), &wantV); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantV, gotV); diff != "" {
		t.Errorf("EncodeBatch differs from json.Marshal (-want +got):\n%s", diff)
	}
	again, _ := txmodel.EncodeBatch(items)
	if !bytes.Equal(got, again) {
		t.Error("the same items encoded to different bytes")
	}
	if _, err := txmodel.DecodeBatch(got); err != nil {
		t.Errorf("DecodeBatch refused EncodeBatch's output: %v", err)
	}
}

func benchItems(b *testing.B) []txmodel.BatchItem {
	items := make([]txmodel.BatchItem, 100)
	for i := range items {
		id := fmt.Sprintf("bench-%08d", i)
		tx, err := txmodel.ParseTransaction([]byte(body(map[string]string{"transaction_id": `"` + id + `"`})), now)
		if err != nil {
			b.Fatal(err)
		}
		m, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: "acme", Transaction: tx, ReceivedAt: now})
		if err != nil {
			b.Fatal(err)
		}
		items[i] = txmodel.BatchItem{MessageID: id, Headers: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, Body: m}
	}
	return items
}

// BenchmarkEncodeBatch encodes a batch of 100 messages, as the relay does.
func BenchmarkEncodeBatch(b *testing.B) {
	items := benchItems(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := txmodel.EncodeBatch(items); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeBatchMarshal is the same batch the way EncodeBatch wrote
// it before (each body validated, then json.Marshal), for the comparison
// in docs/PERFORMANCE.md.
func BenchmarkEncodeBatchMarshal(b *testing.B) {
	items := benchItems(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, it := range items {
			if !json.Valid(it.Body) {
				b.Fatal("invalid")
			}
		}
		marshalBatch(b, items)
	}
}

// BenchmarkDecodeBatch reads a batch of 100 messages and each message in
// it, as the converter does.
func BenchmarkDecodeBatch(b *testing.B) {
	body, err := txmodel.EncodeBatch(benchItems(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		items, err := txmodel.DecodeBatch(body)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range items {
			if _, err := txmodel.DecodeMessage(it.Body); err != nil {
				b.Fatal(err)
			}
		}
	}
}
