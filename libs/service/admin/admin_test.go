package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// get fetches url and returns the status and body.
func get(t *testing.T, client *http.Client, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(body)
}

// newAdmin serves an admin handler whose readiness check times out after
// readyTimeout, for the length of the test.
func newAdmin(t *testing.T, m *telemetry.Metrics, ready func(context.Context) error, readyTimeout time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(handler(m, ready, readyTimeout))
	t.Cleanup(srv.Close)
	return srv
}

func TestAdminReadyz(t *testing.T) {
	// unblock releases checks that ignore their context, once the test ends.
	unblock := make(chan struct{})
	t.Cleanup(func() { close(unblock) })

	tests := []struct {
		name     string
		ready    func(context.Context) error
		wantCode int
		wantBody string
	}{
		{name: "nil check", ready: nil, wantCode: http.StatusOK, wantBody: "ready"},
		{name: "ready", ready: func(context.Context) error { return nil }, wantCode: http.StatusOK, wantBody: "ready"},
		{
			name:     "not ready",
			ready:    func(context.Context) error { return errors.New("ping postgres: connection refused") },
			wantCode: http.StatusServiceUnavailable, wantBody: "not ready: ping postgres: connection refused",
		},
		{
			name:     "check honours its deadline",
			ready:    func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			wantCode: http.StatusServiceUnavailable, wantBody: "not ready:",
		},
		{
			name:     "check ignores its deadline",
			ready:    func(context.Context) error { <-unblock; return nil },
			wantCode: http.StatusServiceUnavailable, wantBody: "not ready: readiness check did not finish in time",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newAdmin(t, telemetry.NewMetrics(""), tt.ready, 50*time.Millisecond)
			code, body := get(t, srv.Client(), http.MethodGet, srv.URL+"/readyz")
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Errorf("GET /readyz = %d %q, want %d with %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	m := telemetry.NewMetrics("txp_test_")
	m.Counter("things_total").Add(5)
	srv := newAdmin(t, m, nil, ReadyTimeout)

	tests := []struct {
		method, path string
		wantCode     int
		wantBody     []string
	}{
		{"GET", "/healthz", http.StatusOK, []string{"ok"}},
		{"POST", "/healthz", http.StatusMethodNotAllowed, nil},
		{"GET", "/metrics", http.StatusOK, []string{"txp_test_things_total 5", "go_goroutines ", "process_cpu_seconds_total"}},
		{"GET", "/debug/pprof/", http.StatusOK, []string{"goroutine"}},
		{"GET", "/debug/pprof/goroutine?debug=1", http.StatusOK, []string{"goroutine profile"}},
		{"GET", "/nope", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			code, body := get(t, srv.Client(), tt.method, srv.URL+tt.path)
			if code != tt.wantCode {
				t.Errorf("status = %d, want %d (body %q)", code, tt.wantCode, body)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%.2000s", want, body)
				}
			}
		})
	}
}

func TestNewServer(t *testing.T) {
	srv := NewServer("127.0.0.1:0", telemetry.NewMetrics(""), nil)
	if srv.Addr != "127.0.0.1:0" {
		t.Errorf("Addr = %q, want 127.0.0.1:0", srv.Addr)
	}
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("timeouts read header %v, read %v, idle %v: want all set", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout)
	}
	// pprof refuses a default 30 s profile when the write timeout is shorter.
	if srv.WriteTimeout <= 30*time.Second {
		t.Errorf("WriteTimeout = %v, want more than 30s so /debug/pprof/profile works", srv.WriteTimeout)
	}
}
