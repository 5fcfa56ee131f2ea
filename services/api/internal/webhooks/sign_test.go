package webhooks

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestNewSecretIsTheSpecificationsForm(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	if a == b {
		t.Fatal("two secrets are the same")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if !strings.HasPrefix(a, "whsec_") || err != nil || len(key) < 24 || len(key) > 64 {
		t.Errorf("secret %q: want whsec_ and the base64 of 24 to 64 bytes (%d bytes, %v)", a, len(key), err)
	}
}

// The reference implementation of the specification verifies what Sign
// writes: one secret, and both during a rotation.
func TestSignVerifiesWithTheReferenceLibrary(t *testing.T) {
	old, current := NewSecret(), NewSecret()
	body := []byte(`{"type":"transaction.processed","timestamp":"2024-09-11T12:00:05Z","data":{"transaction_id":"t1"}}`)
	now := time.Now()
	for _, tt := range []struct {
		name    string
		secrets []string
	}{
		{"one secret", []string{current}},
		{"rotation", []string{current, old}},
	} {
		sig, err := Sign(tt.secrets, "msg_1", now.Unix(), body)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(strings.Fields(sig)); n != len(tt.secrets) {
			t.Errorf("%s: %d signatures in %q, want %d", tt.name, n, sig, len(tt.secrets))
		}
		h := http.Header{}
		h.Set("webhook-id", "msg_1")
		h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		h.Set("webhook-signature", sig)
		for _, s := range tt.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(body, h); err != nil {
				t.Errorf("%s: the reference library refuses the signature for %s: %v", tt.name, s[:10], err)
			}
		}
		other, _ := standardwebhooks.NewWebhook(NewSecret())
		if err := other.Verify(body, h); err == nil {
			t.Errorf("%s: another secret verified the signature", tt.name)
		}
		if wh, _ := standardwebhooks.NewWebhook(current); wh.Verify(append(body, ' '), h) == nil {
			t.Errorf("%s: a changed body verified", tt.name)
		}
	}
}

func TestSignRefusesASecretNotInTheSpecificationsForm(t *testing.T) {
	for _, s := range []string{"", "secret", "whsec_not base64!"} {
		if _, err := Sign([]string{s}, "msg_1", 1, nil); err == nil {
			t.Errorf("Sign with secret %q: no error", s)
		}
	}
}
