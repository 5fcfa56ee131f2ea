package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPrometheusScrapesServicesAndLoadsRules runs a real Prometheus with
// the project's ops/prometheus/prometheus.local.yml, its targets rewritten
// to the test stack's admin ports and its intervals shortened, and the rule
// files it names (ops/prometheus/alerts.yml) loaded as they are. It checks,
// through Prometheus' HTTP API, that the api and the converter are scraped
// and up, that every rule group of alerts.yml is loaded and evaluates
// without error, that the services' series arrive, and that every
// dashboard and rule expression is PromQL this Prometheus accepts.
//
// The server is Debian's prometheus package (2.42; the compose stack runs
// 3.x), taken out of the .deb as scripts/check-compose.sh takes promtool,
// never installed; $PROMETHEUS names another binary.
func TestPrometheusScrapesServicesAndLoadsRules(t *testing.T) {
	t.Parallel()
	bin := prometheusBinary(t)
	s := start(t, options{})
	driveEveryOutcome(t, s)

	promAddr := freeAddr(t)
	cfg := localPrometheusConfig(t, map[string]string{
		"127.0.0.1:8081": strings.TrimPrefix(s.apiAdmin, "http://"),
		"127.0.0.1:8082": strings.TrimPrefix(s.convAdmin, "http://"),
		"127.0.0.1:9090": promAddr,
	})
	prom := runPrometheus(t, bin, cfg, promAddr)

	// Both services scraped and up.
	waitFor(t, 60*time.Second, "the api and converter targets up", func() (bool, string) {
		var res struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		}
		promGet(t, prom, "/api/v1/targets", nil, &res)
		health := map[string]string{}
		for _, tg := range res.ActiveTargets {
			health[tg.Labels["job"]] = tg.Health + " " + tg.LastError
		}
		return strings.HasPrefix(health["api"], "up") && strings.HasPrefix(health["converter"], "up"), fmt.Sprint(health)
	})

	// Every group of alerts.yml loaded, every rule evaluated without error.
	rulesFile, err := os.ReadFile(filepath.Join(repoRoot, "ops/prometheus/alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wantGroups []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- name:\s*(\S+)\s*$`).FindAllStringSubmatch(string(rulesFile), -1) {
		wantGroups = append(wantGroups, m[1])
	}
	if len(wantGroups) == 0 {
		t.Fatal("no rule group found in ops/prometheus/alerts.yml")
	}
	waitFor(t, 60*time.Second, "every rule group loaded and evaluated", func() (bool, string) {
		var res struct {
			Groups []struct {
				Name  string `json:"name"`
				File  string `json:"file"`
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		promGet(t, prom, "/api/v1/rules", nil, &res)
		var got, unhealthy []string
		rules := 0
		for _, g := range res.Groups {
			got = append(got, g.Name)
			for _, r := range g.Rules {
				rules++
				if r.Health != "ok" {
					unhealthy = append(unhealthy, fmt.Sprintf("%s/%s: %s %s", g.Name, r.Name, r.Health, r.LastError))
				}
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(wantGroups))
		return slices.Equal(got, want) && rules > 0 && len(unhealthy) == 0,
			fmt.Sprintf("groups %q (want %q), %d rules, not ok: %q", got, want, rules, unhealthy)
	})

	// The services' series arrive.
	waitFor(t, 60*time.Second, "the services' series in Prometheus", func() (bool, string) {
		var res struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}
		promGet(t, prom, "/api/v1/query", url.Values{"query": {`count by (job) (txpersister_transactions_accepted_total or txpersister_transactions_processed_total)`}}, &res)
		jobs := map[string]bool{}
		for _, r := range res.Result {
			jobs[r.Metric["job"]] = true
		}
		return jobs["api"] && jobs["converter"], fmt.Sprint(jobs)
	})

	// Every expression of the dashboards and rules parses and evaluates.
	// The dashboard's $job and $instance are evaluated as their "All"
	// value, ".+".
	grafanaVars := regexp.MustCompile(`\$__rate_interval|\$__interval|\$__range`)
	allValues := strings.NewReplacer(`"$job"`, `".+"`, `"$instance"`, `".+"`)
	for where, exprs := range opsExpressions(t, repoRoot) {
		for _, e := range exprs {
			q := allValues.Replace(grafanaVars.ReplaceAllString(e, "1m"))
			if strings.Contains(q, "$") {
				t.Errorf("%s: %q uses a Grafana variable this test does not know", where, e)
				continue
			}
			var res json.RawMessage
			if status, errMsg := promQuery(t, prom, q, &res); status != "success" {
				t.Errorf("%s: %q: Prometheus says %s: %s", where, e, status, errMsg)
			}
		}
	}
}

// localPrometheusConfig returns ops/prometheus/prometheus.local.yml with
// its targets replaced by addrs (old to new; every old one must occur), the
// rule files given by absolute path, and one-second intervals.
func localPrometheusConfig(t *testing.T, addrs map[string]string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join(repoRoot, "ops/prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "prometheus.local.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(b)
	for from, to := range addrs {
		if !strings.Contains(cfg, `"`+from+`"`) {
			t.Fatalf("prometheus.local.yml has no target %q any more: update this test", from)
		}
		cfg = strings.ReplaceAll(cfg, `"`+from+`"`, `"`+to+`"`)
	}
	rule := regexp.MustCompile(`(?m)^(\s*-\s*)(alerts\.yml)\s*$`)
	if !rule.MatchString(cfg) {
		t.Fatal("prometheus.local.yml no longer loads alerts.yml: update this test")
	}
	cfg = rule.ReplaceAllString(cfg, "${1}"+filepath.Join(dir, "alerts.yml"))
	interval := regexp.MustCompile(`(?m)^(\s*(?:scrape|evaluation)_interval:\s*)\S+`)
	if len(interval.FindAllString(cfg, -1)) != 2 {
		t.Fatal("prometheus.local.yml has not one global scrape_interval and evaluation_interval: update this test")
	}
	cfg = interval.ReplaceAllString(cfg, "${1}1s")
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// runPrometheus starts Prometheus on addr with the config file and a
// storage of the test's own, waits until it is ready, and returns its base
// URL; it is stopped with SIGTERM when the test ends.
func runPrometheus(t *testing.T, bin, config, addr string) string {
	t.Helper()
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+addr,
		"--log.level=info")
	base := "http://" + addr
	startProcess(t, "prometheus", cmd, false).waitReady(t, base+"/-/ready", 60*time.Second)
	return base
}

// promGet decodes the data of a successful Prometheus API answer into v.
func promGet(t *testing.T, base, path string, q url.Values, v any) {
	t.Helper()
	u := base + path
	if q != nil {
		u += "?" + q.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &env); err != nil || env.Status != "success" {
		t.Fatalf("GET %s: %s %s", u, resp.Status, b)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, env.Data)
	}
}

// promQuery runs an instant query and returns the answer's status and
// error; on success its data is decoded into v.
func promQuery(t *testing.T, base, query string, v any) (status, errMsg string) {
	t.Helper()
	resp, err := http.PostForm(base+"/api/v1/query", url.Values{"query": {query}})
	if err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("query %q: %s: %v", query, resp.Status, err)
	}
	if env.Status == "success" {
		if err := json.Unmarshal(env.Data, v); err != nil {
			t.Fatalf("query %q: %v", query, err)
		}
	}
	return env.Status, env.Error
}

// waitFor polls cond until it holds, failing the test with cond's last
// word after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, timeout, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// promBinary holds the Prometheus server found or unpacked, once for all
// tests.
var promBinary struct {
	once sync.Once
	path string
	err  error
}

// prometheusBinary returns a Prometheus server binary from
// scripts/prometheus.sh: $PROMETHEUS, a prometheus on the PATH, or the one
// of Debian's prometheus package, unpacked (never installed: installing
// would start a service) into the cache scripts/check-compose.sh shares. It
// fails the test, saying why, when none can be had.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	promBinary.once.Do(func() {
		promBinary.path, promBinary.err = findPrometheus()
	})
	if promBinary.err != nil {
		t.Fatalf("no Prometheus server binary: %v", promBinary.err)
	}
	return promBinary.path
}

func findPrometheus() (string, error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	var stderr strings.Builder
	cmd := exec.Command(filepath.Join(root, "scripts", "prometheus.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/prometheus.sh: %w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}
