package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// finalAfter is a Transactions whose one transaction is received for
// the first n reads, and processed after.
type finalAfter struct {
	fakeTransactions
	n, reads int
}

func (f *finalAfter) Get(ctx context.Context, tenant, id string) (transactions.Record, error) {
	rec, err := f.fakeTransactions.Get(ctx, tenant, id)
	f.reads++
	if err == nil && f.reads > f.n {
		rec.Conversion = &txmodel.Conversion{TransactionID: id, Status: txmodel.StatusFailed, FailureReason: "no rate", ProcessedAt: now}
	}
	return rec, err
}

func TestGetWaitsForTheTransactionToBeFinal(t *testing.T) {
	for _, tt := range []struct {
		query     string
		finalAt   int // the read from which it is final
		code      int
		status    string
		wantReads int // -1: one or more (how many depends on the machine's speed)
	}{
		{"", 3, http.StatusOK, "received", 1},
		{"?wait=0s", 3, http.StatusOK, "received", 1},
		{"?wait=30s", 3, http.StatusOK, "failed", 4},
		{"?wait=50ms", 1000, http.StatusOK, "received", -1}, // the wait ends first
		{"?wait=31s", 0, http.StatusBadRequest, "", 0},
		{"?wait=-1s", 0, http.StatusBadRequest, "", 0},
		{"?wait=10", 0, http.StatusBadRequest, "", 0},
	} {
		f := &finalAfter{n: tt.finalAt}
		f.recs = map[string]transactions.Record{}
		h := newHandler(f)
		if rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", original); rec.Code != http.StatusCreated {
			t.Fatalf("create: %d %s", rec.Code, rec.Body)
		}
		f.reads = 0
		rec := do(t, h, http.MethodGet, "/v1/transactions/tx-1"+tt.query, "", "")
		if tt.wantReads == -1 {
			tt.wantReads = max(f.reads, 1)
		}
		var body struct{ Status string }
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tt.code || body.Status != tt.status || f.reads != tt.wantReads {
			t.Errorf("GET%s: %d %q after %d reads, want %d %q after %d (%s)", tt.query, rec.Code, body.Status, f.reads, tt.code, tt.status, tt.wantReads, rec.Body)
		}
	}
}
