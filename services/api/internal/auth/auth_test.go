package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseKeys(t *testing.T) {
	keys, err := ParseKeys(strings.NewReader("# ops\nalice:" + HashKey("a-secret") + ", bob:" + strings.ToUpper(HashKey("b-secret")) + "\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Name != "alice" || keys[1].Name != "bob" {
		t.Fatalf("keys = %+v", keys)
	}
	for _, bad := range []string{"alice", "alice:123", ":" + HashKey("x"), "a:" + HashKey("x") + ",a:" + HashKey("y"), "a:zz" + HashKey("x")[2:]} {
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
	a := NewAuthenticator(keys, false)
	tests := []struct {
		header string
		want   string
		err    error
	}{
		{"Bearer a-secret", "alice", nil},
		{"bearer b-secret", "bob", nil},
		{"Bearer  b-secret ", "bob", nil},
		{"", "", ErrNoCredentials},
		{"Basic YTpi", "", ErrNoCredentials},
		{"Bearer ", "", ErrNoCredentials},
		{"Bearer a-secre", "", ErrBadCredentials},
		{"Bearer " + HashKey("a-secret"), "", ErrBadCredentials}, // the hash is not the key
	}
	for _, tt := range tests {
		got, err := a.Authenticate(tt.header)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Authenticate(%q) = %q, %v; want %q, %v", tt.header, got, err, tt.want, tt.err)
		}
	}
	if got, err := NewAuthenticator(nil, true).Authenticate(""); got != Anonymous || err != nil {
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
