package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/webhooks"
	"github.com/txpersister/txpersister/services/api/internal/wire"
)

// Webhooks is the webhooks' use case the handlers call, within the
// tenant of the request's key.
type Webhooks interface {
	Create(ctx context.Context, tenant, url string, events []string) (webhooks.Endpoint, error)
	List(ctx context.Context, tenant string) ([]webhooks.Endpoint, error)
	Get(ctx context.Context, tenant, id string) (webhooks.Endpoint, error)
	Delete(ctx context.Context, tenant, id string) error
	RotateSecret(ctx context.Context, tenant, id string) (webhooks.Endpoint, error)
	Attempts(ctx context.Context, tenant, id string, limit int) ([]webhooks.Attempt, error)
	Replay(ctx context.Context, tenant, id string, from, to time.Time) (int, error)
}

// WithWebhooks serves the webhook endpoints (/v1/webhooks) over w.
func WithWebhooks(w Webhooks) Option {
	return func(h *Handler) { h.hooks = w }
}

func (h *Handler) routeWebhooks(r *mux.Router) {
	r.HandleFunc("/v1/webhooks", h.createWebhook).Methods(http.MethodPost)
	r.HandleFunc("/v1/webhooks", h.listWebhooks).Methods(http.MethodGet)
	r.HandleFunc("/v1/webhooks/{id}", h.getWebhook).Methods(http.MethodGet)
	r.HandleFunc("/v1/webhooks/{id}", h.deleteWebhook).Methods(http.MethodDelete)
	r.HandleFunc("/v1/webhooks/{id}/rotate-secret", h.rotateWebhookSecret).Methods(http.MethodPost)
	r.HandleFunc("/v1/webhooks/{id}/deliveries", h.webhookDeliveries).Methods(http.MethodGet)
	r.HandleFunc("/v1/webhooks/{id}/replay", h.replayWebhook).Methods(http.MethodPost)
}

// webhookEndpoint is the JSON of an endpoint. Secret is there only in
// the answers that made it (create and rotate-secret).
type webhookEndpoint struct {
	ID             string   `json:"id"`
	URL            string   `json:"url"`
	Events         []string `json:"events"`
	CreatedAt      string   `json:"created_at"`
	Disabled       bool     `json:"disabled"`
	DisabledAt     *string  `json:"disabled_at"`
	DisabledReason *string  `json:"disabled_reason"`
	FailingSince   *string  `json:"failing_since"`
	Secret         string   `json:"secret,omitempty"`
	// PreviousSecretExpiresAt is when the secret a rotation replaced
	// stops signing.
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at,omitempty"`
}

func newWebhookEndpoint(e webhooks.Endpoint) webhookEndpoint {
	return webhookEndpoint{
		ID: e.ID, URL: e.URL, Events: e.Events, CreatedAt: wire.FormatTime(e.CreatedAt),
		Disabled: !e.DisabledAt.IsZero(), DisabledAt: wire.TimeOrNull(e.DisabledAt), DisabledReason: wire.OrNull(e.DisabledReason),
		FailingSince: wire.TimeOrNull(e.FailingSince),
	}
}

// errWebhookPathID is the problem of an id that is not a valid path
// segment.
var errWebhookPathID = &requestError{problem: problem{Status: http.StatusNotFound, Type: txmodel.ProblemNotFound, Title: "Webhook not found", Detail: "the id is not a valid path segment"}}

// readObject reads a JSON object body of at most limit bytes into fields,
// refusing a field it does not name (422) and anything that is not one
// JSON object (400).
func readObject(w http.ResponseWriter, r *http.Request, fields map[string]any) error {
	body, err := readBody(w, r, MaxBodyBytes)
	if err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return &requestError{problem{Status: http.StatusBadRequest, Type: txmodel.ProblemMalformedBody, Title: "Malformed body", Detail: "want one JSON object"}}
	}
	var errs []txmodel.FieldError
	for name, v := range raw {
		dst, ok := fields[name]
		if !ok {
			errs = append(errs, txmodel.FieldError{Field: name, Code: txmodel.CodeUnknownField, Message: "not a field of this request"})
			continue
		}
		if err := json.Unmarshal(v, dst); err != nil {
			errs = append(errs, txmodel.FieldError{Field: name, Code: txmodel.CodeInvalidType, Message: fmt.Sprintf("want %s", typeName(dst))})
		}
	}
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b txmodel.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return &webhooks.InvalidError{Errors: errs}
	}
	return nil
}

func typeName(dst any) string {
	switch dst.(type) {
	case *string:
		return "a string"
	case *[]string:
		return "an array of strings"
	case *time.Time:
		return "an RFC 3339 time"
	}
	return "another type"
}

