package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOneTraceFromAPIToConverter posts one transaction to a stack that
// exports spans to a real Jaeger (v2, built from its Go module by
// scripts/jaeger.sh) and checks, through Jaeger's query API, that the
// transaction left one trace across both services with the spans in their
// parent/child order:
//
//	api        POST /v1/transactions        SERVER
//	api        ├── INSERT transactions      CLIENT
//	api        └── publish transactions     PRODUCER   (by the relay, later)
//	converter      └── process ...          CONSUMER
//	converter          ├── GET (rates)      CLIENT
//	converter          └── INSERT conversions CLIENT
//
// and that the converter's log line for the transaction carries the trace's
// id.
func TestOneTraceFromAPIToConverter(t *testing.T) {
	t.Parallel()
	j := startJaeger(t)
	s := start(t, options{otlpEndpoint: j.otlpHTTP})

	const id = "traced-usd"
	if code, res := s.post("/v1/transactions", body(id, `"100.00"`, "USD", "2024-09-11T00:00:00Z")); code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, res)
	}
	if res := s.waitStatus(id, 30*time.Second, "processed", "failed"); res["status"] != "processed" {
		t.Fatalf("transaction %s: %v, want processed", id, res)
	}

	// The relay's publish span names the transaction; find its trace by it
	// and wait until every span has arrived: each service exports in its
	// own batches.
	tr := j.waitTrace(t, "api", "messaging.message.id", id, 30*time.Second, func(tr jaegerTrace) bool {
		return len(tr.spansOf("api")) >= 3 && len(tr.spansOf("converter")) >= 3
	})

	server := tr.one(t, "api", "server", named("POST /v1/transactions"))
	insert := tr.one(t, "api", "client", named("INSERT transactions"))
	publish := tr.one(t, "api", "producer", named("publish transactions"))
	process := tr.one(t, "converter", "consumer", named("process transactions.convert"))
	ratesCall := tr.one(t, "converter", "client", tagged("http.request.method"))
	record := tr.one(t, "converter", "client", named("INSERT conversions"))

	if p := tr.parent(server); p != "" {
		t.Errorf("the POST server span has parent %s, want none: the trace starts at the api", p)
	}
	for _, e := range []struct {
		child, parent jaegerSpan
	}{
		{insert, server},
		{publish, server},
		{process, publish},
		{ratesCall, process},
		{record, process},
	} {
		if got := tr.parent(e.child); got != e.parent.SpanID {
			t.Errorf("%s %q: parent %s (%s), want %s %q (%s)", tr.service(e.child), e.child.OperationName, got, tr.nameOf(got),
				tr.service(e.parent), e.parent.OperationName, e.parent.SpanID)
		}
	}

	t.Logf("the transaction's trace:%s", describe([]jaegerTrace{tr}))

	// Semantic conventions.
	for _, c := range []struct {
		span       jaegerSpan
		key, value string
	}{
		{server, "http.request.method", "POST"},
		{server, "http.route", "/v1/transactions"},
		{server, "http.response.status_code", "201"},
		{insert, "db.system", "postgresql"},
		{insert, "db.system.name", "postgresql"},
		{insert, "db.operation.name", "INSERT"},
		{insert, "db.collection.name", "transactions"},
		{publish, "messaging.system", "rabbitmq"},
		{publish, "messaging.destination.name", "transactions"},
		{publish, "messaging.operation.type", "send"},
		{publish, "messaging.message.id", id},
		{process, "messaging.system", "rabbitmq"},
		{process, "messaging.destination.name", "transactions"},
		{process, "messaging.operation.type", "process"},
		{process, "messaging.message.id", id},
		{ratesCall, "http.request.method", "GET"},
		{ratesCall, "http.response.status_code", "200"},
		{record, "db.system", "postgresql"},
		{record, "db.operation.name", "INSERT"},
		{record, "db.collection.name", "conversions"},
		// The tenant, on each service's first span of the transaction
		// (AUTH_DISABLED: the implicit one).
		{server, "txpersister.tenant", "default"},
		{publish, "txpersister.tenant", "default"},
		{process, "txpersister.tenant", "default"},
	} {
		if got, ok := c.span.tag(c.key); !ok || got != c.value {
			t.Errorf("%s span %q: %s = %q (present %v), want %q", tr.service(c.span), c.span.OperationName, c.key, got, ok, c.value)
		}
	}
	if u, _ := ratesCall.tag("url.full"); !strings.HasPrefix(u, s.ratesd+"/") {
		t.Errorf("rates call url.full = %q, want a URL of ratesd %s", u, s.ratesd)
	}

	// The converter's log line for the transaction carries the trace id.
	line := findLog(t, s.logs["converter"], func(l map[string]any) bool {
		return l["msg"] == "transaction processed" && l["transaction_id"] == id
	})
	if line == nil {
		t.Fatalf("no \"transaction processed\" log line for %s in %s", id, s.logs["converter"])
	}
	if line["trace_id"] != tr.TraceID {
		t.Errorf("converter log line %v: trace_id %v, want the trace's %s", line, line["trace_id"], tr.TraceID)
	}
	if line["span_id"] != process.SpanID {
		t.Errorf("converter log line: span_id %v, want the process span's %s", line["span_id"], process.SpanID)
	}
}

