package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/tools/txctl/internal/queues"
	"github.com/txpersister/txpersister/tools/txctl/internal/store"
)

// lookTimeout bounds the commands that only look.
const lookTimeout = 30 * time.Second

// statusReport is what `txctl status` prints.
type statusReport struct {
	Outbox       *outboxReport    `json:"outbox,omitempty"`
	Transactions map[string]int64 `json:"transactions,omitempty"`
	Queues       []queues.Depth   `json:"queues,omitempty"`
	// Errors name what could not be read; the rest is still reported.
	Errors []string `json:"errors,omitempty"`
}

type outboxReport struct {
	Backlog int64 `json:"backlog"`
	// Oldest is when the oldest waiting entry was written; absent when
	// none waits.
	Oldest *time.Time `json:"oldest,omitempty"`
	// OldestAgeSeconds is how long the oldest entry has waited.
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

func runStatus(ctx context.Context, args []string, e env) error {
	cfg, err := loadConfig(e.getenv)
	if err != nil {
		return err
	}
	fs := newFlags("status", e)
	asJSON := fs.Bool("json", false, "print JSON")
	tenant := fs.String("tenant", "", "count only this tenant's transactions (default: every tenant's)")
	delays := durationsFlag(cfg.RetryDelays)
	fs.Var(&delays, "retry-delays", "comma-separated `delays` of the converter's retry ladder, which name the delay queues; the default is RETRY_DELAYS or the services' default")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *tenant != "" && txmodel.CheckTenant(*tenant) != nil {
		return usageError("status: -tenant: %v", txmodel.CheckTenant(*tenant))
	}
	topo, err := topology(delays, cfg.WaitDelay)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, lookTimeout)
	defer cancel()

	// Each half is reported even when the other cannot be read: status is
	// what an operator runs while something is down.
	var rep statusReport
	var errs []error
	if err := readDatabase(ctx, cfg, e.now(), *tenant, &rep); err != nil {
		errs = append(errs, fmt.Errorf("PostgreSQL: %w", err))
	}
	if err := readQueues(ctx, cfg, topo, &rep); err != nil {
		errs = append(errs, fmt.Errorf("RabbitMQ: %w", err))
	}
	for _, err := range errs {
		rep.Errors = append(rep.Errors, err.Error())
	}
	if *asJSON {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else if err := printStatus(e, rep); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func readDatabase(ctx context.Context, cfg config, now time.Time, tenant string, rep *statusReport) error {
	pool, err := openDB(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	st := store.New(pool)
	ob, err := st.Outbox(ctx)
	if err != nil {
		return err
	}
	rep.Outbox = &outboxReport{Backlog: ob.Backlog}
	if !ob.Oldest.IsZero() {
		rep.Outbox.Oldest = &ob.Oldest
		rep.Outbox.OldestAgeSeconds = max(now.Sub(ob.Oldest), 0).Seconds()
	}
	counts, err := st.CountByStatus(ctx, tenant)
	if err != nil {
		return err
	}
	rep.Transactions = make(map[string]int64, len(counts))
	for s, n := range counts {
		rep.Transactions[string(s)] = n
	}
	return nil
}

func readQueues(ctx context.Context, cfg config, topo amqpx.Topology, rep *statusReport) error {
	conn, err := dialBroker(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // a lookup: its close loses nothing
	depths, err := queues.Depths(ctx, conn, queues.Names(topo))
	if err != nil {
		return err
	}
	rep.Queues = depths
	return nil
}

func printStatus(e env, rep statusReport) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if ob := rep.Outbox; ob != nil {
		if ob.Oldest == nil {
			fmt.Fprintf(w, "outbox:\t%d waiting\n", ob.Backlog)
		} else {
			age := time.Duration(ob.OldestAgeSeconds * float64(time.Second)).Round(time.Millisecond)
			fmt.Fprintf(w, "outbox:\t%d waiting, oldest written %s (%s ago)\n", ob.Backlog, ob.Oldest.Format(time.RFC3339), age)
		}
	}
	if rep.Transactions != nil {
		fmt.Fprintf(w, "transactions:\t%d received, %d processed, %d failed\n",
			rep.Transactions[string(txmodel.StatusReceived)],
			rep.Transactions[string(txmodel.StatusProcessed)],
			rep.Transactions[string(txmodel.StatusFailed)])
	}
	if rep.Queues != nil {
		fmt.Fprintf(w, "\nQUEUE\tMESSAGES\tCONSUMERS\n")
		for _, q := range rep.Queues {
			if q.Missing {
				fmt.Fprintf(w, "%s\t-\t-\t(does not exist)\n", q.Name)
				continue
			}
			fmt.Fprintf(w, "%s\t%d\t%d\n", q.Name, q.Messages, q.Consumers)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}
