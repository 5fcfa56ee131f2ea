package telemetry

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scrape returns the metric lines of m's Prometheus output, keyed by series
// (name and labels), valued by sample.
func scrape(t *testing.T, m *Metrics) map[string]string {
	t.Helper()
	var buf bytes.Buffer
	m.WritePrometheus(&buf)
	series := make(map[string]string)
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("malformed metric line %q", line)
		}
		series[line[:i]] = line[i+1:]
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	return series
}

func TestMetricName(t *testing.T) {
	tests := []struct {
		name   string
		labels []string
		want   string
	}{
		{name: "x_total", want: "x_total"},
		{name: "x_total", labels: []string{"route", "/a/{id}", "code", "2xx"}, want: `x_total{route="/a/{id}",code="2xx"}`},
		{name: "x", labels: []string{"v", "a\"b\\c\nd"}, want: `x{v="a\"b\\c\nd"}`},
		{name: "x", labels: []string{"dangling"}, want: `x{dangling=""}`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := MetricName(tt.name, tt.labels...); got != tt.want {
				t.Errorf("MetricName(%q, %q) = %s, want %s", tt.name, tt.labels, got, tt.want)
			}
		})
	}
}

func TestMetricsHelpersArePrefixed(t *testing.T) {
	m := NewMetrics("txp_test_")
	m.Counter(MetricName("events_total", "kind", `odd "one"`)).Add(3)
	m.Gauge("depth", func() float64 { return 7 })
	m.Histogram("job_seconds", []float64{0.1, 1}).Update(0.5)
	m.Set().GetOrCreateCounter("raw_total").Inc()

	got := scrape(t, m)
	want := map[string]string{
		`txp_test_events_total{kind="odd \"one\""}`: "3",
		`txp_test_depth`:                         "7",
		`txp_test_job_seconds_bucket{le="0.1"}`:  "0",
		`txp_test_job_seconds_bucket{le="1"}`:    "1",
		`txp_test_job_seconds_bucket{le="+Inf"}`: "1",
		`txp_test_job_seconds_sum`:               "0.5",
		`txp_test_job_seconds_count`:             "1",
		`raw_total`:                              "1",
	}
	for series, value := range want {
		if got[series] != value {
			t.Errorf("%s = %q, want %q", series, got[series], value)
		}
	}
}

func TestLatencyBuckets(t *testing.T) {
	b := LatencyBuckets()
	if b[0] != 0.001 || b[len(b)-1] != 30 {
		t.Errorf("LatencyBuckets() = %v, want 0.001 .. 30", b)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Errorf("LatencyBuckets() not strictly increasing at %d: %v", i, b)
		}
	}
	b[0] = 42
	if LatencyBuckets()[0] != 0.001 {
		t.Error("changing the returned slice changed the next result")
	}
}

func TestHTTPMiddlewareCountsByRouteAndStatusClass(t *testing.T) {
	m := NewMetrics("txp_api_")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/transactions/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "missing" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, "{}") // the status is what counts here
	})
	mux.HandleFunc("POST /v1/transactions", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /v1/boom", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	mux.HandleFunc("GET /v1/silent", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(HTTPMiddleware(m, ServeMuxRoute)(mux))
	t.Cleanup(srv.Close)

	requests := []struct{ method, path string }{
		{"GET", "/v1/transactions/a1"},
		{"GET", "/v1/transactions/b2"},
		{"GET", "/v1/transactions/missing"},
		{"POST", "/v1/transactions"},
		{"GET", "/v1/boom"},
		{"GET", "/v1/silent"},
		{"GET", "/nope/123"},
		{"BREW", "/v1/transactions"},
	}
	for _, rq := range requests {
		req, err := http.NewRequest(rq.method, srv.URL+rq.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", rq.method, rq.path, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: read the body: %v", rq.method, rq.path, err)
		}
	}

	got := make(map[string]string)
	var buckets []string
	for series, value := range scrape(t, m) {
		switch {
		case strings.HasPrefix(series, "txp_api_http_requests_total"):
			got[series] = value
		case strings.HasPrefix(series, `txp_api_http_request_duration_seconds_bucket{route="/v1/transactions/{id}",method="GET",le=`):
			buckets = append(buckets, series)
		case strings.HasPrefix(series, "txp_api_http_request_duration_seconds_count"):
			got[series] = value
		}
	}
	want := map[string]string{
		`txp_api_http_requests_total{route="/v1/transactions/{id}",method="GET",code="2xx"}`:      "2",
		`txp_api_http_requests_total{route="/v1/transactions/{id}",method="GET",code="4xx"}`:      "1",
		`txp_api_http_requests_total{route="/v1/transactions",method="POST",code="2xx"}`:          "1",
		`txp_api_http_requests_total{route="/v1/boom",method="GET",code="5xx"}`:                   "1",
		`txp_api_http_requests_total{route="/v1/silent",method="GET",code="2xx"}`:                 "1",
		`txp_api_http_requests_total{route="unmatched",method="GET",code="4xx"}`:                  "1",
		`txp_api_http_requests_total{route="unmatched",method="OTHER",code="4xx"}`:                "1",
		`txp_api_http_request_duration_seconds_count{route="/v1/transactions/{id}",method="GET"}`: "3",
		`txp_api_http_request_duration_seconds_count{route="/v1/transactions",method="POST"}`:     "1",
		`txp_api_http_request_duration_seconds_count{route="/v1/boom",method="GET"}`:              "1",
		`txp_api_http_request_duration_seconds_count{route="/v1/silent",method="GET"}`:            "1",
		`txp_api_http_request_duration_seconds_count{route="unmatched",method="GET"}`:             "1",
		`txp_api_http_request_duration_seconds_count{route="unmatched",method="OTHER"}`:           "1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request metrics mismatch (-want +got):\n%s", diff)
	}
	// One bucket line per latency bound plus +Inf.
	if len(buckets) != len(LatencyBuckets())+1 {
		t.Errorf("got %d _bucket lines for GET /v1/transactions/{id}, want %d: %v", len(buckets), len(LatencyBuckets())+1, buckets)
	}
	for _, le := range []string{`le="0.001"`, `le="30"`, `le="+Inf"`} {
		if !containsSubstring(buckets, le) {
			t.Errorf("no _bucket line with %s in %v", le, buckets)
		}
	}
}

