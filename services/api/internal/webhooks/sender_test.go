package webhooks

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// memQueue is a Queue in memory: what is due, and what was recorded.
type memQueue struct {
	mu       sync.Mutex
	due      []Due
	recorded []Result
	done     chan struct{} // closed when want results are recorded
	want     int
}

func (q *memQueue) Claim(_ context.Context, _ time.Time, _ time.Duration, limit int) ([]Due, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(limit, len(q.due))
	out := q.due[:n]
	q.due = q.due[n:]
	return out, nil
}

func (q *memQueue) Record(_ context.Context, rs []Result, _ time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range rs {
		q.recorded = append(q.recorded, r)
		if len(q.recorded) == q.want {
			close(q.done)
		}
	}
	return nil
}

func (q *memQueue) Prune(context.Context, time.Time, int) (int, error) { return 0, nil }

func (q *memQueue) Backlog(context.Context, time.Time) (Backlog, error) {
	return Backlog{Pending: len(q.due)}, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestSender(q Queue, allowPrivate bool) *Sender {
	return NewSender(q, SenderConfig{
		Delays: []time.Duration{time.Minute, time.Hour}, Timeout: 2 * time.Second, Concurrency: 2,
		PollPeriod: time.Hour, DisableAfter: time.Hour, Policy: NewPolicy(allowPrivate),
	}, quiet, telemetry.NewMetrics("t"), time.Now)
}

func due(url string, try int) Due {
	return Due{
		Tenant: "acme", EndpointID: "ep_1", MessageID: "msg_1", URL: url, Secrets: []string{testSecret},
		Body: []byte(`{"type":"transaction.processed"}`), Attempt: try, Try: try,
	}
}

var testSecret = NewSecret()

func TestDeliverSignsAndSchedulesByTheAnswer(t *testing.T) {
	var got []http.Header
	var mu sync.Mutex
	answers := []int{500, 302, 200}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		wh, _ := standardwebhooks.NewWebhook(testSecret)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("the reference library refuses attempt %d: %v", len(got)+1, err)
		}
		got = append(got, r.Header.Clone())
		if answers[0] == 302 {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(answers[0])
		answers = answers[1:]
	}))
	defer srv.Close()
	q := &memQueue{}
	s := newTestSender(q, true)
	for try := 1; try <= 3; try++ {
		s.deliver(context.Background(), due(srv.URL, try))
	}
	if len(q.recorded) != 3 || len(got) != 3 {
		t.Fatalf("recorded %d attempts, the receiver saw %d; want 3 and 3 (a redirect is not followed)", len(q.recorded), len(got))
	}
	for i, h := range got {
		if id := h.Get("webhook-id"); id != "msg_1" {
			t.Errorf("attempt %d: webhook-id %q, want the message's on every attempt", i+1, id)
		}
	}
	for i, want := range []struct {
		state, err string
		status     int
		delay      time.Duration
	}{
		{StatePending, "answered 500", 500, time.Minute},
		{StatePending, "answered 302", 302, time.Hour},
		{StateDelivered, "", 200, 0},
	} {
		r := q.recorded[i]
		if r.State != want.state || !strings.HasPrefix(r.Err, want.err) || r.StatusCode != want.status {
			t.Errorf("attempt %d: %s %d %q, want %s %d %q", i+1, r.State, r.StatusCode, r.Err, want.state, want.status, want.err)
		}
		if want.delay > 0 && !r.Next.Equal(r.StartedAt.Add(r.Duration).Add(want.delay)) {
			t.Errorf("attempt %d: next at %v, want %v after its end", i+1, r.Next, want.delay)
		}
	}
	// After the last delay, a failure is final.
	s.deliver(context.Background(), due(srv.URL+"/gone", 3))
	if r := q.recorded[3]; r.State != StateFailed {
		t.Errorf("a failure after the schedule's end: %s, want failed", r.State)
	}
}

func TestDeliverRefusesAPrivateAddressAtSendTime(t *testing.T) {
	called := false
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true }))
	defer srv.Close()
	q := &memQueue{}
	// As if the name had resolved to a public address when the endpoint
	// was made, and to 127.0.0.1 now.
	newTestSender(q, false).deliver(context.Background(), due(srv.URL, 1))
	if called {
		t.Error("the sender called a loopback address")
	}
	if r := q.recorded[0]; r.State != StatePending || !strings.Contains(r.Err, "not a public address") {
		t.Errorf("recorded %s %q, want pending, refused as not public", r.State, r.Err)
	}
}

func TestDeliverGivesUpAtTheTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select { // never answers
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	q := &memQueue{}
	s := newTestSender(q, true)
	s.cfg.Timeout = 50 * time.Millisecond
	s.deliver(context.Background(), due(srv.URL, 1))
	if r := q.recorded[0]; r.State != StatePending || r.StatusCode != 0 || r.Err == "" {
		t.Errorf("recorded %s %d %q, want pending with no status and the reason", r.State, r.StatusCode, r.Err)
	}
}

func TestRunDeliversEverythingDueAndStops(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("webhook-id")]++
		mu.Unlock()
	}))
	defer srv.Close()
	const n = 25
	q := &memQueue{done: make(chan struct{}), want: n}
	for range n {
		d := due(srv.URL, 1)
		d.MessageID = NewMessageID()
		q.due = append(q.due, d)
	}
	s := newTestSender(q, true)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { s.Run(ctx); close(stopped) }()
	select {
	case <-q.done:
	case <-time.After(time.Minute):
		t.Fatalf("recorded %d of %d within a minute", len(q.recorded), n)
	}
	cancel()
	<-stopped
	if len(seen) != n {
		t.Errorf("the receiver saw %d messages, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("%s sent %d times, want once", id, k)
		}
	}
	if got := s.delivered.Get(); got != n {
		t.Errorf("webhook_deliveries_total{outcome=delivered} = %d, want %d", got, n)
	}
}

func TestDeliverCutShortByStoppingIsDueAgainAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // then the server sees the client go
		cancel()                  // the sender stops while the receiver works
		<-r.Context().Done()
	}))
	defer srv.Close()
	q := &memQueue{}
	s := newTestSender(q, true)
	s.deliver(ctx, due(srv.URL, 1))
	r := q.recorded[0]
	if r.State != StatePending || !r.Next.Equal(r.StartedAt) || !strings.Contains(r.Err, "interrupted") {
		t.Errorf("recorded %s next %v (started %v) %q; want pending, due at once, interrupted", r.State, r.Next, r.StartedAt, r.Err)
	}
	if n := s.retried.Get(); n != 0 {
		t.Errorf("counted %d retries, want none: the receiver did not refuse", n)
	}
}
