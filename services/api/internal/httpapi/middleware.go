package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/auth"
)

// access authenticates a request and applies its key's rate limit: 401 or
// 429 problems, counted by reason and key name (never the key).
func (h *Handler) access(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.auth == nil || isPublic(r) {
			next.ServeHTTP(w, r)
			return
		}
		name, err := h.auth.Authenticate(r.Header.Get("Authorization"))
		if err != nil {
			reason := "invalid_key"
			if errors.Is(err, auth.ErrNoCredentials) {
				reason = "no_key"
			}
			h.metrics.authFailures[reason].Inc()
			writeProblem(w, problemFor(&requestError{problem{
				Status: http.StatusUnauthorized, Type: txmodel.ProblemUnauthorized, Title: "Unauthorized", Detail: err.Error(),
				header: map[string]string{"WWW-Authenticate": `Bearer realm="txpersister"`},
			}}))
			return
		}
		if ok, wait := h.limiter.Allow(name, h.now()); !ok {
			h.metrics.rateLimited(name)
			writeProblem(w, problemFor(&requestError{problem{
				Status: http.StatusTooManyRequests, Type: txmodel.ProblemRateLimited, Title: "Too many requests",
				Detail: "this API key's request rate is limited; retry after Retry-After seconds",
				header: map[string]string{"Retry-After": strconv.Itoa(int(math.Ceil(wait.Seconds())))},
			}}))
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithKey(r.Context(), name)))
	})
}

// nameSpan gives the server span of a request that matched a route the name
// "{method} {route}" and the http.route attribute, as OpenTelemetry's HTTP
// conventions ask; the router runs it only for matched routes.
func nameSpan(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tpl := routeTemplate(r); tpl != telemetry.UnmatchedRoute {
			span := trace.SpanFromContext(r.Context())
			span.SetName(r.Method + " " + tpl)
			span.SetAttributes(semconv.HTTPRoute(tpl))
		}
		next.ServeHTTP(w, r)
	})
}

func routeTemplate(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		if tpl, err := rt.GetPathTemplate(); err == nil {
			return tpl
		}
	}
	return telemetry.UnmatchedRoute
}
