package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
	"github.com/txpersister/txpersister/services/api/internal/wire"
)

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	// The router matches the encoded path, so an id holding "/" (sent as
	// %2F, as Location writes it) stays one path segment.
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil {
		h.fail(w, r, errBadPathID)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	rec, err := h.txs.Get(ctx, tenantOf(r), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.NewTransaction(rec))
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
