package telemetry

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
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
	return NewHTTPMetrics(m).Middleware(route)
}

// Route is one route of a service's router: a method and a path template.
type Route struct {
	Method, Path string
}

// HTTPMetrics records requests as HTTPMiddleware says. The series of the
// routes given to NewHTTPMetrics, with the status classes 2xx, 4xx and 5xx,
// exist at zero from the start (a ratio over an absent series is no data,
// and rate() misses the first increment of a series born at 1), and a
// request on one of them finds its series without building a name.
type HTTPMetrics struct {
	m         *Metrics
	requests  map[requestSeries]*metrics.Counter
	durations map[Route]*metrics.PrometheusHistogram
}

type requestSeries struct {
	Route
	class string
}

// NewHTTPMetrics makes the series of routes in m.
func NewHTTPMetrics(m *Metrics, routes ...Route) *HTTPMetrics {
	hm := &HTTPMetrics{m: m, requests: map[requestSeries]*metrics.Counter{}, durations: map[Route]*metrics.PrometheusHistogram{}}
	for _, r := range routes {
		r.Method = methodLabel(r.Method)
		for _, class := range []string{"2xx", "4xx", "5xx"} {
			hm.requests[requestSeries{r, class}] = m.Counter(MetricName("http_requests_total", "route", r.Path, "method", r.Method, "code", class))
		}
		hm.durations[r] = m.Histogram(MetricName("http_request_duration_seconds", "route", r.Path, "method", r.Method), LatencyBuckets())
	}
	return hm
}

// Middleware records every request it wraps, by the route that route
// returns for it (see HTTPMiddleware).
func (hm *HTTPMetrics) Middleware(route func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &StatusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			elapsed := time.Since(start).Seconds()

			rt := Route{Method: methodLabel(r.Method)}
			if route != nil {
				rt.Path = route(r)
			}
			if rt.Path == "" {
				rt.Path = UnmatchedRoute
			}
			hm.counter(rt, statusClass(rec.Status())).Inc()
			hm.histogram(rt).Update(elapsed)
		})
	}
}

// counter is the requests counter of rt and class: made at the start, or,
// for a route or class not given to NewHTTPMetrics, looked up by name.
func (hm *HTTPMetrics) counter(rt Route, class string) *metrics.Counter {
	if c, ok := hm.requests[requestSeries{rt, class}]; ok {
		return c
	}
	return hm.m.Counter(MetricName("http_requests_total", "route", rt.Path, "method", rt.Method, "code", class))
}

func (hm *HTTPMetrics) histogram(rt Route) *metrics.PrometheusHistogram {
	if h, ok := hm.durations[rt]; ok {
		return h
	}
	return hm.m.Histogram(MetricName("http_request_duration_seconds", "route", rt.Path, "method", rt.Method), LatencyBuckets())
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
