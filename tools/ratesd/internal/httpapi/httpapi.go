// Package httpapi serves an ecb.Table over HTTP in the shape of the
// Frankfurter v1 API (/v1/latest, /v1/{date}, /v1/currencies) and of the
// exchangerate-api v4 API (/v4/latest/{base}), so that clients of either can
// run against local data.
package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/tools/ratesd/internal/ecb"
	"github.com/txpersister/txpersister/tools/ratesd/internal/refresh"
)

// Handler answers rate requests from a table.
type Handler struct {
	tables func() *ecb.Table
	status func() refresh.Status
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns the handler answering from the table tables returns at each
// request (it may change between requests, never during one); status,
// when not nil, tells /healthz what the reloads of the table did. log
// receives one debug line per request.
func New(tables func() *ecb.Table, status func() refresh.Status, log *slog.Logger) *Handler {
	h := &Handler{tables: tables, status: status, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /v1/currencies", h.currencies)
	h.mux.HandleFunc("GET /v1/latest", h.rates)
	h.mux.HandleFunc("GET /v1/{date}", h.rates)
	h.mux.HandleFunc("GET /v4/latest/{base}", h.v4Latest)
	// A path it does not serve is answered as Frankfurter answers one:
	// with its "status" as well, which its answer for a day or currency it
	// has no rate for lacks, so clients can tell a wrong URL from a
	// missing rate.
	h.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, struct {
			Status  int    `json:"status"`
			Message string `json:"message"`
		}{http.StatusNotFound, "not found"})
	})
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	h.mux.ServeHTTP(sw, r)
	h.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("method", r.Method),
		slog.String("uri", r.URL.RequestURI()),
		slog.Int("status", sw.status),
		slog.Duration("duration", time.Since(start)))
}

// ratesAnswer is Frankfurter's answer; numbers are written from decimals.
type ratesAnswer struct {
	Amount json.Number            `json:"amount"`
	Base   string                 `json:"base"`
	Date   string                 `json:"date"`
	Rates  map[string]json.Number `json:"rates"`
}

// rates serves /v1/latest and /v1/{date}?base=&symbols=&amount= (from and
// to are aliases of base and symbols).
func (h *Handler) rates(w http.ResponseWriter, r *http.Request) {
	table := h.tables()
	day := table.Latest()
	if ds := r.PathValue("date"); ds != "" {
		date, err := time.Parse(time.DateOnly, ds)
		if err != nil {
			writeMessage(w, http.StatusUnprocessableEntity, "invalid date: want YYYY-MM-DD or latest")
			return
		}
		if day, err = table.On(date); err != nil {
			writeMessage(w, http.StatusNotFound, "not found")
			return
		}
	}

	q := r.URL.Query()
	base, ok := alias(q.Get("base"), q.Get("from"))
	if !ok {
		writeMessage(w, http.StatusUnprocessableEntity, "base and from disagree")
		return
	}
	if base == "" {
		base = ecb.EUR
	}
	list, ok := alias(q.Get("symbols"), q.Get("to"))
	if !ok {
		writeMessage(w, http.StatusUnprocessableEntity, "symbols and to disagree")
		return
	}
	symbols := splitCodes(list)
	amount := decimal.NewFromInt(1)
	if a := q.Get("amount"); a != "" {
		var err error
		if amount, err = decimal.NewFromString(a); err != nil || !amount.IsPositive() {
			writeMessage(w, http.StatusUnprocessableEntity, "invalid amount: want a positive number")
			return
		}
	}
	if !txmodel.IsCurrencyCode(base) {
		writeMessage(w, http.StatusNotFound, "not found")
		return
	}
	for _, s := range symbols {
		if !txmodel.IsCurrencyCode(s) {
			writeMessage(w, http.StatusNotFound, "not found")
			return
		}
	}

	converted, err := day.Convert(base, symbols, amount)
	if err != nil {
		h.writeConvertError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ratesAnswer{
		Amount: json.Number(floatLike(amount)),
		Base:   base,
		Date:   day.Date.Format(time.DateOnly),
		Rates:  numbers(converted),
	})
}

