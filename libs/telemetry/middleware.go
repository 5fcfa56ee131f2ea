package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// UnmatchedRoute is the route label of requests the route func gives no
// template for (typically a 404 from the router).
const UnmatchedRoute = "unmatched"

// HTTPMiddleware records every request it wraps as
//
//	<prefix>http_requests_total{route,method,code}
//	<prefix>http_request_duration_seconds{route,method}   (histogram, LatencyBuckets)
//
// where code is the status class ("2xx", "4xx", "5xx", ...) and route is what
// route returns for the request: a template such as "/v1/transactions/{id}",
// never a raw path, so the number of series stays bounded. An empty route (or
// a nil route func) is recorded as UnmatchedRoute; methods other than the
// standard ones are recorded as "OTHER".
//
// route is called after the wrapped handler has run. With gorilla/mux install
// the middleware with router.Use and pass
//
//	func(r *http.Request) string {
//		if rt := mux.CurrentRoute(r); rt != nil {
//			if tpl, err := rt.GetPathTemplate(); err == nil {
//				return tpl
//			}
//		}
//		return ""
//	}
//
// With a standard http.ServeMux wrap the mux and pass ServeMuxRoute.
//
// The ResponseWriter handed down still implements http.Flusher when the
// original does, and unwraps for http.ResponseController.
func HTTPMiddleware(m *Metrics, route func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &StatusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			elapsed := time.Since(start).Seconds()

			tpl := ""
			if route != nil {
				tpl = route(r)
			}
			if tpl == "" {
				tpl = UnmatchedRoute
			}
			method := methodLabel(r.Method)

			m.Counter(MetricName("http_requests_total",
				"route", tpl, "method", method, "code", statusClass(rec.Status()))).Inc()
			m.Histogram(MetricName("http_request_duration_seconds",
				"route", tpl, "method", method), LatencyBuckets()).Update(elapsed)
		})
	}
}

// ServeMuxRoute returns the pattern an http.ServeMux matched for r, without
// its method and host ("GET /v1/rates/{date}" gives "/v1/rates/{date}"), or
// "" when nothing matched. The mux sets the pattern while it serves r, so use
// it from a middleware that wraps the mux, such as HTTPMiddleware.
func ServeMuxRoute(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = strings.TrimLeft(p[i+1:], " \t")
	}
	if i := strings.IndexByte(p, '/'); i > 0 {
		p = p[i:] // drop a host: "example.com/x" -> "/x"
	}
	return p
}

// methodLabel bounds the method label to the standard methods.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	default:
		return "OTHER"
	}
}

// statusClass turns 204 into "2xx"; codes outside 100..599 become "other".
func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

// StatusRecorder is an http.ResponseWriter that remembers the status code
// sent through it; create it as &StatusRecorder{ResponseWriter: w}. It implements http.Flusher (a no-op when the wrapped
// writer cannot flush) and Unwrap, so http.ResponseController reaches the
// original writer for hijacking, deadlines and the like.
type StatusRecorder struct {
	http.ResponseWriter
	status int
}

// Status returns the final status code written, or 200 when none was
// written: what net/http sends for a handler that returns without writing.
func (s *StatusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// WriteHeader records the first final (non-1xx) status and passes it on.
func (s *StatusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200 when no status was written, then writes.
func (s *StatusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Flush sends buffered data to the client when the wrapped writer can.
func (s *StatusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		if s.status == 0 {
			s.status = http.StatusOK
		}
		f.Flush()
	}
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (s *StatusRecorder) Unwrap() http.ResponseWriter {
	return s.ResponseWriter
}
