package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{
			name: "defaults off a terminal",
			env:  map[string]string{},
			want: config{Addr: ":8090", LogLevel: slog.LevelInfo, LogFormat: "json"},
		},
		{
			name: "everything set",
			env: map[string]string{
				"RATESD_ADDR": "127.0.0.1:9000", "ECB_SOURCE": " /data/eurofxref-hist.csv ",
				"LOG_LEVEL": "debug", "LOG_FORMAT": "TEXT",
			},
			want: config{Addr: "127.0.0.1:9000", Source: "/data/eurofxref-hist.csv", LogLevel: slog.LevelDebug, LogFormat: "text"},
		},
		{
			name: "a URL is refreshed hourly by default",
			env:  map[string]string{"ECB_SOURCE": "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip"},
			want: config{Addr: ":8090", Source: "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip", Refresh: time.Hour, LogLevel: slog.LevelInfo, LogFormat: "json"},
		},
		{
			name: "a path, refreshed on request",
			env:  map[string]string{"ECB_SOURCE": "/data/eurofxref-hist.csv", "ECB_REFRESH": "10m"},
			want: config{Addr: ":8090", Source: "/data/eurofxref-hist.csv", Refresh: 10 * time.Minute, LogLevel: slog.LevelInfo, LogFormat: "json"},
		},
		{
			name: "a URL never refreshed",
			env:  map[string]string{"ECB_SOURCE": "http://h/x.csv", "ECB_REFRESH": "0"},
			want: config{Addr: ":8090", Source: "http://h/x.csv", LogLevel: slog.LevelInfo, LogFormat: "json"},
		},
		{name: "bad refresh", env: map[string]string{"ECB_SOURCE": "http://h/x.csv", "ECB_REFRESH": "hourly"}, wantErr: "ECB_REFRESH"},
		{name: "bad addr", env: map[string]string{"RATESD_ADDR": "8090"}, wantErr: "RATESD_ADDR"},
		{name: "bad level", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "bad format", env: map[string]string{"LOG_FORMAT": "xml"}, wantErr: "LOG_FORMAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadConfig(env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("loadConfig err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe to write from the server and read from
// the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var logs syncBuffer
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env(map[string]string{"RATESD_ADDR": "127.0.0.1:0"}), &logs,
			func(addr string) { addrc <- addr })
	}()

	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start listening")
	}

	resp, err := http.Get("http://" + addr + "/v1/2024-09-14?from=USD&to=EUR")
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The built-in table: 1/1.1081 for Friday 2024-09-13.
	want := `{"amount":1.0,"base":"USD","date":"2024-09-13","rates":{"EUR":0.9024456277}}`
	if got := strings.TrimSpace(string(body)); got != want {
		t.Errorf("body = %s, want %s", got, want)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	for _, wantLog := range []string{`"days":15`, `"first":"2024-09-02"`, `"latest":"2024-09-20"`, `"msg":"http server stopped"`} {
		if !strings.Contains(logs.String(), wantLog) {
			t.Errorf("logs lack %s:\n%s", wantLog, logs.String())
		}
	}
}

func TestRunFailsOnBadSource(t *testing.T) {
	err := run(context.Background(), env(map[string]string{
		"RATESD_ADDR": "127.0.0.1:0", "ECB_SOURCE": "testdata-does-not-exist.csv",
	}), io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "load rates") {
		t.Fatalf("run err = %v, want a load error", err)
	}
}

// TestRunRefreshesFromAURL serves a rates file over HTTP that gains a day,
// then breaks: ratesd serves the new day, then keeps it.
func TestRunRefreshesFromAURL(t *testing.T) {
	var mu sync.Mutex
	file, status := "Date,USD,\n2024-09-11,1.1043,\n", http.StatusOK
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		fmt.Fprint(w, file)
	}))
	t.Cleanup(src.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, env(map[string]string{"RATESD_ADDR": "127.0.0.1:0", "ECB_SOURCE": src.URL + "/eurofxref-hist.csv", "ECB_REFRESH": "100ms"}),
			io.Discard, func(addr string) { addrc <- addr })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("run returned before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start listening")
	}
	latest := func() (string, string) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Latest       string `json:"latest"`
			RefreshError string `json:"refresh_error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return h.Latest, h.RefreshError
	}
	waitFor := func(want string, wantErr bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, refreshErr := latest()
			if got == want && (refreshErr != "") == wantErr {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("latest %s (refresh error %q), want %s (an error: %v)", got, refreshErr, want, wantErr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("2024-09-11", false)
	mu.Lock()
	file = "Date,USD,\n2024-09-12,1.1016,\n2024-09-11,1.1043,\n"
	mu.Unlock()
	waitFor("2024-09-12", false)
	mu.Lock()
	status, file = http.StatusBadGateway, "<html>bad gateway</html>"
	mu.Unlock()
	waitFor("2024-09-12", true)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
