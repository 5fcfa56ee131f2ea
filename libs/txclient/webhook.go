package txclient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The event types of webhook messages.
const (
	EventProcessed = "transaction.processed"
	EventFailed    = "transaction.failed"
)

// Event is the body of a webhook message: what became of a transaction.
type Event struct {
	// Type is EventProcessed or EventFailed.
	Type string `json:"type"`
	// Timestamp is when it happened: the transaction's processed_at.
	Timestamp time.Time `json:"timestamp"`
	// Data is the transaction as GET /v1/transactions/{id} answered then.
	Data Resource `json:"data"`
}

// WebhookTolerance is how far a message's webhook-timestamp may be from
// the receiver's clock, as the Standard Webhooks specification says: an
// older message is refused (a replayed capture), as is one from further in
// the future.
const WebhookTolerance = 5 * time.Minute

// ErrWebhookSignature is wrapped by VerifyWebhook's errors: the message is
// not one the API signed with the secret, or not recently.
var ErrWebhookSignature = errors.New("webhook not verified")

// VerifyWebhook checks a webhook message received at now (its headers
// and its body, byte for byte as received) against the endpoint's
// signing secret (whsec_…, as POST /v1/webhooks answered it), and returns
// its event. During a secret's rotation a message carries a signature
// for each secret, and either verifies. The message's id (the
// webhook-id header, the same on every retry) is for the receiver to
// remember, so that it handles a message once.
func VerifyWebhook(secret string, header http.Header, body []byte, now time.Time) (Event, error) {
	fail := func(format string, args ...any) (Event, error) {
		return Event{}, fmt.Errorf("%w: %s", ErrWebhookSignature, fmt.Sprintf(format, args...))
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return fail("the secret is not whsec_ and base64")
	}
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fail("the webhook-id, webhook-timestamp and webhook-signature headers are required")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fail("webhook-timestamp %q is not Unix seconds", ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > WebhookTolerance || d < -WebhookTolerance {
		return fail("webhook-timestamp is %s away from now, more than %s", d.Round(time.Second), WebhookTolerance)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	verified := false
	for _, s := range strings.Fields(sigs) {
		b64, ok := strings.CutPrefix(s, "v1,")
		if !ok {
			continue // another version's
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			verified = true
			break
		}
	}
	if !verified {
		return fail("no v1 signature matches")
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil {
		return Event{}, fmt.Errorf("webhook body: %w", err)
	}
	return ev, nil
}