// jaeger is a running Jaeger.
type jaeger struct {
	otlpHTTP string // OTLP/HTTP endpoint, e.g. http://127.0.0.1:4318
	query    string // base URL of the query API
}

// jaegerBinary returns the path of the Jaeger binary, building it with
// scripts/jaeger.sh when it is not cached yet (about 8 minutes the first
// time). The build is stopped shortly before the test binary's deadline so
// that a slow first build fails the test with a clear message instead of
// a timeout panic; what Go compiled so far stays in its build cache.
func jaegerBinary(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-90*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "jaeger.sh"))
	cmd.Dir = root
	// The script runs go build: stop the whole process group, not just the
	// shell, when time is up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if ctx.Err() != nil {
		t.Fatalf("building Jaeger with scripts/jaeger.sh did not finish before the test deadline (%s spent); "+
			"run scripts/jaeger.sh once (or go test with a longer -timeout): the next build resumes from Go's build cache\n%s",
			time.Since(start).Round(time.Second), stderr.String())
	}
	if err != nil {
		t.Fatalf("cannot build Jaeger with scripts/jaeger.sh: %v\n%s", err, stderr.String())
	}
	bin := strings.TrimSpace(string(out))
	if fi, err := os.Stat(bin); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("scripts/jaeger.sh printed %q, which is not an executable (%v)\n%s", bin, err, stderr.String())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Logf("built Jaeger in %s", took.Round(time.Second))
	}
	return bin
}

// startJaeger starts Jaeger with tools/jaeger/config.yaml on free ports and
// waits until its query API answers; it is stopped when the test ends.
func startJaeger(t *testing.T) *jaeger {
	t.Helper()
	bin := jaegerBinary(t)
	cfg, err := filepath.Abs("../../tools/jaeger/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	otlpHTTP, queryHTTP := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"JAEGER_OTLP_HTTP_ADDR=" + otlpHTTP, "JAEGER_OTLP_GRPC_ADDR=" + freeAddr(t),
		"JAEGER_QUERY_HTTP_ADDR=" + queryHTTP, "JAEGER_QUERY_GRPC_ADDR=" + freeAddr(t),
	}
	j := &jaeger{otlpHTTP: "http://" + otlpHTTP, query: "http://" + queryHTTP}
	startProcess(t, "jaeger", cmd, false).waitReady(t, j.query+"/api/services", 60*time.Second)
	return j
}

