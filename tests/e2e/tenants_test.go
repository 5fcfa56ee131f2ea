package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// tenantKeys are three keys over two tenants: acme has two (rotation),
// globex one.
var tenantKeys = map[string]string{"acme-ci": "acme-key-1", "acme-ops": "acme-key-2", "globex-app": "globex-key-1"}

func tenantKeysConfig() string {
	return "acme:ci:" + sha256Hex(tenantKeys["acme-ci"]) + ",acme:ops:" + sha256Hex(tenantKeys["acme-ops"]) +
		",globex:app:" + sha256Hex(tenantKeys["globex-app"])
}

// as sends a request with key and returns the status, the headers and the
// decoded JSON answer.
func (s *stack) as(key, method, path, body string) (int, http.Header, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.api+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	code, m := decode(s.t, resp)
	return code, resp.Header, m
}

// waitFor polls a transaction with key until it is processed or failed.
func (s *stack) waitFor(key, id string, timeout time.Duration) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		code, _, res := s.as(key, http.MethodGet, "/v1/transactions/"+id, "")
		if code == http.StatusOK && (res["status"] == "processed" || res["status"] == "failed") {
			return res
		}
		last = res
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("transaction %s not final within %s; last seen %v", id, timeout, last)
	return nil
}

// TestTenants runs the api with three keys over two tenants: each key
// reads, lists and writes within its tenant only; the same id under two
// tenants is two transactions, converted each with its own amount; the
// logs and metrics name the tenant, never a key.
func TestTenants(t *testing.T) {
	t.Parallel()
	s := start(t, options{apiKeys: tenantKeysConfig()})
	acme, acme2, globex := tenantKeys["acme-ci"], tenantKeys["acme-ops"], tenantKeys["globex-app"]
	usd := body("42", "100.0", "USD", "2024-09-11T00:00:00Z")
	jpy := body("42", "12345", "JPY", "2024-09-11T12:00:00Z")
	for _, step := range []struct {
		name, key, body string
		want            int
	}{
		{"acme posts 42", acme, usd, http.StatusCreated},
		{"globex posts its own 42", globex, jpy, http.StatusCreated},
		{"acme's other key replays 42", acme2, usd, http.StatusOK},
		{"acme reuses 42 with other content", acme2, jpy, http.StatusConflict},
		{"globex reuses 42 with other content", globex, usd, http.StatusConflict},
	} {
		if code, _, res := s.as(step.key, http.MethodPost, "/v1/transactions", step.body); code != step.want {
			t.Fatalf("%s: %d %v, want %d", step.name, code, res, step.want)
		}
	}
	batch := "[" + body("g-1", "100.0", "USD", "2024-09-11T00:00:00Z") + "," + body("42", "12345", "JPY", "2024-09-11T12:00:00Z") + "]"
	code, _, res := s.as(globex, http.MethodPost, "/v1/transactions/batch", batch)
	if results, _ := res["results"].([]any); code != http.StatusOK || len(results) != 2 ||
		results[0].(map[string]any)["status"] != 201.0 || results[1].(map[string]any)["status"] != 200.0 {
		t.Fatalf("globex's batch: %d %v, want g-1 created and 42 replayed", code, res)
	}

	// Each tenant's 42 is converted with its own amount.
	if res := s.waitFor(acme, "42", 30*time.Second); res["amount"] != "100.00" || res["converted_amount"] != "90.56" {
		t.Errorf("acme's 42: %v, want 100.00 USD as 90.56 EUR", res)
	}
	if res := s.waitFor(globex, "42", 30*time.Second); res["amount"] != "12345" || res["converted_amount"] != "78.83" {
		t.Errorf("globex's 42: %v, want 12345 JPY as 78.83 EUR", res)
	}
	s.waitFor(globex, "g-1", 30*time.Second)

	// Another tenant's transaction does not exist for a key.
	for _, key := range []string{acme, acme2} {
		if code, _, res := s.as(key, http.MethodGet, "/v1/transactions/g-1", ""); code != http.StatusNotFound {
			t.Errorf("acme reads globex's g-1: %d %v, want 404", code, res)
		}
	}
	for key, want := range map[string][]string{acme: {"42"}, acme2: {"42"}, globex: {"g-1", "42"}} {
		for _, q := range []string{"", "?user_id=123", "?status=processed", "?status=received"} {
			_, _, res := s.as(key, http.MethodGet, "/v1/transactions"+q, "")
			items, _ := res["items"].([]any)
			var got []string
			for _, it := range items {
				got = append(got, fmt.Sprint(it.(map[string]any)["transaction_id"]))
			}
			if q == "?status=received" {
				want = nil
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("list%s with %s: %v, want %v", q, key[:5], got, want)
			}
		}
	}

	for series, want := range map[string]float64{
		`txpersister_transactions_accepted_total{tenant="acme"}`:    1,
		`txpersister_transactions_accepted_total{tenant="globex"}`:  2,
		`txpersister_transactions_replayed_total{tenant="acme"}`:    1,
		`txpersister_transactions_replayed_total{tenant="globex"}`:  1,
		`txpersister_transactions_conflicts_total{tenant="globex"}`: 1,
	} {
		if got := metric(t, s.apiAdmin, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	for _, service := range []string{"api", "converter"} {
		log, err := os.ReadFile(s.logs[service])
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), `"tenant":"globex"`) {
			t.Errorf("the %s's log never names the tenant globex", service)
		}
		for _, key := range tenantKeys {
			if strings.Contains(string(log), key) || strings.Contains(string(log), sha256Hex(key)) {
				t.Errorf("the %s's log shows a key or its hash", service)
			}
		}
	}
}

