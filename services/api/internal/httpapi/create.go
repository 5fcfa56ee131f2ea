package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/internal/wire"
)

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	release, ok := h.inflight.admit(w, r, MaxBodyBytes)
	if !ok {
		return
	}
	defer release()
	body, err := readBody(w, r, MaxBodyBytes)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tx, err := h.parse(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	tenant := tenantOf(r)
	res, err := h.txs.Accept(ctx, tenant, tx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status, resource, err := h.outcome(r, tx.ID, res)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/transactions/"+url.PathEscape(tx.ID))
	writeJSON(w, status, resource)
}

// batchResult is the answer for one transaction of a batch: the status it
// would have had alone, and its resource or its problem.
type batchResult struct {
	Status      int               `json:"status"`
	Transaction *wire.Transaction `json:"transaction,omitempty"`
	Problem     *problem          `json:"problem,omitempty"`
}

// createBatch accepts up to MaxBatch transactions, a JSON array, in one
// database round trip; each gets the result it would have had alone, in
// request order. The request as a whole fails only when its body is not an
// array of at most MaxBatch elements, or when PostgreSQL is unreachable.
func (h *Handler) createBatch(w http.ResponseWriter, r *http.Request) {
	release, ok := h.inflight.admit(w, r, MaxBatchBodyBytes)
	if !ok {
		return
	}
	defer release()
	body, err := readBody(w, r, MaxBatchBodyBytes)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	raws, err := splitArray(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	results := make([]batchResult, len(raws))
	var txs []txmodel.Transaction
	var at []int // the index in results of each of txs
	for i, raw := range raws {
		tx, err := h.parse(raw)
		if err != nil {
			results[i] = failed(err)
			continue
		}
		txs = append(txs, tx)
		at = append(at, i)
	}
	if len(txs) > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		defer cancel()
		tenant := tenantOf(r)
		accepted, err := h.txs.AcceptBatch(ctx, tenant, txs)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for j, res := range accepted {
			status, resource, err := h.outcome(r, txs[j].ID, res)
			if err != nil {
				results[at[j]] = failed(err)
				continue
			}
			results[at[j]] = batchResult{Status: status, Transaction: &resource}
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Results []batchResult `json:"results"`
	}{results})
}

// failed is the batch result of one transaction that err refused.
func failed(err error) batchResult {
	p := problemFor(err)
	return batchResult{Status: p.Status, Problem: &p}
}

// parse reads one transaction from body, counting what makes it invalid.
func (h *Handler) parse(body []byte) (txmodel.Transaction, error) {
	tx, err := txmodel.ParseTransaction(body, h.now())
	var ve *txmodel.ValidationError
	switch {
	case errors.As(err, &ve):
		h.metrics.reject(ve.Errors)
	case err != nil:
		h.metrics.malformed.Inc()
	}
	return tx, err
}

// outcome is the status and resource of what the store did with a
// transaction of r's tenant, or the error of a conflict, and counts and
// logs it (at debug level: one line per transaction).
func (h *Handler) outcome(r *http.Request, id string, res transactions.Result) (int, wire.Transaction, error) {
	hm, who := h.metrics, auth.PrincipalOf(r.Context())
	tenant := tenantOf(r)
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.DebugContext(r.Context(), "transaction stored", "tenant", tenant, "api_key", who.Key, "transaction_id", id, "outcome", res.Outcome.String())
	}
	switch res.Outcome {
	case transactions.Created:
		hm.inc(hm.accepted, "transactions_accepted_total", tenant)
		return http.StatusCreated, wire.NewTransaction(res.Record), nil
	case transactions.Replayed:
		hm.inc(hm.replayed, "transactions_replayed_total", tenant)
		return http.StatusOK, wire.NewTransaction(res.Record), nil
	default:
		hm.inc(hm.conflicts, "transactions_conflicts_total", tenant)
		return http.StatusConflict, wire.Transaction{}, fmt.Errorf("transaction %s exists with other content; a retry must repeat the same fields: %w",
			strconv.Quote(id), transactions.ErrConflict)
	}
}

// splitArray returns the raw elements of a JSON array of 1 to MaxBatch
// elements.
func splitArray(body []byte) ([]json.RawMessage, error) {
	malformed := func(format string, args ...any) error {
		return &requestError{problem{Status: http.StatusBadRequest, Type: txmodel.ProblemMalformedBody, Title: "Malformed body", Detail: fmt.Sprintf(format, args...)}}
	}
	if !utf8.Valid(body) {
		return nil, malformed("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, malformed("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, malformed("want a JSON array of transactions")
	}
	var raws []json.RawMessage
	for dec.More() && len(raws) <= MaxBatch { // one too many is enough to refuse it
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, malformed("element %d: %v", len(raws), err)
		}
		raws = append(raws, raw)
	}
	if len(raws) > MaxBatch {
		return nil, errBatchSize(len(raws)) // too many: said without reading on
	}
	if _, err := dec.Token(); err != nil {
		return nil, malformed("unterminated array: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("data after the JSON array")
	}
	if len(raws) == 0 {
		return nil, errBatchSize(0)
	}
	return raws, nil
}

// errBatchSize refuses a batch of n transactions, n being 0 or more than
// MaxBatch (counted no further than MaxBatch+1).
func errBatchSize(n int) error {
	return &requestError{problem{
		Status: http.StatusUnprocessableEntity, Type: txmodel.ProblemInvalidFields, Title: "Invalid batch",
		Detail: "the batch is empty or too large",
		Errors: []txmodel.FieldError{{
			Field: "(body)", Code: txmodel.CodeInvalidValue,
			Message: fmt.Sprintf("a batch holds 1 to %d transactions, got %d", MaxBatch, n),
		}},
	}}
}

// readBody checks the Content-Type and reads at most limit bytes of the
// body.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		return nil, errMediaType
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength, limit)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errTooLarge(limit)
	case err != nil:
		return nil, errUnreadable
	}
	return body, nil
}

// readAll reads body, of contentLength bytes when that is known and
// within limit: into one buffer of that size, not one grown by doubling
// (a batch of a hundred transactions would otherwise be copied six
// times). net/http's body of a request with a Content-Length ends there.
func readAll(body io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength < 0 || contentLength > limit {
		return io.ReadAll(body)
	}
	buf := make([]byte, contentLength)
	if _, err := io.ReadFull(body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || (len(mt) > 5 && mt[len(mt)-5:] == "+json")
}
