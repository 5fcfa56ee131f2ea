package telemetry

import (
	"io"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"
)

// Metrics owns the metrics of one service and writes them, together with the
// Go runtime and process metrics, in the Prometheus text format.
//
// The helpers (Counter, Gauge, Histogram) put the service prefix in front of
// the name they are given; Set gives direct access, unprefixed. Metric names
// are Prometheus names with optional labels, e.g. `outbox_lag_seconds` or
// `messages_total{queue="tx"}` (build the labels with MetricName to get them
// escaped). An invalid name panics: it is a programming error, found by the
// first test that touches the metric.
type Metrics struct {
	prefix string
	set    *metrics.Set
}

// NewMetrics returns an empty Metrics whose helper-made metrics are named
// prefix+name, e.g. NewMetrics("txp_api_") gives txp_api_http_requests_total.
func NewMetrics(prefix string) *Metrics {
	return &Metrics{prefix: prefix, set: metrics.NewSet()}
}

// Prefix returns the prefix given to NewMetrics.
func (m *Metrics) Prefix() string { return m.prefix }

// Set returns the underlying set, for metric kinds the helpers do not cover.
// Names registered on it directly are not prefixed.
func (m *Metrics) Set() *metrics.Set { return m.set }

// WritePrometheus writes the service's metrics followed by the Go runtime
// (go_*) and process (process_*) metrics in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.set.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}

// Handler serves WritePrometheus, for a /metrics endpoint.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WritePrometheus(w)
	})
}

// Counter returns the counter prefix+name, creating it on first use.
func (m *Metrics) Counter(name string) *metrics.Counter {
	return m.set.GetOrCreateCounter(m.prefix + name)
}

// Gauge returns the gauge prefix+name, creating it on first use. With a
// non-nil f the gauge reports f() at every scrape; with nil f it holds the
// value last given to Set.
func (m *Metrics) Gauge(name string, f func() float64) *metrics.Gauge {
	return m.set.GetOrCreateGauge(m.prefix+name, f)
}

// Histogram returns the Prometheus histogram prefix+name with the given
// bucket upper bounds (strictly increasing; +Inf is implied), creating it on
// first use. It is exposed as name_bucket{le="..."}, name_sum and name_count
// so histogram_quantile works on a plain Prometheus. A histogram that already
// exists keeps the buckets it was created with.
func (m *Metrics) Histogram(name string, buckets []float64) *metrics.PrometheusHistogram {
	return m.set.GetOrCreatePrometheusHistogramExt(m.prefix+name, buckets)
}

// LatencyBuckets returns bucket upper bounds in seconds, from 1 ms to 30 s,
// suited to request and job durations. Each call returns a fresh slice.
func LatencyBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
}

// MetricName returns name with the given labels, escaped for the Prometheus
// text format: MetricName("x_total", "route", "/a", "code", "2xx") is
// `x_total{route="/a",code="2xx"}`. labelPairs alternates names and values; a
// trailing name without a value gets the empty value.
func MetricName(name string, labelPairs ...string) string {
	if len(labelPairs) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i := 0; i < len(labelPairs); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labelPairs[i])
		b.WriteString(`="`)
		if i+1 < len(labelPairs) {
			writeLabelValue(&b, labelPairs[i+1])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// writeLabelValue writes v escaped as the Prometheus text format requires
// inside a quoted label value.
func writeLabelValue(b *strings.Builder, v string) {
	for _, r := range v {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
}
