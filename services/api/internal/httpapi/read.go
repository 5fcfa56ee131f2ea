package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/internal/wire"
)

// MaxWait is the longest GET /v1/transactions/{id}?wait= may wait for a
// transaction to be final.
const MaxWait = 30 * time.Second

// The polls of a wait: the first soon (a conversion takes milliseconds),
// then less and less often.
const (
	firstPoll = 25 * time.Millisecond
	maxPoll   = 500 * time.Millisecond
)

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	// The router matches the encoded path, so an id holding "/" (sent as
	// %2F, as Location writes it) stays one path segment.
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, errBadPathID)
		return
	}
	var wait time.Duration
	if v := r.URL.Query().Get("wait"); v != "" {
		wait, err = time.ParseDuration(v)
		if err != nil || wait < 0 || wait > MaxWait {
			h.fail(w, r, errBadQuery([]txmodel.FieldError{{Field: "wait", Code: txmodel.CodeInvalidValue, Message: "a duration from 0s to 30s, such as 10s"}}))
			return
		}
	}
	deadline := time.Now().Add(wait)
	for poll := firstPoll; ; poll = min(2*poll, maxPoll) {
		ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
		rec, err := h.txs.Get(ctx, tenantOf(r), id)
		cancel()
		if err != nil {
			h.fail(w, r, err)
			return
		}
		left := time.Until(deadline)
		if rec.Status() != txmodel.StatusReceived || left <= 0 {
			writeJSON(w, http.StatusOK, wire.NewTransaction(rec))
			return
		}
		t := time.NewTimer(min(poll, left))
		select {
		case <-r.Context().Done(): // the client left
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	f, errs := parseFilter(r.URL.Query())
	if len(errs) > 0 {
		h.fail(w, r, errBadQuery(errs))
		return
	}
	f.Tenant = tenantOf(r)
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	page, err := h.txs.List(ctx, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := struct {
		Items      []wire.Transaction `json:"items"`
		NextCursor *string            `json:"next_cursor"`
	}{Items: make([]wire.Transaction, len(page.Records))}
	for i, rec := range page.Records {
		out.Items[i] = wire.NewTransaction(rec)
	}
	if page.Next != "" {
		out.NextCursor = &page.Next
	}
	writeJSON(w, http.StatusOK, out)
}

func parseFilter(q url.Values) (transactions.Filter, []txmodel.FieldError) {
	f := transactions.Filter{UserID: q.Get("user_id"), Cursor: q.Get("cursor"), Limit: defaultLimit}
	var errs []txmodel.FieldError
	if s := q.Get("status"); s != "" {
		st, ok := txmodel.ParseStatus(s)
		if !ok {
			errs = append(errs, txmodel.FieldError{Field: "status", Code: txmodel.CodeInvalidValue, Message: "must be received, processed or failed"})
		}
		f.Status = st
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			errs = append(errs, txmodel.FieldError{Field: "limit", Code: txmodel.CodeInvalidValue, Message: "must be a whole number from 1 to 500"})
		}
		f.Limit = n
	}
	return f, errs
}
