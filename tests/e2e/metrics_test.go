package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoRoot is the checkout's root, seen from this package's directory.
const repoRoot = "../.."

// rabbitMQMetricsFile lists the rabbitmq_prometheus metric names the
// dashboards and rules may use; see its header.
const rabbitMQMetricsFile = repoRoot + "/ops/prometheus/rabbitmq-metrics.txt"

// isPrometheusOwn reports whether name is a series Prometheus makes itself
// for every scrape or rule, exported by no target.
func isPrometheusOwn(name string) bool {
	switch name {
	case "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
		"scrape_series_added", "ALERTS", "ALERTS_FOR_STATE":
		return true
	}
	return false
}

// TestDashboardsAndRulesNameOnlyExportedMetrics makes sure a renamed or
// dropped metric cannot silently blank a panel or disarm an alert: it starts
// the pipeline, drives a transaction through every outcome (so that series
// created on first use exist too), scrapes both services' /metrics, and
// fails naming every metric a Grafana dashboard or a Prometheus rule uses
// that neither service exports. Series names are compared exactly as
// exposed, so a histogram is named by its _bucket, _sum or _count series,
// as PromQL must name it; its bare name is reported missing. rabbitmq_*
// names come from RabbitMQ's rabbitmq_prometheus plugin, which the test
// broker does not run: they are checked against the committed list in
// testdata. The same scrape checks the naming conventions and that no
// transaction or user id became a label.
func TestDashboardsAndRulesNameOnlyExportedMetrics(t *testing.T) {
	t.Parallel()
	refs := referencedMetrics(t, repoRoot)
	// The extractor must have found the dashboard's and the rules' core
	// metrics, or this test would pass on nothing.
	for _, name := range []string{"txpersister_http_requests_total", "txpersister_pipeline_latency_seconds_bucket", "txpersister_outbox_backlog", "up", "rabbitmq_detailed_queue_messages"} {
		if len(refs[name]) == 0 {
			t.Fatalf("%s not found among the metrics the dashboards and rules use (%d found): the extraction is broken", name, len(refs))
		}
	}

	s := start(t, options{})
	ids := driveEveryOutcome(t, s)

	// BHD's missing rate is the provider's healthy answer: it must not count
	// against the provider (RatesProviderFailing).
	if got := metric(t, s.convAdmin, `txpersister_rates_requests_total{provider="frankfurter",outcome="error"}`); got != 0 {
		t.Errorf("rates calls with outcome error = %v, want 0: no call failed", got)
	}
	if got := metric(t, s.convAdmin, `txpersister_rates_requests_total{provider="frankfurter",outcome="not_found"}`); got < 1 {
		t.Errorf("rates calls with outcome not_found = %v, want at least the BHD lookup", got)
	}

	api, conv := scrape(t, s.apiAdmin), scrape(t, s.convAdmin)
	exported := map[string]bool{}
	for _, ser := range append(slices.Clone(api), conv...) {
		exported[ser.name] = true
	}
	rabbit := readNameList(t, rabbitMQMetricsFile)

	for _, name := range sortedKeys(refs) {
		where := strings.Join(refs[name], ", ")
		switch {
		case isPrometheusOwn(name):
		case strings.HasPrefix(name, "rabbitmq_"):
			if !rabbit[name] {
				t.Errorf("%s (used in %s) is not a rabbitmq_prometheus metric listed in %s", name, where, rabbitMQMetricsFile)
			}
		case !exported[name]:
			t.Errorf("%s (used in %s) is exported by neither the api nor the converter", name, where)
		}
	}

	t.Run("conventions", func(t *testing.T) {
		for service, series := range map[string][]series{"api": api, "converter": conv} {
			checkConventions(t, service, series, ids)
		}
	})
}

// outcomeIDs are the transaction and user ids the test posted: none may
// show up in a metric.
type outcomeIDs struct{ transactions, users []string }

