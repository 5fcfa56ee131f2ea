package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		code    int
		body    string
		wantErr []string // substrings of the error; nil means no error
	}{
		{name: "200", code: http.StatusOK, body: "ready"},
		{name: "204", code: http.StatusNoContent},
		{
			name: "503 quotes status and reason", code: http.StatusServiceUnavailable,
			body:    "not ready: ping postgres: connection refused\n",
			wantErr: []string{"/readyz", "503 Service Unavailable", "not ready: ping postgres: connection refused"},
		},
		{name: "500 without a body", code: http.StatusInternalServerError, wantErr: []string{"/readyz", "500 Internal Server Error"}},
		{name: "404", code: http.StatusNotFound, wantErr: []string{"404"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/readyz" {
					http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusTeapot)
					return
				}
				w.WriteHeader(tt.code)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)

			err := Get(context.Background(), srv.URL+"/readyz")
			checkProbeErr(t, err, tt.wantErr)
		})
	}
}

func TestProbeRefused(t *testing.T) {
	// A port that was just free: nothing listens there any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	err = Get(context.Background(), "http://"+addr+"/healthz")
	checkProbeErr(t, err, []string{addr + "/healthz", "refused"})
}

func TestProbeGivesUpWhenContextEnds(t *testing.T) {
	unblock := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-unblock }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(unblock) }) // runs before srv.Close

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Get(ctx, srv.URL+"/readyz")
	checkProbeErr(t, err, []string{"/readyz", "context canceled"})
}

func TestProbeBadURL(t *testing.T) {
	err := Get(context.Background(), "http://bad host/")
	checkProbeErr(t, err, []string{"bad host"})
}

// checkProbeErr fails the test unless err contains every one of want, or is
// nil when want is nil.
func checkProbeErr(t *testing.T, err error, want []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Probe: %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("Probe: nil, want an error containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Probe error %q does not contain %q", err, w)
		}
	}
}

func TestLocalURL(t *testing.T) {
	tests := []struct {
		addr, path, want string
	}{
		{addr: ":8081", path: "/readyz", want: "http://127.0.0.1:8081/readyz"},
		{addr: "0.0.0.0:8081", path: "/readyz", want: "http://127.0.0.1:8081/readyz"},
		{addr: "[::]:8082", path: "/healthz", want: "http://127.0.0.1:8082/healthz"},
		{addr: "127.0.0.1:9000", path: "/healthz", want: "http://127.0.0.1:9000/healthz"},
		{addr: "localhost:8081", path: "/readyz", want: "http://localhost:8081/readyz"},
		{addr: "[::1]:8081", path: "/readyz", want: "http://[::1]:8081/readyz"},
		{addr: "10.1.2.3:8081", path: "", want: "http://10.1.2.3:8081"},
		{addr: "not-an-addr", path: "/x", want: "http://not-an-addr/x"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := LocalURL(tt.addr, tt.path); got != tt.want {
				t.Errorf("LocalURL(%q, %q) = %q, want %q", tt.addr, tt.path, got, tt.want)
			}
		})
	}
}
