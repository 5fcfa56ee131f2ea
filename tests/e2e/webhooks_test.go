package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// receiver is a webhook endpoint of the test's: it verifies every message
// with the Standard Webhooks reference library (not our code), answers
// each message's first fail attempts 500, holds every request without
// an answer while it is down, and keeps what it received.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	fail int

	mu       sync.Mutex
	secret   string
	hang     chan struct{}             // non-nil while down
	inFlight int                       // requests held while down
	attempts map[string]int            // by webhook-id
	bodies   map[string]map[string]any // by webhook-id, the last one received
	ok       map[string]bool           // answered 2xx at least once
	refused  int                       // signatures the library refused
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{t: t, fail: fail, attempts: map[string]int{}, bodies: map[string]map[string]any{}, ok: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(r.secret)
	if err != nil {
		r.t.Errorf("receiver: secret %q: %v", r.secret, err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if err := wh.Verify(body, req.Header); err != nil {
		r.refused++
		r.t.Errorf("receiver: the reference library refuses a message (%s): %v", req.Header.Get("webhook-id"), err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	r.attempts[id]++
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("receiver: body %s: %v", body, err)
	}
	r.bodies[id] = m
	if r.hang != nil { // down: the request is held until the sender gives up
		hang := r.hang
		r.inFlight++
		r.mu.Unlock()
		select {
		case <-req.Context().Done():
		case <-hang:
		}
		r.mu.Lock()
		r.inFlight--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if r.attempts[id] <= r.fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	r.ok[id] = true
	w.WriteHeader(http.StatusNoContent)
}

// goDown makes the receiver hold every request without an answer.
func (r *receiver) goDown() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hang = make(chan struct{})
}

// comeUp makes the receiver answer again (held requests get a 503).
func (r *receiver) comeUp() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.hang)
	r.hang = nil
}

// held is how many requests the receiver holds now.
func (r *receiver) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight
}

// delivered returns the webhook-ids answered 2xx, by transaction id.
func (r *receiver) delivered() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for id := range r.ok {
		data, _ := r.bodies[id]["data"].(map[string]any)
		tx, _ := data["transaction_id"].(string)
		out[tx] = append(out[tx], id)
	}
	return out
}

// snapshot returns copies of the attempts and the bodies by webhook-id.
func (r *receiver) snapshot() (map[string]int, map[string]map[string]any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.attempts), maps.Clone(r.bodies)
}