// driveEveryOutcome posts one transaction of each kind: processed, failed
// (BHD has no ECB rate), replayed, conflicting, invalid (422) and malformed
// (400), and waits for the converter to record the first two.
func driveEveryOutcome(t *testing.T, s *stack) outcomeIDs {
	t.Helper()
	ids := outcomeIDs{
		transactions: []string{"metrics-processed-4f1c", "metrics-failed-9b2e", "metrics-invalid-77aa"},
		users:        []string{"metrics-user-31d0"},
	}
	tx := func(id, amount, currency string) string {
		return fmt.Sprintf(`{"transaction_id": %q, "user_id": %q, "amount": %s, "currency": %q, "timestamp": "2024-09-11T00:00:00Z"}`,
			id, ids.users[0], amount, currency)
	}
	posts := []struct {
		what, body string
		want       int
	}{
		{"processed", tx(ids.transactions[0], `"100.00"`, "USD"), http.StatusCreated},
		{"failed", tx(ids.transactions[1], `"1.234"`, "BHD"), http.StatusCreated},
		{"replayed", tx(ids.transactions[0], `"100.00"`, "USD"), http.StatusOK},
		{"conflict", tx(ids.transactions[0], `"100.01"`, "USD"), http.StatusConflict},
		{"invalid", tx(ids.transactions[2], `"-1"`, "XAU"), http.StatusUnprocessableEntity},
		// An unknown field given twice: its name is the client's and must
		// not become a label value.
		{"duplicated unknown field", `{"transaction_id": "x", "zz-client-field": 1, "zz-client-field": 2}`, http.StatusUnprocessableEntity},
		{"malformed", `not json`, http.StatusBadRequest},
	}
	for _, p := range posts {
		if code, res := s.post("/v1/transactions", p.body); code != p.want {
			t.Fatalf("POST %s: %d %v, want %d", p.what, code, res, p.want)
		}
	}
	if code, res := s.get("/v1/transactions/" + ids.transactions[0]); code != http.StatusOK {
		t.Fatalf("GET: %d %v", code, res)
	}
	s.waitStatus(ids.transactions[0], 30*time.Second, "processed")
	s.waitStatus(ids.transactions[1], 30*time.Second, "failed")
	return ids
}

// series is one line of the Prometheus text format.
type series struct {
	name   string
	labels map[string]string
}

// scrape reads an admin endpoint's /metrics.
func scrape(t *testing.T, adminURL string) []series {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", adminURL, resp.Status)
	}
	out, err := parseExposition(resp.Body)
	if err != nil {
		t.Fatalf("%s/metrics: %v", adminURL, err)
	}
	if len(out) == 0 {
		t.Fatalf("%s/metrics is empty", adminURL)
	}
	return out
}

// parseExposition reads the series of the Prometheus text format, skipping
// comments and blank lines.
func parseExposition(r io.Reader) ([]series, error) {
	var out []series
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseSeries(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %w", n, line, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

var metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*`)

// parseSeries parses `name{label="value",...} value [timestamp]`.
func parseSeries(line string) (series, error) {
	name := metricNameRE.FindString(line)
	if name == "" {
		return series{}, fmt.Errorf("no metric name")
	}
	s := series{name: name, labels: map[string]string{}}
	rest := line[len(name):]
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			label := metricNameRE.FindString(rest)
			if label == "" || !strings.HasPrefix(rest[len(label):], `="`) {
				return series{}, fmt.Errorf("bad label at %q", rest)
			}
			rest = rest[len(label)+1:]
			quoted, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return series{}, fmt.Errorf("label %s: %w", label, err)
			}
			v, err := strconv.Unquote(quoted)
			if err != nil {
				return series{}, fmt.Errorf("label %s: %w", label, err)
			}
			s.labels[label] = v
			rest = rest[len(quoted):]
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return series{}, fmt.Errorf("want a value after the name and labels")
	}
	if _, err := strconv.ParseFloat(fields[0], 64); err != nil {
		return series{}, fmt.Errorf("value: %w", err)
	}
	return s, nil
}

var (
	nonBaseUnitRE = regexp.MustCompile(`_(ms|milliseconds|microseconds|nanoseconds|minutes|hours|days|kilobytes|megabytes)(_|$)`)
	timeWordRE    = regexp.MustCompile(`_(duration|latency|age|time)(_|$)`)
)

// checkConventions applies Prometheus' naming conventions to a service's
// own series, and checks that no id the test posted became a label.
func checkConventions(t *testing.T, service string, all []series, ids outcomeIDs) {
	t.Helper()
	forbiddenLabels := map[string]bool{"id": true, "transaction_id": true, "user_id": true, "trace_id": true}
	forbiddenValues := map[string]bool{"zz-client-field": true}
	for _, id := range append(slices.Clone(ids.transactions), ids.users...) {
		forbiddenValues[id] = true
	}
	seen := map[string]bool{}
	own := 0
	for _, s := range all {
		for l, v := range s.labels {
			if forbiddenLabels[l] || forbiddenValues[v] {
				t.Errorf("%s: %s has label %s=%q: a transaction's, user's or client's value makes unbounded series", service, s.name, l, v)
			}
		}
		if strings.HasPrefix(s.name, "go_") || strings.HasPrefix(s.name, "process_") {
			continue // the Go runtime's and the process', by the client library
		}
		own++
		if seen[s.name] {
			continue
		}
		seen[s.name] = true
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(s.name, "_bucket"), "_sum"), "_count")
		switch {
		case !strings.HasPrefix(s.name, "txpersister_"):
			t.Errorf("%s: %s lacks the txpersister_ prefix", service, s.name)
		case nonBaseUnitRE.MatchString(s.name):
			t.Errorf("%s: %s is not in base units (seconds, bytes)", service, s.name)
		case timeWordRE.MatchString(base) && !strings.HasSuffix(base, "_seconds"):
			t.Errorf("%s: %s measures time but does not end in _seconds", service, s.name)
		case strings.Contains(base, "_total") && !strings.HasSuffix(base, "_total"):
			t.Errorf("%s: %s has _total inside its name", service, s.name)
		}
	}
	if own == 0 {
		t.Errorf("%s exports no txpersister_ series", service)
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !slices.ContainsFunc(all, func(s series) bool { return s.name == want }) {
			t.Errorf("%s: no %s: the Go runtime and process metrics are missing", service, want)
		}
	}
}

