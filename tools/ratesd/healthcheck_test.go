package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthcheckAgainstRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env(map[string]string{"RATESD_ADDR": "127.0.0.1:0"}), io.Discard,
			func(addr string) { addrc <- addr })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start listening")
	}

	if err := healthcheck(context.Background(), env(map[string]string{"RATESD_ADDR": addr})); err != nil {
		t.Errorf("healthcheck of a running ratesd: %v", err)
	}
}

func TestHealthcheckFails(t *testing.T) {
	unhealthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "loading", http.StatusServiceUnavailable)
	}))
	t.Cleanup(unhealthy.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		addr    string
		wantErr string
	}{
		{name: "503", addr: strings.TrimPrefix(unhealthy.URL, "http://"), wantErr: "503 Service Unavailable"},
		{name: "nothing listens", addr: closed, wantErr: "refused"},
		{name: "bad address", addr: "8090", wantErr: "RATESD_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := healthcheck(context.Background(), env(map[string]string{"RATESD_ADDR": tt.addr}))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("healthcheck err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
