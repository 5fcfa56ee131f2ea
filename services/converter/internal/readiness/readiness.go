// Package readiness holds what a readiness probe needs beyond the checks
// themselves.
package readiness

import (
	"context"
	"sync"
	"time"
)

// Cached returns check behind a cache: its result stands for ttl after it
// was made, so a dependency outside the process is asked at most once per
// ttl however often the probe comes. Concurrent calls share one check.
func Cached(check func(ctx context.Context) error, ttl time.Duration, now func() time.Time) func(ctx context.Context) error {
	var (
		mu      sync.Mutex
		checked time.Time
		last    error
	)
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if !checked.IsZero() && now().Sub(checked) < ttl {
			return last
		}
		last = check(ctx)
		checked = now()
		return last
	}
}