func containsSubstring(ss []string, sub string) bool {
	for _, s := range ss {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestHTTPMiddlewareNilRouteAndFlusher(t *testing.T) {
	m := NewMetrics("")
	var flushable bool
	h := HTTPMiddleware(m, nil)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, flushable = w.(http.Flusher)
		if _, err := io.WriteString(w, "chunk"); err != nil {
			t.Errorf("write: %v", err)
		}
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x/123", nil))

	if !flushable {
		t.Error("the wrapped ResponseWriter does not implement http.Flusher")
	}
	if !rec.Flushed {
		t.Error("Flush did not reach the original ResponseWriter")
	}
	if got := scrape(t, m)[`http_requests_total{route="unmatched",method="GET",code="2xx"}`]; got != "1" {
		t.Errorf("unmatched GET 2xx count = %q, want 1", got)
	}
}

func TestStatusRecorder(t *testing.T) {
	tests := []struct {
		name  string
		write func(w http.ResponseWriter)
		want  int
	}{
		{name: "nothing written", write: func(http.ResponseWriter) {}, want: 200},
		{name: "body only", write: func(w http.ResponseWriter) { _, _ = io.WriteString(w, "x") }, want: 200},
		{name: "explicit", write: func(w http.ResponseWriter) { w.WriteHeader(503) }, want: 503},
		{name: "first wins", write: func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }, want: 404},
		{name: "after 1xx", write: func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(201) }, want: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &StatusRecorder{ResponseWriter: httptest.NewRecorder()}
			tt.write(rec)
			if got := rec.Status(); got != tt.want {
				t.Errorf("Status() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestServeMuxRoute(t *testing.T) {
	tests := map[string]string{
		"":                           "",
		"/v1/x":                      "/v1/x",
		"GET /v1/rates/{date}":       "/v1/rates/{date}",
		"POST example.com/v1/things": "/v1/things",
	}
	for pattern, want := range tests {
		t.Run(pattern, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Pattern = pattern
			if got := ServeMuxRoute(r); got != want {
				t.Errorf("ServeMuxRoute(pattern %q) = %q, want %q", pattern, got, want)
			}
		})
	}
}

func TestHTTPMetricsMakesTheRoutesSeriesAtTheStart(t *testing.T) {
	m := NewMetrics("test_")
	hm := NewHTTPMetrics(m, Route{Method: http.MethodPost, Path: "/v1/transactions"})
	var out strings.Builder
	m.WritePrometheus(&out)
	for _, want := range []string{
		`test_http_requests_total{route="/v1/transactions",method="POST",code="2xx"} 0`,
		`test_http_requests_total{route="/v1/transactions",method="POST",code="5xx"} 0`,
		`test_http_request_duration_seconds_count{route="/v1/transactions",method="POST"} 0`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	h := hm.Middleware(func(*http.Request) string { return "/v1/transactions" })(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	for _, method := range []string{http.MethodPost, http.MethodPost, "BREW"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/v1/transactions", nil))
	}
	if got := m.Counter(MetricName("http_requests_total", "route", "/v1/transactions", "method", "POST", "code", "2xx")).Get(); got != 2 {
		t.Errorf("POST 2xx = %d, want 2", got)
	}
	if got := m.Counter(MetricName("http_requests_total", "route", "/v1/transactions", "method", "OTHER", "code", "2xx")).Get(); got != 1 {
		t.Errorf("a route and method not made at the start: OTHER 2xx = %d, want 1", got)
	}
}
