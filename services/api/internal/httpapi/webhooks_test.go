package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/api/internal/webhooks"
)

// memHooks is a webhooks.Store in memory.
type memHooks struct {
	mu      sync.Mutex
	eps     []webhooks.Endpoint
	replays [][2]time.Time
}

func (m *memHooks) CreateEndpoint(_ context.Context, e webhooks.Endpoint, max int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.eps) >= max {
		return webhooks.ErrLimit
	}
	m.eps = append(m.eps, e)
	return nil
}

func (m *memHooks) Endpoints(_ context.Context, tenant string) ([]webhooks.Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.eps), nil
}

func (m *memHooks) find(tenant, id string) (int, error) {
	for i, e := range m.eps {
		if e.Tenant == tenant && e.ID == id {
			return i, nil
		}
	}
	return 0, webhooks.ErrNotFound
}

func (m *memHooks) Endpoint(_ context.Context, tenant, id string) (webhooks.Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.find(tenant, id)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	return m.eps[i], nil
}

func (m *memHooks) DeleteEndpoint(_ context.Context, tenant, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.find(tenant, id)
	if err == nil {
		m.eps = slices.Delete(m.eps, i, i+1)
	}
	return err
}

func (m *memHooks) RotateSecret(_ context.Context, tenant, id, secret string, until time.Time) (webhooks.Endpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, err := m.find(tenant, id)
	if err != nil {
		return webhooks.Endpoint{}, err
	}
	e := &m.eps[i]
	e.PreviousSecret, e.PreviousSecretUntil, e.Secret = e.Secret, until, secret
	return *e, nil
}

func (m *memHooks) Attempts(_ context.Context, tenant, id string, _ int) ([]webhooks.Attempt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.find(tenant, id)
	return []webhooks.Attempt{{MessageID: "msg_1", EventType: webhooks.EventProcessed, TransactionID: "t1", Attempt: 1, StartedAt: now, Duration: 1500 * time.Microsecond, StatusCode: 500, Error: "answered 500", State: "pending"}}, err
}

func (m *memHooks) Replay(_ context.Context, tenant, id string, from, to, _ time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.find(tenant, id)
	m.replays = append(m.replays, [2]time.Time{from, to})
	return 3, err
}

func newWebhookHandler(st webhooks.Store) *Handler {
	p := webhooks.NewPolicy(false)
	p.Resolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, &net.DNSError{Err: "no DNS in this test"}
	}}
	return New(&fakeTransactions{}, slog.New(slog.NewTextHandler(io.Discard, nil)), telemetry.NewMetrics("test_"), func() time.Time { return now }, time.Second,
		WithWebhooks(webhooks.NewService(st, p, func() time.Time { return now }, 24*time.Hour)))
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return v
}