// waitDelivered waits until each of txs has a message answered 2xx.
func (r *receiver) waitDelivered(txs []string, timeout time.Duration) map[string][]string {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := r.delivered()
		missing := 0
		for _, tx := range txs {
			if len(got[tx]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d transactions' news not delivered within %s; delivered %v", missing, len(txs), timeout, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// subscribe creates an endpoint at the receiver for both events and
// gives the receiver its secret.
func (s *stack) subscribe(r *receiver) string {
	s.t.Helper()
	code, res := s.post("/v1/webhooks", `{"url": "`+r.srv.URL+`/hooks", "events": ["transaction.processed", "transaction.failed"]}`)
	secret, _ := res["secret"].(string)
	if code != http.StatusCreated || !strings.HasPrefix(secret, "whsec_") {
		s.t.Fatalf("POST /v1/webhooks: %d %v", code, res)
	}
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
	return res["id"].(string)
}

// webhookEnv is the api's environment for webhooks to the test's
// receivers on 127.0.0.1, retried quickly.
var webhookEnv = []string{"WEBHOOK_ALLOW_PRIVATE=true", "WEBHOOK_RETRY_DELAYS=100ms,200ms,400ms,800ms", "STATUS_SWEEP_INTERVAL=100ms"}

func TestWebhooksTellEachOutcomeSignedAndRetried(t *testing.T) {
	t.Parallel()
	s := start(t, options{apiEnv: webhookEnv})
	r := newReceiver(t, 2) // two 500s for each message, then 204
	hook := s.subscribe(r)
	for _, tx := range []struct{ id, currency string }{{"usd", "USD"}, {"jpy", "JPY"}, {"bhd", "BHD"}} {
		if code, res := s.post("/v1/transactions", body(tx.id, `"12"`, tx.currency, "2024-09-11T00:00:00Z")); code != http.StatusCreated {
			t.Fatalf("POST %s: %d %v", tx.id, code, res)
		}
	}
	got := r.waitDelivered([]string{"usd", "jpy", "bhd"}, time.Minute)
	attempts, bodies := r.snapshot()
	for tx, ids := range got {
		if len(ids) != 1 {
			t.Errorf("%s: %d messages, want one per outcome", tx, len(ids))
			continue
		}
		id := ids[0]
		if attempts[id] != 3 {
			t.Errorf("%s: %d attempts with webhook-id %s, want 3: two refused, one delivered, one id", tx, attempts[id], id)
		}
		m := bodies[id]
		_, res := s.get("/v1/transactions/" + tx)
		wantType := "transaction.processed"
		if tx == "bhd" {
			wantType = "transaction.failed"
		}
		if m["type"] != wantType || m["timestamp"] != res["processed_at"] || !reflect.DeepEqual(m["data"], any(res)) {
			t.Errorf("%s: message %v, want %s at processed_at with the transaction as GET answers it: %v", tx, m, wantType, res)
		}
	}
	// The operator's view: every attempt, newest first.
	code, list := s.get("/v1/webhooks/" + hook + "/deliveries?limit=100")
	items, _ := list["items"].([]any)
	if code != http.StatusOK || len(items) != 9 {
		t.Errorf("deliveries: %d, %d attempts, want 9: %v", code, len(items), list)
	}
	statuses := map[float64]int{}
	for _, it := range items {
		a := it.(map[string]any)
		if a["state"] != "delivered" {
			t.Errorf("attempt %v: the delivery is %v, want delivered", a, a["state"])
		}
		code, _ := a["status_code"].(float64)
		statuses[code]++
	}
	if statuses[500] != 6 || statuses[204] != 3 {
		t.Errorf("attempts' answers %v, want six 500 and three 204", statuses)
	}
	if n := metric(t, s.apiAdmin, `txpersister_webhook_deliveries_total{outcome="delivered"}`); n != 3 {
		t.Errorf("webhook_deliveries_total{delivered} = %v, want 3", n)
	}
	if n := metric(t, s.apiAdmin, `txpersister_webhook_deliveries_total{outcome="retried"}`); n != 6 {
		t.Errorf("webhook_deliveries_total{retried} = %v, want 6", n)
	}
}

func TestWebhooksRefusePrivateAddresses(t *testing.T) {
	t.Parallel()
	s := start(t, options{})
	for _, url := range []string{
		"http://127.0.0.1:9/hooks", "http://localhost/hooks", "http://10.0.0.7/hooks", "http://192.168.0.1/hooks",
		"http://169.254.169.254/latest/meta-data/", "http://[::1]/hooks", "http://[fd00::1]/hooks", "http://0.0.0.0/hooks",
		"http://100.100.100.200/", "ftp://example.com/", "file:///etc/passwd",
	} {
		code, res := s.post("/v1/webhooks", `{"url": "`+url+`", "events": ["transaction.processed"]}`)
		errs, _ := res["errors"].([]any)
		if code != http.StatusUnprocessableEntity || len(errs) != 1 || errs[0].(map[string]any)["field"] != "url" {
			t.Errorf("POST /v1/webhooks %s: %d %v, want 422 naming url", url, code, res)
		}
	}
	if code, list := s.get("/v1/webhooks"); code != http.StatusOK || len(list["items"].([]any)) != 0 {
		t.Errorf("after the refusals: %d %v, want no endpoint", code, list)
	}
}

// sender starts one more api, sending webhooks, on the stack's database
// and broker: it may be killed (it is not required to exit cleanly).
func (s *stack) sender(name string, env ...string) *exec.Cmd {
	s.t.Helper()
	cmd := exec.Command(binaries.api)
	admin := freeAddr(s.t)
	cmd.Env = append(os.Environ(), append([]string{
		"DATABASE_URL=" + s.dbURL, "AMQP_URL=" + s.amqpURL, "LOG_FORMAT=json", "LOG_LEVEL=info", "OTEL_SDK_DISABLED=true",
		"HTTP_ADDR=" + freeAddr(s.t), "ADMIN_ADDR=" + admin, "AUTH_DISABLED=true", "WEBHOOK_SENDER=true",
	}, append(webhookEnv, env...)...)...)
	p := startProcess(s.t, name, cmd, false)
	p.waitReady(s.t, "http://"+admin+"/readyz", 60*time.Second)
	return cmd
}

// manyRetries is a retry schedule that outlasts the tests' outages.
var manyRetries = "WEBHOOK_RETRY_DELAYS=" + strings.TrimSuffix(strings.Repeat("200ms,", 50), ",")

// postMany posts n transactions, id prefix-i, and returns their ids.
func (s *stack) postMany(prefix string, n int) []string {
	s.t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%03d", prefix, i)
		if code, res := s.post("/v1/transactions", body(id, `"10"`, "USD", "2024-09-11T00:00:00Z")); code != http.StatusCreated {
			s.t.Fatalf("POST %s: %d %v", id, code, res)
		}
		ids = append(ids, id)
	}
	return ids
}

// TestWebhooksSurviveKilledSenders kills every sender with SIGKILL while
// the receiver holds their attempts without answering; a new sender,
// once the receiver is back, delivers every message: a lease that died
// with its sender runs out, and another takes the delivery.
func TestWebhooksSurviveKilledSenders(t *testing.T) {
	t.Parallel()
	s := start(t, options{apiEnv: append([]string{"WEBHOOK_SENDER=false"}, webhookEnv...)})
	r := newReceiver(t, 0)
	s.subscribe(r)
	r.goDown()
	killed := []*exec.Cmd{s.sender("sender-a", "WEBHOOK_TIMEOUT=3s", manyRetries), s.sender("sender-b", "WEBHOOK_TIMEOUT=3s", manyRetries)}
	ids := s.postMany("killed", 20)
	for _, id := range ids {
		s.waitStatus(id, time.Minute, "processed")
	}
	deadline := time.Now().Add(time.Minute)
	for r.held() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the senders had %d attempts in flight within a minute, want 2 or more", r.held())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, cmd := range killed {
		_ = cmd.Process.Kill()
	}
	held := r.held()
	r.comeUp()
	s.sender("sender-c", manyRetries)
	got := r.waitDelivered(ids, 2*time.Minute)
	for _, id := range ids {
		if len(got[id]) != 1 {
			t.Errorf("%s: delivered as %d messages, want 1", id, len(got[id]))
		}
	}
	t.Logf("%d attempts were in flight when both senders were killed; all %d messages delivered after", held, len(ids))
}

// TestTwoSendersShareTheWork runs two senders at once: every message is
// delivered, and none twice (each delivery is claimed by one of them).
func TestTwoSendersShareTheWork(t *testing.T) {
	t.Parallel()
	s := start(t, options{apiEnv: append([]string{"WEBHOOK_SENDER=false"}, webhookEnv...)})
	r := newReceiver(t, 0)
	s.subscribe(r)
	s.sender("sender-a")
	s.sender("sender-b")
	ids := s.postMany("shared", 200)
	got := r.waitDelivered(ids, 2*time.Minute)
	attempts, _ := r.snapshot()
	for _, id := range ids {
		if len(got[id]) != 1 {
			t.Errorf("%s: delivered as %d messages, want 1", id, len(got[id]))
		}
	}
	for id, n := range attempts {
		if n != 1 {
			t.Errorf("message %s sent %d times, want once: two senders claimed it", id, n)
		}
	}
}
