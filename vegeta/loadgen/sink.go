package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// sink is a webhook receiver for load tests: it answers every POST 204
// and counts the messages and their distinct webhook-ids; GET /count
// answers "messages distinct last" (last: the Unix time in milliseconds
// of the last message, 0 before the first). It checks no signature: the
// e2e tests do, and here it would take CPU from what is measured.
type sink struct {
	mu       sync.Mutex
	messages int64
	ids      map[string]struct{}
	last     time.Time
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		_, _ = io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.messages++
		s.ids[r.Header.Get("webhook-id")] = struct{}{}
		s.last = time.Now()
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		s.mu.Lock()
		defer s.mu.Unlock()
		var last int64
		if !s.last.IsZero() {
			last = s.last.UnixMilli()
		}
		fmt.Fprintf(w, "%d %d %d\n", s.messages, len(s.ids), last)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// runSink serves the sink on -addr until ctx ends, then prints its counts.
func runSink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9099", "the address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("sink: %w", err)
	}
	s := &sink{ids: map[string]struct{}{}}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.WithoutCancel(ctx))
	}()
	fmt.Fprintf(stderr, "sink: listening on %s\n", l.Addr())
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sink: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(stdout, "sink: %d messages, %d distinct webhook-ids\n", s.messages, len(s.ids))
	return nil
}
