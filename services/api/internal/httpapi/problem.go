package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Problem types of the API (RFC 9457). They are URIs relative to the API's
// base; each is described in the README's "Errors" section.
const (
	typeInvalidFields = "/problems/invalid-fields"
	typeMalformed     = "/problems/malformed-body"
	typeConflict      = "/problems/conflict"
	typeUnavailable   = "/problems/unavailable"
	typeNotFound      = "/problems/not-found"
	typeBadQuery      = "/problems/invalid-query"
	typeUnauthorized  = "/problems/unauthorized"
	typeRateLimited   = "/problems/rate-limited"
)

// problem is an RFC 9457 problem detail.
type problem struct {
	Type   string               `json:"type"`
	Title  string               `json:"title"`
	Status int                  `json:"status"`
	Detail string               `json:"detail,omitempty"`
	Errors []txmodel.FieldError `json:"errors,omitempty"`
}

func writeProblem(w http.ResponseWriter, p problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
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