// referencedMetrics returns every metric name that a Grafana dashboard
// (ops/grafana/dashboards/*.json, the "expr" of every query) or a Prometheus
// rule file (ops/prometheus/*.yml but the *_test.yml unit tests, every
// "expr") uses, with where each is used.
func referencedMetrics(t *testing.T, root string) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	for where, exprs := range opsExpressions(t, root) {
		for _, e := range exprs {
			for _, name := range promqlMetricNames(e) {
				if !slices.Contains(refs[name], where) {
					refs[name] = append(refs[name], where)
				}
			}
		}
	}
	return refs
}

// opsExpressions returns the PromQL expressions of the dashboards and rule
// files, by file (relative to root).
func opsExpressions(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	dashboards, err := filepath.Glob(filepath.Join(root, "ops/grafana/dashboards/*.json"))
	if err != nil || len(dashboards) == 0 {
		t.Fatalf("no dashboard in %s/ops/grafana/dashboards (%v)", root, err)
	}
	for _, path := range dashboards {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rel, _ := filepath.Rel(root, path)
		out[rel] = jsonExprs(doc)
	}
	rules, err := filepath.Glob(filepath.Join(root, "ops/prometheus/*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule file in %s/ops/prometheus (%v)", root, err)
	}
	for _, path := range rules {
		if strings.HasSuffix(path, "_test.yml") {
			continue // promtool's unit tests: their series are made up
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		if exprs := yamlExprs(string(b)); len(exprs) > 0 {
			out[rel] = exprs
		}
	}
	return out
}

// jsonExprs returns the string value of every "expr" key in a decoded JSON
// document: the PromQL of a Grafana dashboard's queries.
func jsonExprs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			if s, ok := v[k].(string); ok && k == "expr" {
				out = append(out, s)
				continue
			}
			out = append(out, jsonExprs(v[k])...)
		}
	case []any:
		for _, e := range v {
			out = append(out, jsonExprs(e)...)
		}
	}
	return out
}

var yamlExprRE = regexp.MustCompile(`^(\s*(?:-\s+)?)expr:\s*(.*?)\s*$`)

// yamlExprs returns the value of every `expr:` key of a YAML file, in the
// forms a rule file uses: plain (possibly continued on more indented lines),
// single- or double-quoted, or a literal/folded block scalar (| or >). It is
// not a YAML parser; the test of the names it finds fails when it misses.
func yamlExprs(doc string) []string {
	lines := strings.Split(doc, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		m := yamlExprRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		keyCol := len(m[1])
		value := m[2]
		// Lines indented deeper than the key continue its value.
		var more []string
		for i+1 < len(lines) {
			next := lines[i+1]
			if strings.TrimSpace(next) != "" && len(next)-len(strings.TrimLeft(next, " ")) <= keyCol {
				break
			}
			more = append(more, strings.TrimSpace(next))
			i++
		}
		switch {
		case strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">"):
			value = strings.Join(more, "\n")
		case strings.HasPrefix(value, `'`):
			value = strings.Join(append([]string{value}, more...), " ")
			value = strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(value, `'`), `'`), `''`, `'`)
		case strings.HasPrefix(value, `"`):
			value = strings.Join(append([]string{value}, more...), " ")
			if u, err := strconv.Unquote(value); err == nil {
				value = u
			}
		default:
			value = strings.Join(append([]string{value}, more...), " ")
		}
		if value = strings.TrimSpace(value); value != "" {
			out = append(out, value)
		}
	}
	return out
}

