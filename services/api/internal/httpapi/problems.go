package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/transactions"
)

// problem is an RFC 9457 problem detail.
type problem struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail,omitempty"`
	Errors []txmodel.FieldError `json:"errors,omitempty"`
	// ErrorCount is how many errors were found, when Errors lists only
	// the first MaxProblemErrors of them.
	ErrorCount int `json:"error_count,omitempty"`
	// header is sent with the problem (Retry-After, WWW-Authenticate).
	header map[string]string
}

// requestError is a request the HTTP edge refuses before the use case
// sees it; its problem says why.
type requestError struct {
	problem
}

func (e *requestError) Error() string { return e.Detail }

// The requests refused for their shape, before any field is read.
var (
	errNoRoute     = &requestError{problem: problem{Status: http.StatusNotFound, Detail: "no such endpoint"}}
	errMethod      = &requestError{problem: problem{Status: http.StatusMethodNotAllowed, Detail: "this endpoint does not take that method"}}
	errMediaType   = &requestError{problem: problem{Status: http.StatusUnsupportedMediaType, Detail: "send transactions as application/json"}}
	errUnreadable  = &requestError{problem: problem{Status: http.StatusBadRequest, Type: txmodel.ProblemMalformedBody, Title: "Malformed body", Detail: "the body could not be read"}}
	errBadPathID   = &requestError{problem: problem{Status: http.StatusNotFound, Type: txmodel.ProblemNotFound, Title: "Transaction not found", Detail: "the id is not a valid path segment"}}
	errUnavailable = problem{
		Status: http.StatusServiceUnavailable, Type: txmodel.ProblemUnavailable, Title: "Temporarily unavailable",
		Detail: "the database cannot be reached; retry with the same transaction_id, it is safe",
	}
)

func errTooLarge(limit int64) error {
	return &requestError{problem: problem{Status: http.StatusRequestEntityTooLarge, Detail: fmt.Sprintf("the body is larger than %d KiB", limit>>10)}}
}

func errBadQuery(errs []txmodel.FieldError) error {
	return &requestError{problem: problem{Status: http.StatusBadRequest, Type: txmodel.ProblemInvalidQuery, Title: "Invalid query", Detail: "one or more query parameters are invalid", Errors: errs}}
}

// MaxProblemErrors is the most field errors a problem lists: a body of
// thousands of unknown fields gets a small answer all the same.
const MaxProblemErrors = 20

// problemFor is the one mapping of errors to problems: those the HTTP
// edge raises (requestError), the model's validation (422 listing every
// field, 400 for a body that is no JSON object), and the domain's
// sentinels. Anything else is a 500.
func problemFor(err error) problem {
	var re *requestError
	var ve *txmodel.ValidationError
	if p, ok := webhookProblem(err); ok {
		return p
	}
	switch {
	case errors.As(err, &re):
		return re.problem
	case errors.As(err, &ve):
		p := problem{Status: http.StatusUnprocessableEntity, Type: txmodel.ProblemInvalidFields, Title: "Invalid transaction", Detail: "one or more fields are invalid", Errors: ve.Errors}
		if len(p.Errors) > MaxProblemErrors {
			p.Errors, p.ErrorCount = p.Errors[:MaxProblemErrors], len(p.Errors)
			p.Detail = fmt.Sprintf("%d fields are invalid; the first %d are listed", p.ErrorCount, MaxProblemErrors)
		}
		return p
	case errors.Is(err, txmodel.ErrMalformed):
		return problem{Status: http.StatusBadRequest, Type: txmodel.ProblemMalformedBody, Title: "Malformed body", Detail: err.Error()}
	case errors.Is(err, transactions.ErrConflict):
		return problem{Status: http.StatusConflict, Type: txmodel.ProblemConflict, Title: "Transaction id already used", Detail: err.Error()}
	case errors.Is(err, transactions.ErrNotFound):
		return problem{Status: http.StatusNotFound, Type: txmodel.ProblemNotFound, Title: "Transaction not found", Detail: "no transaction has this transaction_id"}
	case errors.Is(err, transactions.ErrBadCursor):
		return problem{
			Status: http.StatusBadRequest, Type: txmodel.ProblemInvalidQuery, Title: "Invalid query", Detail: "the cursor is not one this API returned",
			Errors: []txmodel.FieldError{{Field: "cursor", Code: txmodel.CodeInvalidValue, Message: "not a cursor this API returned"}},
		}
	case errors.Is(err, transactions.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return errUnavailable
	default:
		return problem{Status: http.StatusInternalServerError, Detail: "an unexpected error; it is logged with this request's trace id"}
	}
}

// fail answers err's problem, and logs what is not the client's doing: a
// 503 as a warning, a 500 as an error.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	p, who := problemFor(err), auth.PrincipalOf(r.Context())
	switch p.Status {
	case http.StatusServiceUnavailable:
		h.log.WarnContext(r.Context(), "database unavailable", "route", routeTemplate(r), "tenant", who.Tenant, "api_key", who.Key, "err", err)
	case http.StatusInternalServerError:
		h.log.ErrorContext(r.Context(), "request failed", "route", routeTemplate(r), "tenant", who.Tenant, "api_key", who.Key, "err", err)
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p problem) {
	if p.Type == "" {
		p.Type = txmodel.ProblemBlank
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	for k, v := range p.header {
		w.Header().Set(k, v)
	}
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfterSeconds))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// retryAfterSeconds is how long a client is asked to wait after a 503: the
// time PostgreSQL takes to restart, about.
const retryAfterSeconds = 2

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
