package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
	apischema "github.com/txpersister/txpersister/services/api/schema"
	converterschema "github.com/txpersister/txpersister/services/converter/schema"
	"github.com/txpersister/txpersister/vegeta/loadgen/internal/drain"
)

// newDB returns the URL of a fresh database with both services' schemas.
func newDB(t *testing.T) string {
	t.Helper()
	return pgtest.NewDatabase(t, apischema.Migrate, converterschema.Migrate)
}

func exec(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// loadgen runs the command with args and returns its exit status, stdout
// and stderr.
func loadgen(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	code := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr, func(k string) string { return env[k] })
	return code, stdout.String(), stderr.String()
}

func TestReportExitStatus(t *testing.T) {
	t.Parallel()
	url := newDB(t)
	exec(t, url, `INSERT INTO transactions (tenant, transaction_id, user_id, amount, currency, occurred_at, received_at) VALUES
		('default', 'load-ok-1', 'u', 1, 'USD', now(), now()), ('default', 'load-ok-2', 'u', 1, 'USD', now(), now()),
		('default', 'load-bad-1', 'u', 1, 'USD', now(), now()), ('default', 'load-bad-2', 'u', 1, 'USD', now(), now());
		INSERT INTO conversions (tenant, transaction_id, status, failure_reason, processed_at) VALUES
		('default', 'load-ok-1', 'failed', 'no rate', now()), ('default', 'load-ok-2', 'failed', 'no rate', now()),
		('default', 'load-bad-1', 'failed', 'no rate', now())`)
	since := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantLost int64
	}{
		{"all there", []string{"-run", "ok", "-expect", "2", "-since", since}, exitOK, 0},
		{"one pending", []string{"-run", "bad", "-expect", "2", "-drain", "100ms"}, exitLost, 1},
		{"fewer rows than answers", []string{"-run", "ok", "-expect", "3"}, exitLost, 1},
		{"expect unknown", []string{"-run", "ok"}, exitOK, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			jsonFile, shellFile := filepath.Join(dir, "drain.json"), filepath.Join(dir, "drain.env")
			args := append([]string{"report", "-json", jsonFile, "-shell", shellFile}, tt.args...)
			code, out, errOut := loadgen(t, "", map[string]string{"DATABASE_URL": url}, args...)
			if code != tt.wantCode {
				t.Fatalf("exit status %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			b, err := os.ReadFile(jsonFile)
			if err != nil {
				t.Fatal(err)
			}
			var r drain.Report
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("drain.json: %v\n%s", err, b)
			}
			if r.Lost != tt.wantLost {
				t.Errorf("drain.json says %d lost, want %d:\n%s", r.Lost, tt.wantLost, b)
			}
			env, err := os.ReadFile(shellFile)
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("\nlost=%d\n", tt.wantLost); !strings.Contains(string(env), want) {
				t.Errorf("drain.env lacks %q:\n%s", want, env)
			}
			if (tt.wantLost > 0) != strings.Contains(out, "LOST") {
				t.Errorf("text report, want LOST only when lost:\n%s", out)
			}
		})
	}
}

func TestReportUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"no run", nil, []string{"report"}},
		{"bad run", nil, []string{"report", "-run", "a_b"}},
		{"bad since", nil, []string{"report", "-run", "a", "-since", "yesterday"}},
		{"unreachable database", nil, []string{"report", "-run", "a", "-database-url", "postgres://postgres@127.0.0.1:1/x?connect_timeout=2"}},
		{"unknown command", nil, []string{"attack"}},
		{"no command", nil, nil},
		{"bad batch", nil, []string{"targets", "-run", "r", "-batch", "1001"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if code, _, errOut := loadgen(t, "", tt.env, tt.args...); code != exitError || errOut == "" {
				t.Errorf("exit status %d, stderr %q; want %d and a message", code, errOut, exitError)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	url := newDB(t)
	if code, out, errOut := loadgen(t, "", nil, "check", "-database-url", url); code != exitOK {
		t.Errorf("migrated database: exit status %d, stdout %q, stderr %q", code, out, errOut)
	}
	empty := pgtest.NewDatabase(t)
	if code, _, errOut := loadgen(t, "", map[string]string{"DATABASE_URL": empty}, "check"); code != exitError || !strings.Contains(errOut, "lacks the api's and the converter's published views") {
		t.Errorf("empty database: exit status %d, stderr %q; want %d and what is missing", code, errOut, exitError)
	}
}

func TestTargetsCount(t *testing.T) {
	t.Parallel()
	code, out, errOut := loadgen(t, "", nil, "targets", "-run", "x", "-n", "3", "-batch", "2")
	if code != exitOK {
		t.Fatalf("exit status %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.Contains(l, `"url":"http://127.0.0.1:8080/v1/transactions/batch"`) {
			t.Errorf("target %s, want the batch endpoint on the default URL", l)
		}
	}
}

func TestResultsShell(t *testing.T) {
	t.Parallel()
	in := `{"code":201,"timestamp":"2025-01-01T00:00:00Z","latency":2000000,"error":"","body":null}
{"code":0,"timestamp":"2025-01-01T00:00:01Z","latency":3000000,"error":"timeout","body":null}
`
	shell := filepath.Join(t.TempDir(), "attack.env")
	code, text, errOut := loadgen(t, in, nil, "results", "-shell", shell)
	if code != exitOK {
		t.Fatalf("exit status %d: %s", code, errOut)
	}
	if !strings.Contains(text, "requests 2 ") {
		t.Errorf("text summary lacks the request count:\n%s", text)
	}
	b, err := os.ReadFile(shell)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{"requests=2\n", "accepted=1\n", "error_ratio=0.500000\n", "codes=0:1,201:1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestSinkCounts(t *testing.T) {
	s := &sink{ids: map[string]struct{}{}}
	for _, id := range []string{"msg_1", "msg_2", "msg_1"} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
		req.Header.Set("webhook-id", id)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("POST: %d", rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/count", nil))
	var messages, distinct, last int64
	if _, err := fmt.Sscan(rec.Body.String(), &messages, &distinct, &last); err != nil || messages != 3 || distinct != 2 || last == 0 {
		t.Errorf("GET /count = %q (%v), want 3 messages, 2 distinct and a time", rec.Body, err)
	}
}
