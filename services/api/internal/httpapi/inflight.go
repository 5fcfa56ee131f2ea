package httpapi

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"golang.org/x/sync/semaphore"

	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
)

// inflight bounds the bytes of ingest request bodies the api holds at
// once: read, parsed and waiting for their commit. Without a bound, a
// load the machine cannot keep up with grows the api's memory with every
// request that waits (a client opens more connections as answers slow
// down, and each holds its parsed transactions), until the kernel kills
// it and every request in flight with it. With one, a request beyond it
// waits up to wait for room, in arrival order, and is then refused with
// 503 and Retry-After: nothing of it was stored, and the client retries
// with the same transaction ids.
type inflight struct {
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
	held atomic.Int64
	shed *vm.Counter
}

// register makes the bound's series in m; nothing without a bound.
func (l *inflight) register(m *telemetry.Metrics) {
	if l == nil {
		return
	}
	l.shed = m.Counter("ingest_shed_total")
	m.Gauge("ingest_inflight_bytes", func() float64 { return float64(l.held.Load()) })
	m.Gauge("ingest_inflight_limit_bytes", func() float64 { return float64(l.size) })
}

// errOverloaded is the 503 of a request refused for want of room.
var errOverloaded = problem{
	Status: http.StatusServiceUnavailable, Type: txmodel.ProblemUnavailable, Title: "Temporarily unavailable",
	Detail: "the api holds as many transactions in flight as it may; nothing of this request was stored: retry after Retry-After seconds with the same transaction_id",
}

// admit reserves room for the body of r, of at most limit bytes, and
// returns the function that gives it back. When no room was found within
// the wait it answers 503 itself and returns false; when the client went
// away first it answers nothing.
func (l *inflight) admit(w http.ResponseWriter, r *http.Request, limit int64) (func(), bool) {
	if l == nil {
		return func() {}, true
	}
	// A body's size is its Content-Length, or the most the route reads.
	n := limit
	if r.ContentLength >= 0 && r.ContentLength < limit {
		n = max(r.ContentLength, 1)
	}
	n = min(n, l.size)
	if !l.sem.TryAcquire(n) {
		ctx, cancel := context.WithTimeout(r.Context(), l.wait)
		err := l.sem.Acquire(ctx, n)
		cancel()
		if err != nil {
			if r.Context().Err() == nil {
				l.shed.Inc()
				writeProblem(w, errOverloaded)
			}
			return nil, false
		}
	}
	l.held.Add(n)
	return func() {
		l.held.Add(-n)
		l.sem.Release(n)
	}, true
}

// WithInflightLimit bounds the bytes of ingest request bodies in flight
// (INGEST_INFLIGHT_BYTES) and how long a request waits for room
// (INGEST_QUEUE_WAIT; 0: refused at once). A size below the largest body
// an ingest route reads is raised to it, so that every request can be
// admitted. Without it nothing is bounded.
func WithInflightLimit(size int64, wait time.Duration) Option {
	size = max(size, MaxBatchBodyBytes)
	return func(h *Handler) {
		h.inflight = &inflight{sem: semaphore.NewWeighted(size), size: size, wait: wait}
	}
}
