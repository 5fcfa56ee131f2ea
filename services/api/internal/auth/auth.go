// Package auth is the api's access control: API keys presented as bearer
// tokens, each belonging to a tenant; request rate limits per key and per
// tenant; and a limit on failed authentications per client address.
//
// Keys are configured as tenant:name:sha256-hex entries, so the
// configuration never holds a key itself; a presented key is hashed and
// compared with every configured hash in constant time. Logs and metrics
// name the key and its tenant, never show the key.
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
	"slices"
	"strings"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Anonymous is the key name of requests when authentication is disabled;
// their tenant is txmodel.DefaultTenant.
const Anonymous = "anonymous"

// Key is a configured API key: the tenant it acts for, its name and the
// SHA-256 of the key.
type Key struct {
	Tenant string
	Name   string
	Hash   [sha256.Size]byte
}

// Principal is who made a request: the tenant and the name of the key.
type Principal struct {
	Tenant string
	Key    string
}

// ParseKeys reads entries separated by commas or new lines, each
// tenant:name:sha256-hex or, as before tenants, name:sha256-hex (a tenant
// of the same name); blank lines and lines starting with # are skipped.
// Key names are unique; several keys may share a tenant. It returns an
// error naming the entry that is wrong (never echoing a hash).
func ParseKeys(r io.Reader) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		for _, entry := range strings.Split(sc.Text(), ",") {
			entry = strings.TrimSpace(entry)
			if entry == "" || strings.HasPrefix(entry, "#") {
				continue
			}
			k, err := parseKey(entry)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			if seen[k.Name] {
				return nil, fmt.Errorf("line %d: key %q: named twice", line, k.Name)
			}
			seen[k.Name] = true
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return keys, nil
}

// parseKey reads one tenant:name:sha256-hex or name:sha256-hex entry.
func parseKey(entry string) (Key, error) {
	parts := strings.Split(entry, ":")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	var k Key
	var hexHash string
	switch len(parts) {
	case 2:
		k.Name, k.Tenant, hexHash = parts[0], parts[0], parts[1]
	case 3:
		k.Tenant, k.Name, hexHash = parts[0], parts[1], parts[2]
	default:
		return Key{}, errors.New("want tenant:name:sha256-hex (or name:sha256-hex)")
	}
	if k.Name == "" {
		return Key{}, errors.New("a key needs a name: want tenant:name:sha256-hex")
	}
	if err := txmodel.CheckTenant(k.Tenant); err != nil {
		return Key{}, fmt.Errorf("key %q: %w", k.Name, err)
	}
	b, err := hex.DecodeString(hexHash)
	if err != nil || len(b) != sha256.Size {
		return Key{}, fmt.Errorf("key %q: want the 64 hex digits of the key's SHA-256", k.Name)
	}
	copy(k.Hash[:], b)
	return k, nil
}

// Tenants returns the tenants of keys, each once, sorted.
func Tenants(keys []Key) []string {
	var ts []string
	for _, k := range keys {
		ts = append(ts, k.Tenant)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
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
// passes as Anonymous of txmodel.DefaultTenant.
func NewAuthenticator(keys []Key, disabled bool) *Authenticator {
	return &Authenticator{keys: keys, disabled: disabled}
}

// Authenticate returns who presented the key in an Authorization header
// value, or an error wrapping ErrNoCredentials or ErrBadCredentials. Every
// configured hash is compared, in constant time, whether or not an earlier
// one matched.
func (a *Authenticator) Authenticate(authorization string) (Principal, error) {
	if a.disabled {
		return Principal{Tenant: txmodel.DefaultTenant, Key: Anonymous}, nil
	}
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, ErrNoCredentials
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	var p Principal
	for _, k := range a.keys {
		if subtle.ConstantTimeCompare(sum[:], k.Hash[:]) == 1 {
			p = Principal{Tenant: k.Tenant, Key: k.Name}
		}
	}
	if p.Key == "" {
		return Principal{}, ErrBadCredentials
	}
	return p, nil
}

type principalCtx struct{}

// WithPrincipal returns ctx carrying who made the request.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalCtx{}, p)
}

// PrincipalOf returns who made the request, or the zero Principal.
func PrincipalOf(ctx context.Context) Principal {
	p, _ := ctx.Value(principalCtx{}).(Principal)
	return p
}

// HashKey returns the hex SHA-256 of a key, the form API_KEYS takes.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
