package auth

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter bounds the request rate of each of a set of names (keys, or
// tenants) with a token bucket. The names are the configured ones, so
// their number is bounded.
type Limiter struct {
	rps    rate.Limit
	burst  int
	mu     sync.Mutex
	byName map[string]*rate.Limiter
}

// NewLimiter allows each name rps requests a second on average and burst
// at once; rps 0 means no limit.
func NewLimiter(rps float64, burst int) *Limiter {
	return &Limiter{rps: rate.Limit(rps), burst: max(burst, 1), byName: map[string]*rate.Limiter{}}
}

// Allow reports whether name may make a request now, and when not, how
// long it should wait before the next one.
func (l *Limiter) Allow(name string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rps == 0 {
		return true, 0
	}
	l.mu.Lock()
	lim, ok := l.byName[name]
	if !ok {
		lim = rate.NewLimiter(l.rps, l.burst)
		l.byName[name] = lim
	}
	l.mu.Unlock()
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// MaxTrackedAddresses bounds the client addresses a FailureLimiter keeps a
// bucket for. Past it, addresses without a bucket of their own share one.
const MaxTrackedAddresses = 100_000

// FailureLimiter bounds failed authentications per client address, so
// keys cannot be guessed at full speed: an address may fail burst times
// at once and rps times a second on average; past that, its requests are
// refused before their key is even looked at, until its bucket refills.
// Unlike Limiter its names come from the network, so the number of
// buckets is bounded: full ones are swept away, and past
// MaxTrackedAddresses new addresses share one bucket.
type FailureLimiter struct {
	rps      rate.Limit
	burst    int
	max      int
	mu       sync.Mutex
	byAddr   map[string]*rate.Limiter
	overflow *rate.Limiter
}

// NewFailureLimiter allows each address burst failed authentications at
// once and rps a second; rps 0 means no limit.
func NewFailureLimiter(rps float64, burst int) *FailureLimiter {
	return newFailureLimiter(rps, burst, MaxTrackedAddresses)
}

func newFailureLimiter(rps float64, burst, maxAddrs int) *FailureLimiter {
	burst = max(burst, 1)
	return &FailureLimiter{
		rps: rate.Limit(rps), burst: burst, max: maxAddrs,
		byAddr:   map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(rps), burst),
	}
}

// Blocked reports whether addr has used up its failures, and if so how
// long until it may try again.
func (l *FailureLimiter) Blocked(addr string, now time.Time) (bool, time.Duration) {
	if l == nil || l.rps == 0 {
		return false, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.byAddr[addr]
	if lim == nil {
		if len(l.byAddr) < l.max {
			return false, 0 // never failed: a full bucket
		}
		lim = l.overflow
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return false, 0
	}
	wait := time.Duration(math.Ceil((1 - tokens) / float64(l.rps) * float64(time.Second)))
	return true, wait
}

// Failed counts a failed authentication from addr.
func (l *FailureLimiter) Failed(addr string, now time.Time) {
	if l == nil || l.rps == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.byAddr[addr]
	if lim == nil {
		if len(l.byAddr) >= l.max {
			l.sweep(now)
		}
		if len(l.byAddr) >= l.max {
			l.overflow.AllowN(now, 1)
			return
		}
		lim = rate.NewLimiter(l.rps, l.burst)
		l.byAddr[addr] = lim
	}
	lim.AllowN(now, 1)
}

// sweep forgets the addresses whose bucket has refilled: they are as if
// they had never failed.
func (l *FailureLimiter) sweep(now time.Time) {
	for addr, lim := range l.byAddr {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.byAddr, addr)
		}
	}
}