// v4Answer is exchangerate-api v4's answer.
type v4Answer struct {
	Base            string                 `json:"base"`
	Date            string                 `json:"date"`
	TimeLastUpdated int64                  `json:"time_last_updated"`
	Rates           map[string]json.Number `json:"rates"`
}

// v4Latest serves /v4/latest/{base}: every currency of the latest day,
// base itself included as 1.
func (h *Handler) v4Latest(w http.ResponseWriter, r *http.Request) {
	base := strings.ToUpper(r.PathValue("base"))
	day := h.tables().Latest()
	if !txmodel.IsCurrencyCode(base) {
		writeJSON(w, http.StatusNotFound, v4Error{Result: "error", ErrorType: "unsupported-code"})
		return
	}
	converted, err := day.Convert(base, day.Codes(), decimal.NewFromInt(1))
	if errors.Is(err, ecb.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, v4Error{Result: "error", ErrorType: "unsupported-code"})
		return
	}
	if err != nil {
		h.writeConvertError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v4Answer{
		Base:            base,
		Date:            day.Date.Format(time.DateOnly),
		TimeLastUpdated: day.Date.Unix(),
		Rates:           numbers(converted),
	})
}

// v4Error is exchangerate-api's error answer.
type v4Error struct {
	Result    string `json:"result"`
	ErrorType string `json:"error-type"`
}

// currencies serves /v1/currencies: every code in the table with its name
// (the code itself where no name is known).
func (h *Handler) currencies(w http.ResponseWriter, _ *http.Request) {
	out := make(map[string]string)
	for _, c := range h.tables().Currencies() {
		name := ecb.Name(c)
		if name == "" {
			name = c
		}
		out[c] = name
	}
	writeJSON(w, http.StatusOK, out)
}

type health struct {
	Status string `json:"status"`
	Days   int    `json:"days"`
	First  string `json:"first"`
	Latest string `json:"latest"`
	// Loaded is when the table was loaded; RefreshFailed and RefreshError
	// say when and why the last reload failed, if one has since.
	Loaded        string `json:"loaded,omitempty"`
	RefreshFailed string `json:"refresh_failed,omitempty"`
	RefreshError  string `json:"refresh_error,omitempty"`
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	table := h.tables()
	out := health{
		Status: "ok",
		Days:   table.Len(),
		First:  table.First().Date.Format(time.DateOnly),
		Latest: table.Latest().Date.Format(time.DateOnly),
	}
	if h.status != nil {
		st := h.status()
		out.Loaded = st.Loaded.UTC().Format(time.RFC3339)
		if !st.Failed.IsZero() {
			out.RefreshFailed, out.RefreshError = st.Failed.UTC().Format(time.RFC3339), st.Err
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// writeConvertError maps a Convert error: an unknown currency is 404, any
// other is unexpected and logged.
func (h *Handler) writeConvertError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ecb.ErrNotFound) {
		writeMessage(w, http.StatusNotFound, "not found")
		return
	}
	h.log.ErrorContext(r.Context(), "convert", slog.String("uri", r.URL.RequestURI()), slog.Any("err", err))
	writeMessage(w, http.StatusInternalServerError, "internal error")
}

// alias returns whichever of a and b is set, upper-cased, and false when
// both are set and differ.
func alias(a, b string) (string, bool) {
	a, b = strings.ToUpper(strings.TrimSpace(a)), strings.ToUpper(strings.TrimSpace(b))
	switch {
	case a == "":
		return b, true
	case b == "" || a == b:
		return a, true
	default:
		return "", false
	}
}

// splitCodes splits a comma list of codes, dropping empties and repeats.
func splitCodes(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range strings.Split(s, ",") {
		c = strings.TrimSpace(c)
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, c)
	}
	return out
}

// numbers writes decimals as JSON numbers, keeping every digit.
func numbers(m map[string]decimal.Decimal) map[string]json.Number {
	out := make(map[string]json.Number, len(m))
	for k, v := range m {
		out[k] = json.Number(v.String())
	}
	return out
}

// floatLike writes d as Frankfurter writes its amount: 1 as 1.0.
func floatLike(d decimal.Decimal) string {
	s := d.String()
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Message string `json:"message"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An error here is the client going away; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}

// statusWriter remembers the status written, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
