package readiness

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestCached(t *testing.T) {
	now := time.Date(2024, 9, 11, 0, 0, 0, 0, time.UTC)
	calls := 0
	answer := errors.New("provider down")
	check := Cached(func(context.Context) error { calls++; return answer }, 5*time.Second, func() time.Time { return now })
	for range 3 {
		if err := check(context.Background()); !errors.Is(err, answer) {
			t.Fatalf("err = %v", err)
		}
	}
	if calls != 1 {
		t.Errorf("%d checks within the TTL, want 1", calls)
	}
	answer = nil
	now = now.Add(5 * time.Second)
	if err := check(context.Background()); err != nil || calls != 2 {
		t.Errorf("after the TTL: err %v after %d checks, want nil after 2", err, calls)
	}
}
