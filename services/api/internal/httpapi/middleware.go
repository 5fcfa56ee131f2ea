package httpapi

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/auth"
)

// authorize authenticates a request and applies its limits: 401 or 429
// problems, counted by reason and by key or tenant name (never the key).
// A client address that failed to authenticate too often is refused
// before its key is looked at, so keys cannot be guessed at full speed.
// The request goes on with its Principal in its context, and its tenant
// on its span.
func (h *Handler) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isPublic(r) {
			next.ServeHTTP(w, r)
			return
		}
		a := h.access
		p := auth.Principal{Tenant: txmodel.DefaultTenant, Key: auth.Anonymous}
		if a.Auth != nil {
			now, addr := h.now(), clientAddress(r)
			if blocked, wait := a.Failures.Blocked(addr, now); blocked {
				h.metrics.authFailures["blocked_address"].Inc()
				writeProblem(w, rateLimited(wait, "too many failed authentications from this address; retry after Retry-After seconds"))
				return
			}
			var err error
			if p, err = a.Auth.Authenticate(r.Header.Get("Authorization")); err != nil {
				a.Failures.Failed(addr, now)
				h.log.WarnContext(r.Context(), "authentication failed", "client_address", addr, "err", err)
				h.unauthorized(w, err)
				return
			}
			if ok, wait := a.PerKey.Allow(p.Key, now); !ok {
				h.metrics.rateLimited(p.Key)
				writeProblem(w, rateLimited(wait, "this API key's request rate is limited; retry after Retry-After seconds"))
				return
			}
			if ok, wait := a.PerTenant.Allow(p.Tenant, now); !ok {
				h.metrics.tenantLimited(p.Tenant)
				writeProblem(w, rateLimited(wait, "this tenant's request rate is limited; retry after Retry-After seconds"))
				return
			}
		}
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String(attrTenant, p.Tenant))
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// attrTenant is the span attribute naming the tenant of a request.
const attrTenant = "txpersister.tenant"

// unauthorized answers 401 for err, counted by reason.
func (h *Handler) unauthorized(w http.ResponseWriter, err error) {
	reason := "invalid_key"
	if errors.Is(err, auth.ErrNoCredentials) {
		reason = "no_key"
	}
	h.metrics.authFailures[reason].Inc()
	writeProblem(w, problemFor(&requestError{problem{
		Status: http.StatusUnauthorized, Type: txmodel.ProblemUnauthorized, Title: "Unauthorized", Detail: err.Error(),
		header: map[string]string{"WWW-Authenticate": `Bearer realm="txpersister"`},
	}}))
}

// rateLimited is the 429 problem of a request to retry after wait.
func rateLimited(wait time.Duration, detail string) problem {
	return problem{
		Status: http.StatusTooManyRequests, Type: txmodel.ProblemRateLimited, Title: "Too many requests", Detail: detail,
		header: map[string]string{"Retry-After": strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1))},
	}
}

// clientAddress is the IP address of the peer: what the limit on failed
// authentications counts by. A header such as X-Forwarded-For is not
// read, since any client can write one; behind a proxy every client has
// the proxy's address.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// tenantOf is the tenant of the request.
func tenantOf(r *http.Request) string {
	if t := auth.PrincipalOf(r.Context()).Tenant; t != "" {
		return t
	}
	return txmodel.DefaultTenant
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
