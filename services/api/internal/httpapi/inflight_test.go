package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// heldTransactions is a fakeTransactions whose AcceptBatch waits for
// release once it has said so on entered: a batch request held in
// flight.
type heldTransactions struct {
	*fakeTransactions
	entered chan struct{}
	release chan struct{}
}

func (f *heldTransactions) AcceptBatch(ctx context.Context, tenant string, txs []txmodel.Transaction) ([]transactions.Result, error) {
	f.entered <- struct{}{}
	<-f.release
	return f.fakeTransactions.AcceptBatch(ctx, tenant, txs)
}

func newLimited(t *testing.T, wait time.Duration) (*Handler, *heldTransactions, *telemetry.Metrics) {
	t.Helper()
	txs := &heldTransactions{
		fakeTransactions: &fakeTransactions{recs: map[string]transactions.Record{}},
		entered:          make(chan struct{}, 1), release: make(chan struct{}),
	}
	m := telemetry.NewMetrics("test_")
	// A size below the largest batch body is raised to it.
	h := New(txs, slog.New(slog.NewTextHandler(io.Discard, nil)), m, func() time.Time { return now }, time.Second,
		WithInflightLimit(1, wait))
	return h, txs, m
}

// holdAll sends a batch request of unknown length, which reserves the
// whole of the limit, and returns once it is held in AcceptBatch; the
// returned channel has its answer once txs.release is closed.
func holdAll(t *testing.T, h http.Handler, txs *heldTransactions) <-chan *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/transactions/batch", strings.NewReader("["+original+"]"))
	req.ContentLength = -1 // chunked: counted as the most a batch may be
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		done <- rec
	}()
	<-txs.entered
	return done
}

func metric(t *testing.T, m *telemetry.Metrics, name string) string {
	t.Helper()
	var b bytes.Buffer
	m.WritePrometheus(&b)
	for line := range strings.Lines(b.String()) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no metric %s in\n%s", name, b.String())
	return ""
}

// A request beyond the limit is refused with 503 and Retry-After, nothing
// of it stored, and counted; once the room is given back the same request
// is accepted.
func TestInflightLimitSheds(t *testing.T) {
	h, txs, m := newLimited(t, 0)
	held := holdAll(t, h, txs)
	if got := metric(t, m, "test_ingest_inflight_bytes"); got != "1048576" {
		t.Errorf("ingest_inflight_bytes while a batch of unknown length is held = %s, want 1048576", got)
	}

	single := `{"transaction_id": "tx-2", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00"}`
	rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", single)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), txmodel.ProblemUnavailable) {
		t.Errorf("beyond the limit: %d %v %s, want 503 with Retry-After and an unavailable problem", rec.Code, rec.Header(), rec.Body)
	}
	if rec := do(t, h, http.MethodPost, "/v1/transactions/batch", "application/json", "["+single+"]"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("a batch beyond the limit: %d, want 503", rec.Code)
	}
	if _, ok := txs.recs["default/tx-2"]; ok {
		t.Error("a refused transaction was stored")
	}
	if got := metric(t, m, "test_ingest_shed_total"); got != "2" {
		t.Errorf("ingest_shed_total = %s, want 2", got)
	}
	// Reads are not ingest: they go on.
	if rec := do(t, h, http.MethodGet, "/v1/transactions/tx-1", "", ""); rec.Code != http.StatusNotFound {
		t.Errorf("a read while ingest is full: %d, want 404 (not stored yet)", rec.Code)
	}

	close(txs.release)
	if rec := <-held; rec.Code != http.StatusOK {
		t.Errorf("the held batch: %d %s", rec.Code, rec.Body)
	}
	if got := metric(t, m, "test_ingest_inflight_bytes"); got != "0" {
		t.Errorf("ingest_inflight_bytes after = %s, want 0", got)
	}
	if rec := do(t, h, http.MethodPost, "/v1/transactions", "application/json", single); rec.Code != http.StatusCreated {
		t.Errorf("the retry: %d %s, want 201", rec.Code, rec.Body)
	}
}

// With a wait, a request beyond the limit waits for room and is then
// served.
func TestInflightLimitWaitsForRoom(t *testing.T) {
	h, txs, _ := newLimited(t, time.Hour)
	held := holdAll(t, h, txs)

	single := `{"transaction_id": "tx-2", "amount": 1, "currency": "USD", "user_id": "u", "timestamp": "2024-09-11T00:00:00"}`
	waiting := make(chan *httptest.ResponseRecorder, 1)
	go func() { waiting <- do(t, h, http.MethodPost, "/v1/transactions", "application/json", single) }()
	select {
	case rec := <-waiting:
		t.Fatalf("served while the limit was full: %d %s", rec.Code, rec.Body)
	case <-time.After(50 * time.Millisecond):
	}
	close(txs.release)
	<-held
	if rec := <-waiting; rec.Code != http.StatusCreated {
		t.Errorf("after the room was given back: %d %s, want 201", rec.Code, rec.Body)
	}
}

// A client that goes away while waiting gets nothing written, and is not
// counted as shed: the api did not refuse it.
func TestInflightLimitClientGone(t *testing.T) {
	h, txs, m := newLimited(t, time.Hour)
	held := holdAll(t, h, txs)

	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/transactions", strings.NewReader(original))
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { h.ServeHTTP(rec, req); close(done) }()
	cancel()
	<-done
	if rec.Body.Len() != 0 {
		t.Errorf("answered a client that went away: %d %s", rec.Code, rec.Body)
	}
	if got := metric(t, m, "test_ingest_shed_total"); got != "0" {
		t.Errorf("ingest_shed_total = %s, want 0", got)
	}
	close(txs.release)
	<-held
}

func TestReadAllSizedByContentLength(t *testing.T) {
	body := strings.Repeat("x", 3000)
	got, err := readAll(strings.NewReader(body), int64(len(body)), 1<<20)
	if err != nil || string(got) != body || cap(got) != len(body) {
		t.Errorf("readAll with its length: %d bytes (cap %d), %v", len(got), cap(got), err)
	}
	if _, err := readAll(strings.NewReader(body[:10]), 20, 1<<20); err == nil {
		t.Error("a body shorter than its Content-Length was read without an error")
	}
	if got, err := readAll(strings.NewReader(body), -1, 1<<20); err != nil || string(got) != body {
		t.Errorf("readAll without a length: %d bytes, %v", len(got), err)
	}
}
