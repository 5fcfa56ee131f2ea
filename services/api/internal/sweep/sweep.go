// Package sweep keeps the api's status index (schema 00007) to the
// transactions that are not processed: every period it settles the
// entries whose transactions the converter has finished, in rounds of at
// most Limit, until a round finds fewer.
package sweep

import (
	"context"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// Store is what the sweeper needs of the store.
type Store interface {
	// Sweep settles up to limit entries and returns how many were
	// processed and how many failed, and how many webhook messages it
	// recorded of them.
	Sweep(ctx context.Context, limit int) (processed, failed, messages int, err error)
}

// Sweeper runs Store.Sweep periodically.
type Sweeper struct {
	store  Store
	period time.Duration
	limit  int
	log    *slog.Logger

	processed, failed, errors, messages *metrics.Counter
	// news is called after a round that recorded webhook messages (nil:
	// nobody to tell).
	news func()
}

// New returns a sweeper of st every period, limit entries a round, with
// its counters in m; news (nil: none) is called after a round that
// recorded webhook messages.
func New(st Store, period time.Duration, limit int, log *slog.Logger, m *telemetry.Metrics, news func()) *Sweeper {
	return &Sweeper{
		store: st, period: period, limit: limit, log: log, news: news,
		messages:  m.Counter("webhook_messages_total"),
		processed: m.Counter(`status_index_swept_total{outcome="processed"}`),
		failed:    m.Counter(`status_index_swept_total{outcome="failed"}`),
		errors:    m.Counter("status_index_sweep_failures_total"),
	}
}

// Run sweeps until ctx ends. A failed round is logged and counted, and
// tried again a period later.
func (w *Sweeper) Run(ctx context.Context) {
	t := time.NewTicker(w.period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.Once(ctx); err != nil && ctx.Err() == nil {
			w.errors.Inc()
			w.log.WarnContext(ctx, "status index sweep failed; trying again", "err", err, "retry_in", w.period)
		}
	}
}

// Once sweeps in rounds until a round settles fewer than the limit.
func (w *Sweeper) Once(ctx context.Context) error {
	for {
		p, f, n, err := w.store.Sweep(ctx, w.limit)
		if err != nil {
			return err
		}
		w.processed.Add(p)
		w.failed.Add(f)
		w.messages.Add(n)
		if n > 0 && w.news != nil {
			w.news()
		}
		if p+f < w.limit {
			return nil
		}
	}
}
