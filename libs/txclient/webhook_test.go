package txclient

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// signed is a message as the reference library signs it with each secret.
func signed(t *testing.T, id string, at time.Time, body []byte, secrets ...string) http.Header {
	t.Helper()
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	var sigs string
	for _, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := wh.Sign(id, at, body)
		if err != nil {
			t.Fatal(err)
		}
		if sigs != "" {
			sigs += " "
		}
		sigs += sig
	}
	h.Set("webhook-signature", sigs)
	return h
}

func TestVerifyWebhook(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a secret of twenty-four bytes or more"))
	old := "whsec_" + base64.StdEncoding.EncodeToString([]byte("the secret before the rotation"))
	now := time.Date(2024, 9, 11, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"type":"transaction.processed","timestamp":"2024-09-11T11:59:59Z","data":{"transaction_id":"t1","user_id":"u1","amount":"9.99","currency":"USD","timestamp":"2024-09-11T00:00:00Z","status":"processed","received_at":"2024-09-11T11:59:58Z","converted_amount":"9.01","target_currency":"EUR","exchange_rate":"0.902","rate_date":"2024-09-10","processed_at":"2024-09-11T11:59:59Z","failure_reason":null}}`)

	ev, err := VerifyWebhook(secret, signed(t, "msg_1", now, body, secret), body, now)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != EventProcessed || ev.Data.ID != "t1" || ev.Data.Status != StatusProcessed || ev.Data.ConvertedAmount.Decimal.String() != "9.01" || !ev.Timestamp.Equal(now.Add(-time.Second)) {
		t.Errorf("event %+v", ev)
	}
	if _, err := VerifyWebhook(secret, signed(t, "msg_1", now, body, secret, old), body, now.Add(WebhookTolerance)); err != nil {
		t.Errorf("both signatures of a rotation, at the tolerance's edge: %v", err)
	}
	if _, err := VerifyWebhook(old, signed(t, "msg_1", now, body, secret, old), body, now); err != nil {
		t.Errorf("the old secret during a rotation: %v", err)
	}
	noTimestamp := signed(t, "msg_1", now, body, secret)
	noTimestamp.Del("webhook-timestamp")
	for name, tt := range map[string]struct {
		secret string
		header http.Header
		body   []byte
		now    time.Time
	}{
		"another secret":  {old, signed(t, "msg_1", now, body, secret), body, now},
		"a changed body":  {secret, signed(t, "msg_1", now, body, secret), append([]byte(" "), body...), now},
		"another id":      {secret, func() http.Header { h := signed(t, "msg_1", now, body, secret); h.Set("webhook-id", "msg_2"); return h }(), body, now},
		"too old":         {secret, signed(t, "msg_1", now, body, secret), body, now.Add(WebhookTolerance + time.Second)},
		"from the future": {secret, signed(t, "msg_1", now.Add(WebhookTolerance+time.Second), body, secret), body, now},
		"no timestamp":    {secret, noTimestamp, body, now},
		"not a secret":    {"whsec_!!", signed(t, "msg_1", now, body, secret), body, now},
		"another version": {secret, func() http.Header {
			h := http.Header{}
			h.Set("webhook-id", "msg_1")
			h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			h.Set("webhook-signature", "v1a,abc")
			return h
		}(), body, now},
	} {
		if _, err := VerifyWebhook(tt.secret, tt.header, tt.body, tt.now); !errors.Is(err, ErrWebhookSignature) {
			t.Errorf("%s: %v, want ErrWebhookSignature", name, err)
		}
	}
}