// waitTrace asks the query API for the traces of service that have a span
// tagged key=value until exactly one is found and complete says it is, and
// returns it; it fails the test after timeout.
func (j *jaeger) waitTrace(t *testing.T, service, key, value string, timeout time.Duration, complete func(jaegerTrace) bool) jaegerTrace {
	t.Helper()
	tags, _ := json.Marshal(map[string]string{key: value})
	q := url.Values{"service": {service}, "tags": {string(tags)}, "limit": {"20"}, "lookback": {"1h"}}
	u := j.query + "/api/traces?" + q.Encode()
	deadline := time.Now().Add(timeout)
	var last []jaegerTrace
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = j.traces(u)
		if lastErr == nil && len(last) == 1 && complete(last[0]) {
			return last[0]
		}
		if len(last) > 1 {
			t.Fatalf("%d traces with %s=%s, want one: %s", len(last), key, value, describe(last))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no complete trace with %s=%s in Jaeger after %s (last error %v): %s", key, value, timeout, lastErr, describe(last))
	return jaegerTrace{}
}

func (j *jaeger) traces(u string) ([]jaegerTrace, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	var out struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return out.Data, nil
}

// jaegerTrace is a trace as Jaeger's query API (/api/traces) returns it.
type jaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []jaegerSpan             `json:"spans"`
	Processes map[string]jaegerProcess `json:"processes"`
}

type jaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []jaegerTag `json:"tags"`
}

type jaegerProcess struct {
	ServiceName string `json:"serviceName"`
}

type jaegerTag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// tag returns a tag's value as text.
func (s jaegerSpan) tag(key string) (string, bool) {
	for _, tg := range s.Tags {
		if tg.Key == key {
			return fmt.Sprint(tg.Value), true
		}
	}
	return "", false
}

func (tr jaegerTrace) service(s jaegerSpan) string { return tr.Processes[s.ProcessID].ServiceName }

func (tr jaegerTrace) spansOf(service string) []jaegerSpan {
	var out []jaegerSpan
	for _, s := range tr.Spans {
		if tr.service(s) == service {
			out = append(out, s)
		}
	}
	return out
}

// parent returns the span id s is a CHILD_OF, or "".
func (tr jaegerTrace) parent(s jaegerSpan) string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

func (tr jaegerTrace) nameOf(spanID string) string {
	for _, s := range tr.Spans {
		if s.SpanID == spanID {
			return tr.service(s) + " " + s.OperationName
		}
	}
	return "not in the trace"
}

// spanMatch selects spans for jaegerTrace.one and says which.
type spanMatch struct {
	what string
	ok   func(jaegerSpan) bool
}

// named matches the spans called name.
func named(name string) spanMatch {
	return spanMatch{"named " + strconv.Quote(name), func(s jaegerSpan) bool { return s.OperationName == name }}
}

// tagged matches the spans that have the tag key.
func tagged(key string) spanMatch {
	return spanMatch{"with tag " + key, func(s jaegerSpan) bool { _, ok := s.tag(key); return ok }}
}

// one returns the only span of service with that span.kind that m
// matches, and fails the test when there is not exactly one.
func (tr jaegerTrace) one(t *testing.T, service, kind string, m spanMatch) jaegerSpan {
	t.Helper()
	var found []jaegerSpan
	for _, s := range tr.spansOf(service) {
		if k, _ := s.tag("span.kind"); k == kind && m.ok(s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s spans of %s %s, want 1; the trace: %s", len(found), kind, service, m.what, describe([]jaegerTrace{tr}))
	}
	return found[0]
}

// describe lists traces and their spans, for failure messages.
func describe(trs []jaegerTrace) string {
	if len(trs) == 0 {
		return "no trace"
	}
	var b strings.Builder
	for _, tr := range trs {
		fmt.Fprintf(&b, "\ntrace %s:", tr.TraceID)
		spans := append([]jaegerSpan(nil), tr.Spans...)
		sort.Slice(spans, func(i, k int) bool { return spans[i].SpanID < spans[k].SpanID })
		for _, s := range spans {
			kind, _ := s.tag("span.kind")
			fmt.Fprintf(&b, "\n  %s %s %-9s %-30q parent %s", s.SpanID, tr.service(s), kind, s.OperationName, tr.parent(s))
		}
	}
	return b.String()
}

// findLog returns the first JSON log line of the file that match accepts,
// or nil.
func findLog(t *testing.T, path string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // not a log record (e.g. a panic's text)
		}
		if match(l) {
			return l
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read %s: %v", path, err)
	}
	return nil
}
