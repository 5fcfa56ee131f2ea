package pgkit

import (
	"context"
	"fmt"
	"math"

	"github.com/jackc/pgx/v5/pgxpool"
)

// NewPool returns a connection pool to databaseURL of at most maxConns
// connections, from 1 to math.MaxInt32. It does not connect yet: a service
// starts while PostgreSQL is away and reports it through readiness.
func NewPool(ctx context.Context, databaseURL string, maxConns int) (*pgxpool.Pool, error) {
	if maxConns < 1 || maxConns > math.MaxInt32 {
		return nil, fmt.Errorf("database pool: %d connections, want 1 to %d", maxConns, math.MaxInt32)
	}
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	cfg.MaxConns = int32(maxConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	return pool, nil
}

// PoolGauges returns the pool's use as named gauges, for a metrics
// registry: connections in use, idle and at most, and how often a query had
// to wait for a connection (a counter, hence _total).
func PoolGauges(pool *pgxpool.Pool) map[string]func() float64 {
	return map[string]func() float64{
		"db_pool_acquired_connections": func() float64 { return float64(pool.Stat().AcquiredConns()) },
		"db_pool_idle_connections":     func() float64 { return float64(pool.Stat().IdleConns()) },
		"db_pool_max_connections":      func() float64 { return float64(pool.Stat().MaxConns()) },
		"db_pool_empty_acquire_total":  func() float64 { return float64(pool.Stat().EmptyAcquireCount()) },
	}
}
