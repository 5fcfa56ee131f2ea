package server

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServeUntilContextDone(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A request in flight when the context ends must still be answered.
	inHandler := make(chan struct{})
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(inHandler)
			<-release
		}
		_, _ = w.Write([]byte("hi")) // the client's read is what the test checks
	})}
	var logs syncBuffer
	log := telemetry.NewLogger(&logs, telemetry.LogConfig{Format: "json"}, "test")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, srv, ln, log) }()

	url := "http://" + ln.Addr().String()
	if code, body := get(t, http.DefaultClient, http.MethodGet, url+"/"); code != http.StatusOK || body != "hi" {
		t.Fatalf("GET / = %d %q, want 200 hi", code, body)
	}

	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	<-inHandler
	cancel()
	// Shutdown has begun once the listener refuses new connections.
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	close(release)

	if code := <-slow; code != http.StatusOK {
		t.Errorf("in-flight request got status %d, want 200", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve returned %v, want nil after a clean shutdown", err)
	}
	for _, msg := range []string{"http server listening", "http server stopped"} {
		if !strings.Contains(logs.String(), msg) {
			t.Errorf("logs lack %q:\n%s", msg, logs.String())
		}
	}
}

func TestRunListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })

	srv := &http.Server{Addr: ln.Addr().String()}
	err = Run(context.Background(), srv, nil)
	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Errorf("Run on a taken port = %v, want a listen error naming the address", err)
	}
}

func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// With the context already done, Run listens, then shuts down.
	if err := Run(ctx, &http.Server{Addr: "127.0.0.1:0"}, nil); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// get makes one request and returns the status and the body.
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
