package txmodel_test

import (
	"encoding/json"
	"errors"
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
		"not JSON":            {`nope`, txmodel.ErrMalformed},
		"no items":            {`{"version": 1, "items": []}`, txmodel.ErrMalformed},
		"another version":     {`{"version": 2, "items": [` + item + `]}`, txmodel.ErrUnsupportedVersion},
		"an unknown field":    {`{"version": 1, "items": [` + item + `], "x": 1}`, txmodel.ErrMalformed},
		"no message id":       {`{"version": 1, "items": [{"message": {}}]}`, txmodel.ErrMalformed},
		"a message not JSON":  {`{"version": 1, "items": [{"message_id": "a", "message": "x"}]}`, txmodel.ErrMalformed},
		"two values":          {`{"version": 1, "items": [` + item + `]} {}`, txmodel.ErrMalformed},
		"too many items":      {`{"version": 1, "items": [` + strings.Repeat(item+",", txmodel.MaxBatchItems) + item + `]}`, txmodel.ErrMalformed},
		"a single message":    {`{"version": 2, "tenant": "a", "transaction_id": "t"}`, txmodel.ErrMalformed},
		"items not an array":  {`{"version": 1, "items": {}}`, txmodel.ErrMalformed},
		"an item not objects": {`{"version": 1, "items": [1]}`, txmodel.ErrMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := txmodel.DecodeBatch([]byte(tt.body)); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := txmodel.EncodeBatch([]txmodel.BatchItem{{MessageID: "a", Body: json.RawMessage(`[1]`)}}); err == nil {
		t.Error("EncodeBatch accepted an item whose message is not an object")
	}
	if _, err := txmodel.EncodeBatch(nil); err == nil {
		t.Error("EncodeBatch accepted no items")
	}
}
