package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// secretPrefix starts every signing secret, as the specification writes
// them.
const secretPrefix = "whsec_"

// secretBytes is the length of a new secret: the specification asks for
// 24 to 64 bytes.
const secretBytes = 32

// NewSecret returns a new signing secret: whsec_ and the base64 of 32
// random bytes.
func NewSecret() string {
	return secretPrefix + base64.StdEncoding.EncodeToString(random(secretBytes))
}

// idEncoding writes ids: lower-case base32, no padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix followed by 26 characters of 128 random bits.
func newID(prefix string) string { return prefix + idEncoding.EncodeToString(random(16)) }

// NewMessageID returns the id of a new message: its webhook-id header.
func NewMessageID() string { return newID("msg_") }

// NewEndpointID returns the id of a new endpoint.
func NewEndpointID() string { return newID("ep_") }

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return b
}

// Sign returns the webhook-signature header of a message sent with id at
// timestamp (Unix seconds): for each secret, "v1," and the base64 of
// HMAC-SHA256 keyed with the secret's bytes over id.timestamp.body,
// space-separated.
func Sign(secrets []string, id string, timestamp int64, body []byte) (string, error) {
	sigs := make([]string, len(secrets))
	for i, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write(strconv.AppendInt(nil, timestamp, 10))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	}
	return strings.Join(sigs, " "), nil
}

// secretKey is the key bytes of a secret.
func secretKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, fmt.Errorf("signing secret: no %s prefix", secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("signing secret: %w", err)
	}
	return key, nil
}
