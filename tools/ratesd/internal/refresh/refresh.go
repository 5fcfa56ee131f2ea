// Package refresh keeps ratesd's table fresh: it loads the ECB's file again
// on a schedule and, when a load fails, keeps serving the last good table.
package refresh

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/txpersister/txpersister/tools/ratesd/internal/ecb"
)

// LoadFunc loads a table from the source.
type LoadFunc func(ctx context.Context) (*ecb.Table, error)

// Status is what the last loads did.
type Status struct {
	// Loaded is when the table served was loaded.
	Loaded time.Time
	// Failed is when the last load failed, zero when none has since the
	// last one that worked; Err says why.
	Failed time.Time
	Err    string
}

// Table is a table that a Refresher replaces, safe for concurrent use.
type Table struct {
	load    LoadFunc
	timeout time.Duration
	log     *slog.Logger
	now     func() time.Time

	mu     sync.RWMutex
	table  *ecb.Table
	status Status
}

// New returns the Table first, already loaded with load (whose error it
// returns), each later load bounded by timeout.
func New(ctx context.Context, load LoadFunc, timeout time.Duration, log *slog.Logger, now func() time.Time) (*Table, error) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t, err := load(lctx)
	if err != nil {
		return nil, err
	}
	return &Table{load: load, timeout: timeout, log: log, now: now, table: t, status: Status{Loaded: now()}}, nil
}

// Table returns the table to serve now.
func (t *Table) Table() *ecb.Table {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.table
}

// Status returns what the loads did.
func (t *Table) Status() Status {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.status
}

// Reload loads the table once more and serves it, or, when the load fails,
// goes on serving the last good table and reports the failure.
func (t *Table) Reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	next, err := t.load(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.status.Failed, t.status.Err = t.now(), err.Error()
		t.log.WarnContext(ctx, "reloading rates failed; serving the last good copy",
			slog.Any("err", err), slog.String("latest", t.table.Latest().Date.Format(time.DateOnly)),
			slog.Time("loaded", t.status.Loaded))
		return err
	}
	// A reload that brings a new day is news; one that does not is not.
	level := slog.LevelDebug
	if !next.Latest().Date.Equal(t.table.Latest().Date) {
		level = slog.LevelInfo
	}
	t.table, t.status = next, Status{Loaded: t.now()}
	t.log.Log(ctx, level, "rates reloaded", slog.Int("days", next.Len()),
		slog.String("latest", next.Latest().Date.Format(time.DateOnly)))
	return nil
}

// Run reloads every interval until ctx ends.
func (t *Table) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = t.Reload(ctx) // logged; the last good table stays
		}
	}
}
