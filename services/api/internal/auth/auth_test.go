package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/txmodel"
)

func TestParseKeys(t *testing.T) {
	keys, err := ParseKeys(strings.NewReader("# ops\nalice:" + HashKey("a-secret") + ", bob:" + strings.ToUpper(HashKey("b-secret")) + "\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Name != "alice" || keys[0].Tenant != "alice" || keys[1].Name != "bob" || keys[1].Tenant != "bob" {
		t.Fatalf("keys = %+v", keys)
	}
	keys, err = ParseKeys(strings.NewReader("acme:ci:" + HashKey("a") + "\nacme : ops : " + HashKey("b") + ",globex:app:" + HashKey("c")))
	if err != nil {
		t.Fatal(err)
	}
	got := [][2]string{}
	for _, k := range keys {
		got = append(got, [2]string{k.Tenant, k.Name})
	}
	if want := [][2]string{{"acme", "ci"}, {"acme", "ops"}, {"globex", "app"}}; !slices.Equal(got, want) {
		t.Errorf("tenant, name = %v, want %v", got, want)
	}
	if ts := Tenants(keys); !slices.Equal(ts, []string{"acme", "globex"}) {
		t.Errorf("Tenants = %v, want [acme globex]", ts)
	}
	for _, bad := range []string{
		"alice", "alice:123", ":" + HashKey("x"), "a:" + HashKey("x") + ",a:" + HashKey("y"), "a:zz" + HashKey("x")[2:],
		"t:a:" + HashKey("x") + ",u:a:" + HashKey("y"), // a name twice, across tenants
		":a:" + HashKey("x"), "t::" + HashKey("x"), "a b:k:" + HashKey("x"), "t:k:x:" + HashKey("x"),
		"alice smith:" + HashKey("x"), // an old name that cannot name a tenant
	} {
		if _, err := ParseKeys(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		} else if strings.Contains(err.Error(), HashKey("x")) {
			t.Errorf("error echoes a hash: %v", err)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	keys, err := ParseKeys(strings.NewReader("alice:" + HashKey("a-secret") + ",bob:" + HashKey("b-secret")))
	if err != nil {
		t.Fatal(err)
	}
	more, err := ParseKeys(strings.NewReader("acme:ci:" + HashKey("c-secret")))
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(append(keys, more...), false)
	tests := []struct {
		header string
		want   Principal
		err    error
	}{
		{"Bearer a-secret", Principal{"alice", "alice"}, nil},
		{"bearer b-secret", Principal{"bob", "bob"}, nil},
		{"Bearer  b-secret ", Principal{"bob", "bob"}, nil},
		{"Bearer c-secret", Principal{"acme", "ci"}, nil},
		{"", Principal{}, ErrNoCredentials},
		{"Basic YTpi", Principal{}, ErrNoCredentials},
		{"Bearer ", Principal{}, ErrNoCredentials},
		{"Bearer a-secre", Principal{}, ErrBadCredentials},
		{"Bearer " + HashKey("a-secret"), Principal{}, ErrBadCredentials}, // the hash is not the key
	}
	for _, tt := range tests {
		got, err := a.Authenticate(tt.header)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Authenticate(%q) = %+v, %v; want %+v, %v", tt.header, got, err, tt.want, tt.err)
		}
	}
	if got, err := NewAuthenticator(nil, true).Authenticate(""); got != (Principal{txmodel.DefaultTenant, Anonymous}) || err != nil {
		t.Errorf("disabled: %q, %v", got, err)
	}
}

func TestLimiterPerKey(t *testing.T) {
	l := NewLimiter(10, 2)
	now := time.Unix(1000, 0)
	for i := range 2 {
		if ok, _ := l.Allow("alice", now); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	ok, wait := l.Allow("alice", now)
	if ok || wait <= 0 || wait > 100*time.Millisecond {
		t.Errorf("third request at once: ok=%v wait=%v, want refused with a wait up to 100ms", ok, wait)
	}
	if ok, _ := l.Allow("bob", now); !ok {
		t.Error("bob limited by alice's requests")
	}
	if ok, _ := l.Allow("alice", now.Add(100*time.Millisecond)); !ok {
		t.Error("alice still limited after the wait")
	}
	if ok, _ := NewLimiter(0, 0).Allow("x", now); !ok {
		t.Error("rate 0 should mean no limit")
	}
}

func TestFailureLimiterPerAddress(t *testing.T) {
	l := NewFailureLimiter(1, 3)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if blocked, _ := l.Blocked("10.0.0.1", now); blocked {
			t.Fatalf("blocked after %d failures, within the burst of 3", i)
		}
		l.Failed("10.0.0.1", now)
	}
	blocked, wait := l.Blocked("10.0.0.1", now)
	if !blocked || wait <= 0 || wait > time.Second {
		t.Errorf("after the burst: blocked=%v wait=%v, want blocked for up to 1s", blocked, wait)
	}
	if blocked, _ := l.Blocked("10.0.0.2", now); blocked {
		t.Error("another address blocked by 10.0.0.1's failures")
	}
	if blocked, _ := l.Blocked("10.0.0.1", now.Add(wait)); blocked {
		t.Error("still blocked after the wait")
	}
	if blocked, _ := NewFailureLimiter(0, 0).Blocked("x", now); blocked {
		t.Error("rate 0 should mean no limit")
	}
}

// TestFailureLimiterIsBounded: addresses come from the network, so the
// buckets kept are bounded; past the bound new addresses share one, and
// refilled buckets are swept away.
func TestFailureLimiterIsBounded(t *testing.T) {
	l := newFailureLimiter(1, 2, 4)
	now := time.Unix(1000, 0)
	for i := range 10 {
		l.Failed(fmt.Sprintf("10.0.0.%d", i), now)
	}
	if n := len(l.byAddr); n != 4 {
		t.Fatalf("%d buckets kept, want the bound 4", n)
	}
	// 10.0.0.4 to .9 share the overflow bucket: 6 failures at once used
	// it up.
	if blocked, _ := l.Blocked("10.0.0.9", now); !blocked {
		t.Error("an address past the bound is not limited")
	}
	later := now.Add(10 * time.Second)
	l.Failed("10.0.1.1", later)
	if _, ok := l.byAddr["10.0.1.1"]; !ok || len(l.byAddr) != 1 {
		t.Errorf("after the buckets refilled: %d kept, want only the new address", len(l.byAddr))
	}
}