var (
	promqlStringRE = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlBracesRE = regexp.MustCompile(`\{[^}]*\}`)
	promqlRangeRE  = regexp.MustCompile(`\[[^\]]*\]`)
	// by (...), without (...), on (...), ignoring (...), group_left (...),
	// group_right (...): label lists, not metrics.
	promqlGroupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlVariableRE = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	// A number (with an exponent or a duration unit) or an identifier; the
	// number alternative comes first so that 1e3 or 5m yield no identifier.
	promqlTokenRE = regexp.MustCompile(`(?:0[xX][0-9a-fA-F]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[a-zA-Z]*)|([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// isPromQLKeyword reports whether id is a PromQL keyword, aggregation
// operator or literal rather than a metric name.
func isPromQLKeyword(id string) bool {
	switch strings.ToLower(id) {
	case "and", "or", "unless", "bool", "offset", "atan2",
		"by", "without", "on", "ignoring", "group_left", "group_right",
		"sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
		"quantile", "count_values", "limitk", "limit_ratio", "inf", "nan", "start", "end":
		return true
	}
	return false
}

// promqlMetricNames returns the metric names a PromQL expression selects,
// in order of first use: the identifiers left once strings, label matchers,
// ranges, grouping label lists and Grafana variables are removed, that are
// neither a function (followed by "("), a keyword nor a number.
func promqlMetricNames(expr string) []string {
	e := promqlStringRE.ReplaceAllString(expr, `""`)
	e = promqlBracesRE.ReplaceAllString(e, " ")
	e = promqlRangeRE.ReplaceAllString(e, " ")
	e = promqlGroupingRE.ReplaceAllString(e, " ")
	e = promqlVariableRE.ReplaceAllString(e, " ")
	var out []string
	for _, m := range promqlTokenRE.FindAllStringSubmatchIndex(e, -1) {
		if m[2] < 0 {
			continue // a number
		}
		id := e[m[2]:m[3]]
		if isPromQLKeyword(id) || strings.HasPrefix(strings.TrimLeft(e[m[3]:], " \t\n"), "(") {
			continue
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{"up", []string{"up"}},
		{"up == 0", []string{"up"}},
		{`sum by (job) (rate(a_total{code="5xx"}[5m])) / sum by (job) (rate(a_total[5m])) > 0.05`, []string{"a_total"}},
		{`histogram_quantile(0.99, sum by (le, route) (rate(h_seconds_bucket{job=~"api|x"}[$__rate_interval])))`, []string{"h_seconds_bucket"}},
		{"sum(rate(x_total[1m])) without (instance) / on(job) group_left(route) y", []string{"x_total", "y"}},
		{"b > 100 and deriv(b[10m]) > 0", []string{"b"}},
		{"a offset 5m unless b @ start()", []string{"a", "b"}},
		{"count(z) by (q) or vector(0)", []string{"z"}},
		{"1e3 * c + 0x1F - .5", []string{"c"}},
		{`rabbitmq_detailed_queue_messages{queue=~"transactions\\.convert\\.delay\\..+"}`, []string{"rabbitmq_detailed_queue_messages"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`ns:rule:rate5m{a="}"}`, []string{"ns:rule:rate5m"}},
		{"max_over_time(g[5m:1m])", []string{"g"}},
		{"sum (\n  rate(multi_total[5m])\n)", []string{"multi_total"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			if got := promqlMetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("promqlMetricNames(%q) = %q, want %q", tt.expr, got, tt.want)
			}
		})
	}
}

func TestYAMLExprs(t *testing.T) {
	doc := `groups:
  - name: g
    rules:
      - alert: Plain
        expr: up == 0
        for: 1m
      - alert: Block
        expr: |
          sum(rate(a[5m]))
            / sum(rate(b[5m]))
        labels:
          severity: critical
      - alert: Continued
        expr: c > 1
          and d > 2
      - expr: 'e{x="y"} > 0'
        alert: SingleQuoted
      - alert: DoubleQuoted
        expr: "f{x=\"y\"} > 0"
      - record: folded
        expr: >-
          g
          + h
        annotations:
          description: "expr: not a key here"
`
	want := []string{
		"up == 0",
		"sum(rate(a[5m]))\n/ sum(rate(b[5m]))",
		"c > 1 and d > 2",
		`e{x="y"} > 0`,
		`f{x="y"} > 0`,
		"g\n+ h",
	}
	if got := yamlExprs(doc); !slices.Equal(got, want) {
		t.Errorf("yamlExprs = %q,\nwant %q", got, want)
	}
}

func TestParseSeries(t *testing.T) {
	tests := []struct {
		line    string
		want    series
		wantErr bool
	}{
		{"a_total 3", series{"a_total", map[string]string{}}, false},
		{`h_bucket{route="/v1/{id}",le="+Inf"} 0`, series{"h_bucket", map[string]string{"route": "/v1/{id}", "le": "+Inf"}}, false},
		{`r{field="(body)",code="a\"b"} 1.5e3 1700000000`, series{"r", map[string]string{"field": "(body)", "code": `a"b`}}, false},
		{`x{a="1"}`, series{}, true},
		{`x{a=1} 2`, series{}, true},
		{`{a="1"} 2`, series{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := parseSeries(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				if got.name != tt.want.name || !maps.Equal(got.labels, tt.want.labels) {
					t.Errorf("got %+v, want %+v", got, tt.want)
				}
			}
		})
	}
}

// readNameList reads a file of names, one a line; # starts a comment.
func readNameList(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out[line] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s lists no name", path)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