func TestWebhookEndpointsLifecycle(t *testing.T) {
	h := newWebhookHandler(&memHooks{})
	rec := do(t, h, http.MethodPost, "/v1/webhooks", "application/json",
		`{"url": "https://93.184.215.14/hooks", "events": ["transaction.failed", "transaction.processed", "transaction.failed"]}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	created := decode[map[string]any](t, rec.Body.String())
	id, _ := created["id"].(string)
	secret, _ := created["secret"].(string)
	if !strings.HasPrefix(id, "ep_") || !strings.HasPrefix(secret, "whsec_") || rec.Header().Get("Location") != "/v1/webhooks/"+id {
		t.Errorf("create answered id %q, secret %q, Location %q", id, secret, rec.Header().Get("Location"))
	}
	want := map[string]any{
		"id": id, "url": "https://93.184.215.14/hooks", "events": []any{"transaction.processed", "transaction.failed"},
		"created_at": "2024-09-11T12:00:00Z", "disabled": false, "disabled_at": nil, "disabled_reason": nil, "failing_since": nil,
	}
	delete(created, "secret")
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created endpoint (-want +got):\n%s", diff)
	}
	// The secret is shown once: never by GET.
	if rec := do(t, h, http.MethodGet, "/v1/webhooks/"+id, "", ""); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("get: %d %s, want 200 without the secret", rec.Code, rec.Body)
	} else if diff := cmp.Diff(want, decode[map[string]any](t, rec.Body.String())); diff != "" {
		t.Errorf("got endpoint (-want +got):\n%s", diff)
	}
	if rec := do(t, h, http.MethodGet, "/v1/webhooks", "", ""); rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("list: %d %s, want 200 without secrets", rec.Code, rec.Body)
	} else if diff := cmp.Diff(map[string]any{"items": []any{want}}, decode[map[string]any](t, rec.Body.String())); diff != "" {
		t.Errorf("listed endpoints (-want +got):\n%s", diff)
	}
	rec = do(t, h, http.MethodPost, "/v1/webhooks/"+id+"/rotate-secret", "", "")
	rotated := decode[map[string]any](t, rec.Body.String())
	if rec.Code != http.StatusOK || rotated["secret"] == secret || !strings.HasPrefix(rotated["secret"].(string), "whsec_") ||
		rotated["previous_secret_expires_at"] != "2024-09-12T12:00:00Z" {
		t.Errorf("rotate-secret: %d %s, want a new secret and the old one's end a day later", rec.Code, rec.Body)
	}
	rec = do(t, h, http.MethodGet, "/v1/webhooks/"+id+"/deliveries", "", "")
	wantAttempts := map[string]any{"items": []any{map[string]any{
		"webhook_id": "msg_1", "event_type": "transaction.processed", "transaction_id": "t1", "attempt": 1.0,
		"started_at": "2024-09-11T12:00:00Z", "duration_ms": 1.5, "status_code": 500.0, "error": "answered 500", "state": "pending",
	}}}
	if diff := cmp.Diff(wantAttempts, decode[map[string]any](t, rec.Body.String())); rec.Code != http.StatusOK || diff != "" {
		t.Errorf("deliveries: %d (-want +got):\n%s", rec.Code, diff)
	}
	if rec := do(t, h, http.MethodDelete, "/v1/webhooks/"+id, "", ""); rec.Code != http.StatusNoContent {
		t.Errorf("delete: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/v1/webhooks/" + id, "/v1/webhooks/" + id + "/deliveries"} {
		rec := do(t, h, http.MethodGet, path, "", "")
		if p := decode[problem](t, rec.Body.String()); rec.Code != http.StatusNotFound || p.Title != "Webhook not found" {
			t.Errorf("GET %s after delete: %d %s", path, rec.Code, rec.Body)
		}
	}
}

func TestCreateWebhookNamesEachBadField(t *testing.T) {
	h := newWebhookHandler(&memHooks{})
	for _, tt := range []struct {
		body   string
		status int
		fields []string
	}{
		{`{"url": "ftp://93.184.215.14/", "events": ["transaction.processed"]}`, 422, []string{"url"}},
		{`{"url": "http://127.0.0.1:8080/", "events": ["transaction.processed"]}`, 422, []string{"url"}},
		{`{"url": "http://169.254.169.254/", "events": ["transaction.processed"]}`, 422, []string{"url"}},
		{`{"url": "https://93.184.215.14/", "events": []}`, 422, []string{"events"}},
		{`{"url": "https://93.184.215.14/"}`, 422, []string{"events"}},
		{`{"events": ["transaction.processed", "transaction.created"]}`, 422, []string{"events[1]", "url"}},
		{`{"url": 7, "events": "transaction.processed", "secret": "mine"}`, 422, []string{"events", "secret", "url"}},
		{`[1]`, 400, nil},
		{`{"url": "https://93.184.215.14/"} {}`, 400, nil},
	} {
		rec := do(t, h, http.MethodPost, "/v1/webhooks", "application/json", tt.body)
		p := decode[problem](t, rec.Body.String())
		var fields []string
		for _, fe := range p.Errors {
			fields = append(fields, fe.Field)
		}
		slices.Sort(fields)
		if rec.Code != tt.status || !slices.Equal(fields, tt.fields) {
			t.Errorf("%s: %d, fields %v; want %d, %v (%s)", tt.body, rec.Code, fields, tt.status, tt.fields, rec.Body)
		}
		if tt.status == 422 && (p.Type != txmodel.ProblemInvalidFields || p.Title != "Invalid webhook") {
			t.Errorf("%s: problem %q %q", tt.body, p.Type, p.Title)
		}
	}
}

func TestWebhookEndpointLimit(t *testing.T) {
	h := newWebhookHandler(&memHooks{})
	for i := range webhooks.MaxEndpoints + 1 {
		rec := do(t, h, http.MethodPost, "/v1/webhooks", "application/json", `{"url": "https://93.184.215.14/", "events": ["transaction.processed"]}`)
		want := http.StatusCreated
		if i == webhooks.MaxEndpoints {
			want = http.StatusConflict
		}
		if rec.Code != want {
			t.Fatalf("endpoint %d: %d %s, want %d", i+1, rec.Code, rec.Body, want)
		}
	}
}

func TestReplayWebhook(t *testing.T) {
	st := &memHooks{}
	h := newWebhookHandler(st)
	rec := do(t, h, http.MethodPost, "/v1/webhooks", "application/json", `{"url": "https://93.184.215.14/", "events": ["transaction.processed"]}`)
	id := decode[map[string]any](t, rec.Body.String())["id"].(string)
	for _, tt := range []struct {
		body   string
		status int
	}{
		{`{"since": "2024-09-11T00:00:00Z", "until": "2024-09-11T06:00:00Z"}`, http.StatusAccepted},
		{`{"since": "2024-09-11T00:00:00Z"}`, http.StatusAccepted}, // until now
		{`{}`, http.StatusUnprocessableEntity},
		{`{"since": "yesterday"}`, http.StatusUnprocessableEntity},
		{`{"since": "2024-09-11T06:00:00Z", "until": "2024-09-11T00:00:00Z"}`, http.StatusUnprocessableEntity},
	} {
		if rec := do(t, h, http.MethodPost, "/v1/webhooks/"+id+"/replay", "application/json", tt.body); rec.Code != tt.status {
			t.Errorf("replay %s: %d %s, want %d", tt.body, rec.Code, rec.Body, tt.status)
		}
	}
	want := [][2]time.Time{
		{time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), time.Date(2024, 9, 11, 6, 0, 0, 0, time.UTC)},
		{time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC), now},
	}
	if diff := cmp.Diff(want, st.replays); diff != "" {
		t.Errorf("replays (-want +got):\n%s", diff)
	}
	if rec := do(t, h, http.MethodPost, "/v1/webhooks/ep_nope/replay", "application/json", `{"since": "2024-09-11T00:00:00Z"}`); rec.Code != http.StatusNotFound {
		t.Errorf("replay to no endpoint: %d", rec.Code)
	}
}