func (h *Handler) createWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL    string
		Events []string
	}
	if err := readObject(w, r, map[string]any{"url": &in.URL, "events": &in.Events}); err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	e, err := h.hooks.Create(ctx, tenantOf(r), in.URL, in.Events)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := newWebhookEndpoint(e)
	out.Secret = e.Secret
	w.Header().Set("Location", "/v1/webhooks/"+url.PathEscape(e.ID))
	w.Header().Set("Cache-Control", "no-store") // the secret is shown once
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) listWebhooks(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	eps, err := h.hooks.List(ctx, tenantOf(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := struct {
		Items []webhookEndpoint `json:"items"`
	}{Items: make([]webhookEndpoint, len(eps))}
	for i, e := range eps {
		out.Items[i] = newWebhookEndpoint(e)
	}
	writeJSON(w, http.StatusOK, out)
}

// webhookID is the endpoint id of the request's path.
func webhookID(r *http.Request) (string, error) {
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil {
		return "", errWebhookPathID
	}
	return id, nil
}

// onWebhook runs do with the request's tenant and endpoint id, within
// the request timeout, and answers its error's problem.
func (h *Handler) onWebhook(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, tenant, id string) error) {
	id, err := webhookID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	if err := do(ctx, tenantOf(r), id); err != nil {
		h.fail(w, r, err)
	}
}

func (h *Handler) getWebhook(w http.ResponseWriter, r *http.Request) {
	h.onWebhook(w, r, func(ctx context.Context, tenant, id string) error {
		e, err := h.hooks.Get(ctx, tenant, id)
		if err == nil {
			writeJSON(w, http.StatusOK, newWebhookEndpoint(e))
		}
		return err
	})
}

func (h *Handler) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	h.onWebhook(w, r, func(ctx context.Context, tenant, id string) error {
		err := h.hooks.Delete(ctx, tenant, id)
		if err == nil {
			w.WriteHeader(http.StatusNoContent)
		}
		return err
	})
}

func (h *Handler) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	h.onWebhook(w, r, func(ctx context.Context, tenant, id string) error {
		e, err := h.hooks.RotateSecret(ctx, tenant, id)
		if err != nil {
			return err
		}
		out := newWebhookEndpoint(e)
		out.Secret, out.PreviousSecretExpiresAt = e.Secret, wire.TimeOrNull(e.PreviousSecretUntil)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

// webhookAttempt is the JSON of one delivery attempt.
type webhookAttempt struct {
	WebhookID     string  `json:"webhook_id"`
	EventType     string  `json:"event_type"`
	TransactionID string  `json:"transaction_id"`
	Attempt       int     `json:"attempt"`
	StartedAt     string  `json:"started_at"`
	DurationMS    float64 `json:"duration_ms"`
	StatusCode    *int    `json:"status_code"`
	Error         *string `json:"error"`
	// State is the delivery's state now: pending, delivered or failed.
	State string `json:"state"`
}

func (h *Handler) webhookDeliveries(w http.ResponseWriter, r *http.Request) {
	limit := defaultLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > webhooks.MaxAttempts {
			h.fail(w, r, errBadQuery([]txmodel.FieldError{{Field: "limit", Code: txmodel.CodeInvalidValue, Message: fmt.Sprintf("an integer from 1 to %d", webhooks.MaxAttempts)}}))
			return
		}
		limit = n
	}
	h.onWebhook(w, r, func(ctx context.Context, tenant, id string) error {
		as, err := h.hooks.Attempts(ctx, tenant, id, limit)
		if err != nil {
			return err
		}
		out := struct {
			Items []webhookAttempt `json:"items"`
		}{Items: make([]webhookAttempt, len(as))}
		for i, a := range as {
			out.Items[i] = webhookAttempt{
				WebhookID: a.MessageID, EventType: a.EventType, TransactionID: a.TransactionID, Attempt: a.Attempt,
				StartedAt: wire.FormatTime(a.StartedAt), DurationMS: float64(a.Duration.Microseconds()) / 1000,
				Error: wire.OrNull(a.Error), State: a.State,
			}
			if a.StatusCode != 0 {
				out.Items[i].StatusCode = &a.StatusCode
			}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

func (h *Handler) replayWebhook(w http.ResponseWriter, r *http.Request) {
	var in struct{ Since, Until time.Time }
	if err := readObject(w, r, map[string]any{"since": &in.Since, "until": &in.Until}); err != nil {
		h.fail(w, r, err)
		return
	}
	if in.Since.IsZero() {
		h.fail(w, r, &webhooks.InvalidError{Errors: []txmodel.FieldError{{Field: "since", Code: txmodel.CodeRequired, Message: "required: an RFC 3339 time"}}})
		return
	}
	if in.Until.IsZero() {
		in.Until = h.now()
	}
	h.onWebhook(w, r, func(ctx context.Context, tenant, id string) error {
		n, err := h.hooks.Replay(ctx, tenant, id, in.Since, in.Until)
		if err == nil {
			writeJSON(w, http.StatusAccepted, struct {
				Replayed int `json:"replayed"`
			}{n})
		}
		return err
	})
}

// webhookProblem is the problem of the webhooks' errors, or false.
func webhookProblem(err error) (problem, bool) {
	var ie *webhooks.InvalidError
	switch {
	case errors.As(err, &ie):
		return problem{Status: http.StatusUnprocessableEntity, Type: txmodel.ProblemInvalidFields, Title: "Invalid webhook", Detail: "one or more fields are invalid", Errors: ie.Errors}, true
	case errors.Is(err, webhooks.ErrNotFound):
		return problem{Status: http.StatusNotFound, Type: txmodel.ProblemNotFound, Title: "Webhook not found", Detail: "the tenant has no webhook endpoint of this id"}, true
	case errors.Is(err, webhooks.ErrLimit):
		return problem{Status: http.StatusConflict, Type: txmodel.ProblemBlank, Title: "Too many webhook endpoints", Detail: fmt.Sprintf("a tenant has at most %d endpoints; delete one first", webhooks.MaxEndpoints)}, true
	}
	return problem{}, false
}
