package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
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
func newAdmin(t *testing.T, m *telemetry.Metrics, ready func(context.Context) error, readyTimeout time.Duration, opts ...Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(handler(m, ready, readyTimeout, opts...))
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

func TestAdminPprofIsOffByDefault(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
	}{
		{name: "no option"},
		{name: "WithPprof(false)", opts: []Option{WithPprof(false)}},
	}
	// The mux answers 404 itself, at once: pprof's handlers never answer
	// 404, and /profile would first profile for a second.
	paths := []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1", "/debug/pprof/goroutine?debug=1"}
	for _, tt := range tests {
		srv := newAdmin(t, nil, nil, ReadyTimeout, tt.opts...)
		for _, path := range paths {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				code, body := get(t, srv.Client(), http.MethodGet, srv.URL+path)
				if code != http.StatusNotFound || body != "404 page not found\n" {
					t.Errorf("GET %s = %d %q, want the mux's 404", path, code, body)
				}
			})
		}
	}
}

func TestAdminPprofWhenEnabled(t *testing.T) {
	srv := newAdmin(t, nil, nil, ReadyTimeout, WithPprof(true))
	tests := []struct {
		path     string
		wantBody string
	}{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile"},
		{"/debug/pprof/cmdline", os.Args[0]},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			code, body := get(t, srv.Client(), http.MethodGet, srv.URL+tt.path)
			if code != http.StatusOK || !strings.Contains(body, tt.wantBody) {
				t.Errorf("GET %s = %d %.200q, want 200 with %q", tt.path, code, body, tt.wantBody)
			}
		})
	}
}

func TestNewServer(t *testing.T) {
	tests := []struct {
		name      string
		opts      []Option
		wantPprof int
	}{
		{name: "default", wantPprof: http.StatusNotFound},
		{name: "WithPprof(true)", opts: []Option{WithPprof(true)}, wantPprof: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := NewServer("127.0.0.1:0", telemetry.NewMetrics(""), nil, tt.opts...)
			if srv.Addr != "127.0.0.1:0" {
				t.Errorf("Addr = %q, want 127.0.0.1:0", srv.Addr)
			}
			if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 {
				t.Errorf("timeouts read header %v, read %v, write %v, idle %v: want all set",
					srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout)
			}
			// pprof refuses a default 30 s profile when the write timeout is shorter.
			if tt.wantPprof == http.StatusOK && srv.WriteTimeout <= 30*time.Second {
				t.Errorf("WriteTimeout = %v, want more than 30s so /debug/pprof/profile works", srv.WriteTimeout)
			}
			rec := httptest.NewRecorder()
			srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
			if rec.Code != tt.wantPprof {
				t.Errorf("GET /debug/pprof/ = %d, want %d", rec.Code, tt.wantPprof)
			}
		})
	}
}
