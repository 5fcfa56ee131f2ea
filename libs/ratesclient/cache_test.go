package ratesclient

import (
	"fmt"
	"testing"
	"time"
)

func TestLRUCacheStaysWithinBound(t *testing.T) {
	now := time.Date(2024, 9, 20, 0, 0, 0, 0, time.UTC)
	c := newLRUCache(3)
	for i := range 10 {
		c.add(fmt.Sprintf("k%d", i), answer{}, time.Time{})
		if got := c.len(); got > 3 {
			t.Fatalf("after %d adds len = %d, want at most 3", i+1, got)
		}
	}
	for _, tt := range []struct {
		key  string
		want bool
	}{{"k6", false}, {"k7", true}, {"k8", true}, {"k9", true}} {
		if _, ok := c.get(tt.key, now); ok != tt.want {
			t.Errorf("get(%s) found = %v, want %v", tt.key, ok, tt.want)
		}
	}
}

func TestLRUCacheExpires(t *testing.T) {
	now := time.Date(2024, 9, 20, 0, 0, 0, 0, time.UTC)
	c := newLRUCache(3)
	c.add("k", answer{}, now.Add(time.Second))
	if _, ok := c.get("k", now); !ok {
		t.Fatal("entry missing before expiry")
	}
	if _, ok := c.get("k", now.Add(time.Second)); ok {
		t.Fatal("entry found at expiry")
	}
	if got := c.len(); got != 0 {
		t.Errorf("len after expiry = %d, want 0", got)
	}
}
