package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestAPIKeys runs the api with API keys: a request without a key or with a
// wrong one gets a 401 problem, a right key gets in, and neither the key
// nor its hash shows in the api's log.
func TestAPIKeys(t *testing.T) {
	t.Parallel()
	const key = "k3y-that-must-never-be-logged"
	sum := sha256.Sum256([]byte(key))
	hash := hex.EncodeToString(sum[:])
	s := start(t, options{apiKeys: "loadtest:" + hash})

	send := func(authorization string) int {
		req, err := http.NewRequest(http.MethodPost, s.api+"/v1/transactions", strings.NewReader(body("auth-1", "1", "USD", "2024-09-11T00:00:00Z")))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(""); code != http.StatusUnauthorized {
		t.Errorf("no key: %d, want 401", code)
	}
	if code := send("Bearer not-" + key); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d, want 401", code)
	}
	if code := send("Bearer " + key); code != http.StatusCreated {
		t.Errorf("right key: %d, want 201", code)
	}
	if got := metric(t, s.apiAdmin, `txpersister_auth_failures_total{reason="invalid_key"}`); got != 1 {
		t.Errorf("invalid_key failures = %v, want 1", got)
	}
	log, err := os.ReadFile(s.logs["api"])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(log), key) || strings.Contains(string(log), hash) {
		t.Error("the api's log shows the API key or its hash")
	}
	if !strings.Contains(string(log), "loadtest") {
		t.Error("the api's log does not name the configured key")
	}
}
