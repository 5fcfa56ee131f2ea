package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/tools/txctl/internal/store"
)

// reprocessReport is what `txctl reprocess` prints.
type reprocessReport struct {
	DryRun bool `json:"dry_run"`
	// Reprocessed are the transactions queued again (in a dry run: that
	// would be).
	Reprocessed []string `json:"reprocessed"`
	Batches     int      `json:"batches"`
	// NotFailed are the ids asked for whose transaction is not failed
	// (received, processed, queued again before) or does not exist.
	NotFailed []string `json:"not_failed,omitempty"`
}

func runReprocess(ctx context.Context, args []string, e env) error {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	fs := newFlags("reprocess", e)
	var ids idsFlag
	tenant := fs.String("tenant", txmodel.DefaultTenant, "the tenant whose transactions to reprocess (ids are unique per tenant)")
	fs.Var(&ids, "id", "reprocess this transaction if it failed (repeatable, or comma-separated)")
	status := fs.String("status", "", `select transactions by status; only "failed" is allowed`)
	reason := fs.String("reason-like", "", "with -status failed: the failure reason matches this SQL LIKE pattern (% and _ are wildcards)")
	since := &timeFlag{now: e.now}
	fs.Var(since, "since", "with -status failed: failed at or after this time (2024-09-11T12:00:00Z, 2024-09-11, or 36h for that long ago)")
	until := &timeFlag{now: e.now}
	fs.Var(until, "until", "with -status failed: failed before this time (same forms as -since)")
	dryRun := fs.Bool("dry-run", false, "change nothing; say what would be reprocessed")
	batch := fs.Int("batch", store.DefaultBatchSize, "transactions per database transaction")
	verbose := fs.Bool("v", false, "name each transaction")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	filtered := *reason != "" || !since.t.IsZero() || !until.t.IsZero()
	switch {
	case len(ids) > 0 && (*status != "" || filtered):
		return usageError("reprocess: -id excludes -status, -reason-like, -since and -until")
	case len(ids) == 0 && *status == "":
		return usageError("reprocess: say which transactions: -id ID ... or -status failed")
	case *status != "" && *status != string(txmodel.StatusFailed):
		return usageError("reprocess: -status %q: only failed transactions can be reprocessed", *status)
	case txmodel.CheckTenant(*tenant) != nil:
		return usageError("reprocess: -tenant: %v", txmodel.CheckTenant(*tenant))
	case *batch <= 0:
		return usageError("reprocess: -batch %d is not positive", *batch)
	case !since.t.IsZero() && !until.t.IsZero() && !since.t.Before(until.t):
		return usageError("reprocess: -since %s is not before -until %s", since, until)
	}

	pool, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	f := store.Filter{Tenant: *tenant, IDs: ids, ReasonLike: *reason, Since: since.t, Until: until.t}
	res, err := store.New(pool).Reprocess(ctx, f, *batch, *dryRun)

	rep := reprocessReport{DryRun: *dryRun, Reprocessed: res.IDs, Batches: res.Batches}
	if rep.Reprocessed == nil {
		rep.Reprocessed = []string{}
	}
	if err == nil {
		for _, id := range ids {
			if !slices.Contains(res.IDs, id) && !slices.Contains(rep.NotFailed, id) {
				rep.NotFailed = append(rep.NotFailed, id)
			}
		}
	}
	var perr error
	if *asJSON {
		perr = writeJSON(e.stdout, rep)
	} else {
		printReprocess(e, rep, *verbose)
	}
	if err != nil {
		return err
	}
	return perr
}

func printReprocess(e env, rep reprocessReport, verbose bool) {
	if rep.DryRun {
		fmt.Fprintf(e.stdout, "dry run, nothing changed: would reprocess %d failed transactions\n", len(rep.Reprocessed))
	} else {
		fmt.Fprintf(e.stdout, "reprocessed %d failed transactions in %d database transactions; the api's relay publishes them from the outbox\n",
			len(rep.Reprocessed), rep.Batches)
	}
	if verbose {
		for _, id := range rep.Reprocessed {
			fmt.Fprintln(e.stdout, id)
		}
	}
	if len(rep.NotFailed) > 0 {
		fmt.Fprintf(e.stdout, "not failed (received, processed, already reprocessed, or unknown), left alone: %s\n", strings.Join(rep.NotFailed, ", "))
	}
}