// TestHardenedEdge checks at the HTTP edge what a security review asked
// for: pprof is off by default, an error answer stays small, RFC 3339's
// lowercase letters and a leap second are read, and failed
// authentications from one address are limited.
func TestHardenedEdge(t *testing.T) {
	t.Parallel()
	s := start(t, options{apiKeys: tenantKeysConfig(), apiEnv: []string{"AUTH_FAILURE_BURST=3", "AUTH_FAILURE_RATE=0.001"}})
	acme := tenantKeys["acme-ci"]
	for _, admin := range []string{s.apiAdmin, s.convAdmin} {
		resp, err := http.Get(admin + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s/debug/pprof/: %d, want 404 without PPROF=true", admin, resp.StatusCode)
		}
	}

	var b strings.Builder
	b.WriteString(`{"transaction_id": "many", "amount": 1, "currency": "USD", "user_id": "1", "timestamp": "2024-09-11T00:00:00Z"`)
	for i := range 3000 {
		fmt.Fprintf(&b, `, "x%d": 1`, i)
	}
	b.WriteString("}")
	req, err := http.NewRequest(http.MethodPost, s.api+"/v1/transactions", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+acme)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var p struct {
		Errors     []any
		ErrorCount int `json:"error_count"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || resp.StatusCode != http.StatusUnprocessableEntity || len(p.Errors) != 20 || p.ErrorCount != 3000 {
		t.Errorf("3000 unknown fields: %d, %d errors of %d in %d bytes (%v); want one 422 listing 20 of 3000", resp.StatusCode, len(p.Errors), p.ErrorCount, len(raw), err)
	}

	for ts, want := range map[string]string{
		"2024-09-11t10:00:00z":      "2024-09-11T10:00:00Z",
		"2016-12-31T23:59:60Z":      "2017-01-01T00:00:00Z",
		"2017-01-01t00:59:60+01:00": "2017-01-01T00:00:00Z",
	} {
		code, _, res := s.as(acme, http.MethodPost, "/v1/transactions", body("ts-"+strings.NewReplacer(":", "", "+", "").Replace(ts), "1", "EUR", ts))
		if code != http.StatusCreated || res["timestamp"] != want {
			t.Errorf("timestamp %s: %d %v, want 201 with %s", ts, code, res, want)
		}
	}
	code, _, res := s.as(acme, http.MethodPost, "/v1/transactions", body("ts-noon-60", "1", "EUR", "2016-12-31T12:00:60Z"))
	if code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(res["errors"]), "leap second") {
		t.Errorf("second 60 at noon: %d %v, want 422 saying it is valid only as a leap second", code, res)
	}

	// Three failed authentications, then the address is refused, even
	// with a right key, before its key is looked at.
	for i := range 3 {
		if code, _, _ := s.as(fmt.Sprint("guess-", i), http.MethodGet, "/v1/transactions", ""); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, code)
		}
	}
	code, h, res := s.as(acme, http.MethodGet, "/v1/transactions", "")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || res["type"] != "/problems/rate-limited" {
		t.Errorf("after 3 failures: %d %v %v, want a 429 problem with Retry-After", code, h, res)
	}
	if got := metric(t, s.apiAdmin, `txpersister_auth_failures_total{reason="blocked_address"}`); got != 1 {
		t.Errorf("blocked_address = %v, want 1", got)
	}
}
