package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/txpersister/txpersister/vegeta/loadgen/internal/seed"
)

// runSeed adds synthetic stored transactions and their outcomes to a
// database the services have migrated (internal/seed).
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseURLFlag(fs, getenv)
	c := seed.Defaults
	fs.Int64Var(&c.Rows, "rows", 0, "transactions to add (required), after those a previous run added")
	fs.StringVar(&c.Tenant, "tenant", c.Tenant, "the tenant they belong to")
	fs.IntVar(&c.Users, "users", c.Users, "distinct user ids")
	fs.Int64Var(&c.FailedEvery, "failed-every", c.FailedEvery, "every n-th transaction failed; 0 for none")
	fs.Int64Var(&c.Pending, "pending", c.Pending, "the newest transactions of this run left without an outcome (received)")
	fs.DurationVar(&c.Spacing, "spacing", c.Spacing, "received_at between consecutive transactions, from 2024-01-01T00:00:00Z")
	if err := fs.Parse(args); err != nil {
		return err
	}
	conn, err := connect(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	start := time.Now()
	c.Progress = func(done int64) {
		el := time.Since(start)
		fmt.Fprintf(stderr, "seed: %d of %d in %s (%.0f/s)\n", done, c.Rows, el.Round(time.Second), float64(done)/el.Seconds())
	}
	r, err := seed.Run(ctx, conn, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded seed-%010d to seed-%010d (%d transactions) in %s\n", r.First, r.Last, r.Last-r.First+1, r.Took.Round(time.Millisecond))
	return nil
}
