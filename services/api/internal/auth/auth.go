// Package auth is the api's access control: API keys presented as bearer
// tokens, and a request rate limit per key.
//
// Keys are configured as name:sha256-hex pairs, so the configuration never
// holds a key itself; a presented key is hashed and compared with every
// configured hash in constant time. Logs and metrics name the key, never
// show it.
package auth

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Anonymous is the key name of requests when authentication is disabled.
const Anonymous = "anonymous"

// Key is a configured API key: its name and the SHA-256 of the key.
type Key struct {
	Name string
	Hash [sha256.Size]byte
}

// ParseKeys reads name:sha256-hex pairs separated by commas or new lines;
// blank lines and lines starting with # are skipped. It returns an error
// naming the pair that is wrong (never echoing a hash).
func ParseKeys(r io.Reader) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		for _, pair := range strings.Split(sc.Text(), ",") {
			pair = strings.TrimSpace(pair)
			if pair == "" || strings.HasPrefix(pair, "#") {
				continue
			}
			name, hexHash, ok := strings.Cut(pair, ":")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				return nil, fmt.Errorf("line %d: want name:sha256-hex", line)
			}
			b, err := hex.DecodeString(strings.TrimSpace(hexHash))
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("key %q: want the 64 hex digits of the key's SHA-256", name)
			}
			if seen[name] {
				return nil, fmt.Errorf("key %q: named twice", name)
			}
			seen[name] = true
			k := Key{Name: name}
			copy(k.Hash[:], b)
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return keys, nil
}

// Errors of Authenticate.
var (
	// ErrNoCredentials: no bearer token was presented.
	ErrNoCredentials = errors.New("no API key: send Authorization: Bearer <key>")
	// ErrBadCredentials: the presented key is not a configured one.
	ErrBadCredentials = errors.New("invalid API key")
)

// Authenticator checks bearer tokens against the configured keys.
type Authenticator struct {
	keys     []Key
	disabled bool
}

// NewAuthenticator checks tokens against keys; with disabled, every request
// passes as Anonymous.
func NewAuthenticator(keys []Key, disabled bool) *Authenticator {
	return &Authenticator{keys: keys, disabled: disabled}
}

// Authenticate returns the name of the key in an Authorization header
// value, or an error wrapping ErrNoCredentials or ErrBadCredentials. Every
// configured hash is compared, in constant time, whether or not an earlier
// one matched.
func (a *Authenticator) Authenticate(authorization string) (string, error) {
	if a.disabled {
		return Anonymous, nil
	}
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", ErrNoCredentials
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	name := ""
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], k.Hash[:]) == 1 {
			name = k.Name
		}
	}
	if name == "" {
		return "", ErrBadCredentials
	}
	return name, nil
}

// Limiter bounds each key's request rate with a token bucket.
type Limiter struct {
	rps   rate.Limit
	burst int
	mu    sync.Mutex
	byKey map[string]*rate.Limiter
}

// NewLimiter allows each key rps requests a second on average and burst at
// once; rps 0 means no limit.
func NewLimiter(rps float64, burst int) *Limiter {
	return &Limiter{rps: rate.Limit(rps), burst: max(burst, 1), byKey: map[string]*rate.Limiter{}}
}

// Allow reports whether key may make a request now, and when not, how long
// it should wait before the next one.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if l.rps == 0 {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.byKey[key]
	if !ok {
		lim = rate.NewLimiter(l.rps, l.burst)
		l.byKey[key] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

type keyCtx struct{}

// WithKey returns ctx carrying the name of the request's key.
func WithKey(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, keyCtx{}, name)
}

// KeyName returns the name of the request's key, or "".
func KeyName(ctx context.Context) string {
	name, _ := ctx.Value(keyCtx{}).(string)
	return name
}

// HashKey returns the hex SHA-256 of a key, the form API_KEYS takes.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
