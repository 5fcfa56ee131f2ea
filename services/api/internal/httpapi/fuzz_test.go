package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/internal/wire"
)

// FuzzCreate drives the create endpoints, the single one on both paths and
// the batch one, with arbitrary bodies and content types through a fake use
// case that works for every transaction the queue can carry: whatever a client sends, the answer is never a 5xx
// or a panic, and every non-2xx answer is an RFC 9457 problem whose status is
// the response's.
func FuzzCreate(f *testing.F) {
	f.Add(uint8(0), "application/json", []byte(original))
	f.Add(uint8(1), "", []byte(original))
	f.Add(uint8(2), "application/json; charset=utf-8", []byte("["+original+`,"x",{"amount":1,"amount":1000}]`))
	f.Add(uint8(0), "text/plain", []byte(original))
	f.Add(uint8(0), "application/problem+json", []byte(`{"transaction_id": "t", "user_id": "u", "amount": 1e400, "currency": "USD", "timestamp": "2024-09-11T00:00:00"}`))
	f.Add(uint8(0), "application/json", []byte(`{"amount": NaN}`))
	f.Add(uint8(0), "application/json", []byte("{\"transaction_id\": \"\xff\"}"))
	f.Add(uint8(2), "application/json", []byte(`[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`))
	f.Add(uint8(2), "application/json", []byte(`[]`))
	f.Add(uint8(0), "application/json;;", []byte(`{}`))
	f.Add(uint8(0), "application/json", []byte(`{"transaction_id": "t", "user_id": "u", "amount": "0.01", "currency": "usd", "timestamp": "0000-01-01T00:00:00+01:00"}`))

	fake := &fakeTransactions{}
	h := newHandler(encodingTransactions{fake})
	paths := []string{"/v1/transactions", "/transaction", "/v1/transactions/batch"}
	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte) {
		fake.recs = map[string]transactions.Record{}
		path := paths[int(route)%len(paths)]
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("POST %s (%q): %d %s", path, contentType, rec.Code, rec.Body)
		}
		if rec.Code < 200 || rec.Code > 299 {
			checkProblem(t, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes())
			return
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%d with Content-Type %q", rec.Code, ct)
		}
		if !strings.HasSuffix(path, "/batch") {
			var res wire.Transaction
			if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || res.TransactionID == "" {
				t.Fatalf("%d answer is not a transaction (%v): %s", rec.Code, err, rec.Body)
			}
			if rec.Header().Get("Location") == "" {
				t.Fatalf("%d without Location", rec.Code)
			}
			return
		}
		var out struct {
			Results []struct {
				Status      int               `json:"status"`
				Transaction *wire.Transaction `json:"transaction"`
				Problem     json.RawMessage   `json:"problem"`
			} `json:"results"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out.Results) == 0 || len(out.Results) > MaxBatch {
			t.Fatalf("batch answer (%v): %s", err, rec.Body)
		}
		for i, r := range out.Results {
			switch {
			case r.Status >= 500 || r.Status < 200:
				t.Fatalf("result %d: status %d", i, r.Status)
			case r.Status <= 299:
				if r.Transaction == nil || r.Problem != nil {
					t.Fatalf("result %d: %d without exactly a transaction: %s", i, r.Status, rec.Body)
				}
			default:
				if r.Transaction != nil {
					t.Fatalf("result %d: %d with a transaction", i, r.Status)
				}
				checkProblem(t, r.Status, "application/problem+json", r.Problem)
			}
		}
	})
}

// checkProblem fails t unless body is a problem for status.
func checkProblem(t *testing.T, status int, contentType string, body []byte) {
	t.Helper()
	if contentType != "application/problem+json" {
		t.Fatalf("%d with Content-Type %q: %s", status, contentType, body)
	}
	var p problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%d body is not a problem (%v): %s", status, err, body)
	}
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Fatalf("problem %+v for a %d", p, status)
	}
}

// encodingTransactions is fakeTransactions that, like the real use case,
// encodes each transaction as its queue message before it stores it, so a
// transaction the handler accepts but the queue cannot carry shows as the
// 500 it would be.
type encodingTransactions struct{ *fakeTransactions }

func (e encodingTransactions) Accept(ctx context.Context, tenant string, tx txmodel.Transaction) (transactions.Result, error) {
	if _, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: tenant, Transaction: tx, ReceivedAt: now}); err != nil {
		return transactions.Result{}, err
	}
	return e.fakeTransactions.Accept(ctx, tenant, tx)
}

func (e encodingTransactions) AcceptBatch(ctx context.Context, tenant string, txs []txmodel.Transaction) ([]transactions.Result, error) {
	for _, tx := range txs {
		if _, err := txmodel.EncodeMessage(txmodel.Envelope{Tenant: tenant, Transaction: tx, ReceivedAt: now}); err != nil {
			return nil, err
		}
	}
	return e.fakeTransactions.AcceptBatch(ctx, tenant, txs)
}
