// Package drain waits for the pipeline to finish the transactions of a load
// run and reports what became of them, from the database: how many were
// accepted, processed, failed or are still pending, how long the drain took,
// and the end-to-end latency from receipt by the api to the converter's
// outcome.
package drain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/vegeta/loadgen/internal/targets"
)

// Querier runs a query that returns one row; *pgx.Conn and *pgxpool.Pool
// are Queriers.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// SinceMargin is how long before Options.Since the rows of a run are still
// looked for: a little clock skew between this program and the api must not
// hide rows.
const SinceMargin = time.Minute

// Options says which run to wait for, and for how long.
type Options struct {
	// Run is the run id: the run's transaction ids start with load-<Run>-.
	Run string
	// Expect is how many transactions the attack got a 201 or 200 for, or
	// a negative number when unknown. Fewer rows than that are lost too.
	Expect int64
	// Drain is how long to wait for every row to have an outcome.
	Drain time.Duration
	// Poll is how often to count; 0 means every 250 ms.
	Poll time.Duration
	// Since is when the attack started (zero when unknown). Rows received
	// more than SinceMargin earlier are not looked at, which lets
	// PostgreSQL find the run's rows by the index of each tenant's
	// transactions by received_at instead of reading them all.
	Since time.Time
	// AttackEnd is when the attack's last answer came (zero when unknown).
	AttackEnd time.Time
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Latency holds percentiles of the end-to-end latency, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Report is what became of a run's transactions.
type Report struct {
	Run string `json:"run"`
	// Expected is Options.Expect, or nil when unknown.
	Expected *int64 `json:"expected,omitempty"`
	// Accepted counts the run's rows in transactions.
	Accepted int64 `json:"accepted"`
	// Processed and Failed count the rows with that outcome in conversions.
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
	// Pending counts the accepted rows still without an outcome.
	Pending int64 `json:"pending"`
	// Missing counts the transactions answered 201 or 200 that have no row:
	// Expected - Accepted when positive.
	Missing int64 `json:"missing"`
	// Lost is Pending + Missing; a run with anything lost failed.
	Lost int64 `json:"lost"`
	// Drained tells whether every row had an outcome within Options.Drain.
	Drained bool `json:"drained"`
	// DrainSeconds is the time from the start of Wait until every row had
	// an outcome, or until it gave up.
	DrainSeconds float64 `json:"drain_seconds"`
	// DrainAfterAttackSeconds is the same moment measured from the
	// attack's end, when that is known.
	DrainAfterAttackSeconds *float64 `json:"drain_after_attack_seconds,omitempty"`
	// LastOutcomeAfterAttackSeconds is the last outcome's processed_at
	// measured from the attack's end, when both are known: the drain as
	// the converter saw it, free of this program's polling interval.
	// Negative when the pipeline had finished before the attack did.
	LastOutcomeAfterAttackSeconds *float64 `json:"last_outcome_after_attack_seconds,omitempty"`
	// Latency is the end-to-end latency, processed_at - received_at, over
	// every row with an outcome; nil when there is none.
	Latency *Latency `json:"latency,omitempty"`
	// FirstReceived, LastReceived and LastOutcome bound the run in time.
	FirstReceived *time.Time `json:"first_received,omitempty"`
	LastReceived  *time.Time `json:"last_received,omitempty"`
	LastOutcome   *time.Time `json:"last_outcome,omitempty"`
	// InPerSecond is Accepted over the attack (Since to AttackEnd), or over
	// FirstReceived to LastReceived when those are not known.
	InPerSecond float64 `json:"in_per_second"`
	// OutPerSecond is the rows with an outcome over the time from the
	// attack's start (or FirstReceived) to LastOutcome.
	OutPerSecond float64 `json:"out_per_second"`
}

// Wait counts the run's rows every Options.Poll until each has an outcome
// or Options.Drain has passed, then reads the latencies and returns the
// report. A run whose rows are not all there is reported, not an error; the
// error is for a database that cannot answer, or a cancelled ctx.
func Wait(ctx context.Context, db Querier, opts Options) (Report, error) {
	if err := targets.CheckRun(opts.Run); err != nil {
		return Report{}, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	poll := opts.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	var tenants []string
	if !opts.Since.IsZero() {
		var err error
		if tenants, err = storedTenants(ctx, db); err != nil {
			return Report{}, err
		}
	}
	where, args := filter(opts, tenants)
	start := now()
	deadline := start.Add(opts.Drain)

	r := Report{Run: opts.Run}
	if opts.Expect >= 0 {
		r.Expected = &opts.Expect
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return Report{}, fmt.Errorf("wait for run %s: %w", opts.Run, ctx.Err())
		case <-timer.C:
		}
		err := db.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE c.status = 'processed'),
			count(*) FILTER (WHERE c.status = 'failed'),
			count(*) FILTER (WHERE c.transaction_id IS NULL)
			FROM accepted_transactions t LEFT JOIN conversion_outcomes c USING (tenant, transaction_id)
			WHERE `+where, args...).Scan(&r.Accepted, &r.Processed, &r.Failed, &r.Pending)
		if err != nil {
			return Report{}, fmt.Errorf("count the rows of run %s: %w", opts.Run, err)
		}
		t := now()
		r.DrainSeconds = t.Sub(start).Seconds()
		if !opts.AttackEnd.IsZero() {
			d := t.Sub(opts.AttackEnd).Seconds()
			r.DrainAfterAttackSeconds = &d
		}
		if r.Pending == 0 {
			r.Drained = true
			break
		}
		if !t.Before(deadline) {
			break
		}
		timer.Reset(min(poll, deadline.Sub(t)))
	}
	if r.Expected != nil && *r.Expected > r.Accepted {
		r.Missing = *r.Expected - r.Accepted
	}
	r.Lost = r.Pending + r.Missing

	if err := stats(ctx, db, where, args, opts, &r); err != nil {
		return Report{}, err
	}
	return r, nil
}

// storedTenantsSQL lists the tenants that have transactions, one probe
// of the key (tenant, transaction_id) each instead of a read of every
// row (a loose index scan: PostgreSQL has no skip scan).
const storedTenantsSQL = `WITH RECURSIVE ts AS (
    SELECT min(tenant) AS tenant FROM accepted_transactions
    UNION ALL
    SELECT (SELECT min(tenant) FROM accepted_transactions WHERE tenant > ts.tenant) FROM ts WHERE ts.tenant IS NOT NULL
)
SELECT coalesce(array_agg(tenant), '{}') FROM ts WHERE tenant IS NOT NULL`

// storedTenants returns the tenants that have transactions.
func storedTenants(ctx context.Context, db Querier) ([]string, error) {
	var tenants []string
	if err := db.QueryRow(ctx, storedTenantsSQL).Scan(&tenants); err != nil {
		return nil, fmt.Errorf("list the tenants: %w", err)
	}
	return tenants, nil
}

// filter returns the WHERE clause that selects the run's rows of
// accepted_transactions (alias t) and its arguments. With opts.Since it
// also bounds received_at within tenants, so that the index of each
// tenant's transactions by received_at finds the rows: a run's id prefix
// alone is read by looking at every row, seconds a poll at 50 million.
func filter(opts Options, tenants []string) (string, []any) {
	// A run id holds no LIKE wildcard (CheckRun), so the prefix needs no
	// escaping.
	where := "t.transaction_id LIKE $1"
	args := []any{targets.IDPrefix(opts.Run) + "%"}
	if !opts.Since.IsZero() {
		where += " AND t.tenant = ANY($2) AND t.received_at >= $3"
		args = append(args, tenants, opts.Since.Add(-SinceMargin))
	}
	return where, args
}

// stats fills in the times, the latency percentiles and the throughputs.
func stats(ctx context.Context, db Querier, where string, args []any, opts Options, r *Report) error {
	var first, last, lastOutcome *time.Time
	err := db.QueryRow(ctx, `SELECT min(received_at), max(received_at) FROM accepted_transactions t WHERE `+where, args...).
		Scan(&first, &last)
	if err != nil {
		return fmt.Errorf("read the receipt times of run %s: %w", opts.Run, err)
	}
	r.FirstReceived, r.LastReceived = utc(first), utc(last)

	// Latencies are durations, not money: float8 is the type
	// percentile_cont computes in.
	var pcts []float64
	var maxLatency *float64
	var outcomes int64
	err = db.QueryRow(ctx, `SELECT count(*), max(c.processed_at),
		percentile_cont(ARRAY[0.5, 0.9, 0.95, 0.99]) WITHIN GROUP (ORDER BY extract(epoch FROM c.processed_at - t.received_at)::float8),
		max(extract(epoch FROM c.processed_at - t.received_at)::float8)
		FROM accepted_transactions t JOIN conversion_outcomes c USING (tenant, transaction_id)
		WHERE `+where, args...).Scan(&outcomes, &lastOutcome, &pcts, &maxLatency)
	if err != nil {
		return fmt.Errorf("read the latencies of run %s: %w", opts.Run, err)
	}
	r.LastOutcome = utc(lastOutcome)
	if len(pcts) == 4 && maxLatency != nil {
		r.Latency = &Latency{P50: ms(pcts[0]), P90: ms(pcts[1]), P95: ms(pcts[2]), P99: ms(pcts[3]), Max: ms(*maxLatency)}
	}
	if r.LastOutcome != nil && !opts.AttackEnd.IsZero() {
		// To the millisecond, and + 0 so that a rounded -0.0004 reads 0.
		d := math.Round(r.LastOutcome.Sub(opts.AttackEnd).Seconds()*1000)/1000 + 0
		r.LastOutcomeAfterAttackSeconds = &d
	}

	switch {
	case !opts.Since.IsZero() && opts.AttackEnd.After(opts.Since):
		r.InPerSecond = perSecond(r.Accepted, opts.AttackEnd.Sub(opts.Since))
	case first != nil && last != nil:
		r.InPerSecond = perSecond(r.Accepted, last.Sub(*first))
	}
	begin := opts.Since
	if begin.IsZero() && first != nil {
		begin = *first
	}
	if lastOutcome != nil && !begin.IsZero() {
		r.OutPerSecond = perSecond(outcomes, lastOutcome.Sub(begin))
	}
	return nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func ms(seconds float64) float64 { return math.Round(seconds*1e6) / 1e3 }

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

// ErrLost is what a caller reports when a run lost transactions.
var ErrLost = errors.New("transactions were lost")

// Err returns an error wrapping ErrLost when r lost anything, else nil.
func (r Report) Err() error {
	if r.Lost > 0 {
		return fmt.Errorf("%w: %d of %d accepted (%d pending after %.1f s, %d answered 2xx without a row)",
			ErrLost, r.Lost, max(r.Accepted, r.expected()), r.Pending, r.DrainSeconds, r.Missing)
	}
	return nil
}

func (r Report) expected() int64 {
	if r.Expected == nil {
		return 0
	}
	return *r.Expected
}

// WriteText writes r for a person to read.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s\n", r.Run)
	if r.Expected != nil {
		fmt.Fprintf(&b, "  answered 201/200  %10d\n", *r.Expected)
	}
	fmt.Fprintf(&b, "  accepted (rows)   %10d\n", r.Accepted)
	fmt.Fprintf(&b, "  processed         %10d\n", r.Processed)
	fmt.Fprintf(&b, "  failed            %10d\n", r.Failed)
	fmt.Fprintf(&b, "  pending           %10d%s\n", r.Pending, lostMark(r.Pending))
	if r.Expected != nil {
		fmt.Fprintf(&b, "  answered, no row  %10d%s\n", r.Missing, lostMark(r.Missing))
	}
	if r.Drained {
		fmt.Fprintf(&b, "  drained           yes, seen %.2f s after this report started", r.DrainSeconds)
	} else {
		fmt.Fprintf(&b, "  drained           NO, gave up after %.2f s", r.DrainSeconds)
	}
	if r.DrainAfterAttackSeconds != nil {
		fmt.Fprintf(&b, ", %.2f s after the attack's end", *r.DrainAfterAttackSeconds)
	}
	b.WriteString("\n")
	if r.LastOutcomeAfterAttackSeconds != nil {
		fmt.Fprintf(&b, "  last outcome      %+.3f s from the attack's end (processed_at)\n", *r.LastOutcomeAfterAttackSeconds)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(&b, "  end-to-end latency (received -> outcome): p50 %s  p90 %s  p95 %s  p99 %s  max %s\n",
			fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P95), fmtMS(l.P99), fmtMS(l.Max))
	} else {
		b.WriteString("  end-to-end latency: no outcome yet\n")
	}
	fmt.Fprintf(&b, "  throughput        in %.1f/s, out %.1f/s\n", r.InPerSecond, r.OutPerSecond)
	if err := r.Err(); err != nil {
		fmt.Fprintf(&b, "LOST: %v\n", err)
	} else {
		b.WriteString("nothing lost\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func lostMark(n int64) string {
	if n > 0 {
		return "  LOST"
	}
	return ""
}

func fmtMS(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.2fs", v/1000)
	}
	return fmt.Sprintf("%.1fms", v)
}

// WriteShell writes r as name=value lines a shell script reads safely:
// accepted, processed, failed, pending, missing, lost, drained (yes or no),
// drain_seconds, drain_after_attack_seconds and last_outcome_after_attack_seconds
// (empty when unknown), e2e_p50_ms, e2e_p99_ms and e2e_max_ms (empty when
// nothing had an outcome), in_per_second, out_per_second.
func (r Report) WriteShell(w io.Writer) error {
	var b strings.Builder
	kv := func(k string, v any) { fmt.Fprintf(&b, "%s=%v\n", k, v) }
	opt := func(p *float64, prec int) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', prec, 64)
	}
	kv("accepted", r.Accepted)
	kv("processed", r.Processed)
	kv("failed", r.Failed)
	kv("pending", r.Pending)
	kv("missing", r.Missing)
	kv("lost", r.Lost)
	kv("drained", map[bool]string{true: "yes", false: "no"}[r.Drained])
	kv("drain_seconds", strconv.FormatFloat(r.DrainSeconds, 'f', 3, 64))
	kv("drain_after_attack_seconds", opt(r.DrainAfterAttackSeconds, 3))
	kv("last_outcome_after_attack_seconds", opt(r.LastOutcomeAfterAttackSeconds, 3))
	var p50, p99, mx *float64
	if l := r.Latency; l != nil {
		p50, p99, mx = &l.P50, &l.P99, &l.Max
	}
	kv("e2e_p50_ms", opt(p50, 3))
	kv("e2e_p99_ms", opt(p99, 3))
	kv("e2e_max_ms", opt(mx, 3))
	kv("in_per_second", strconv.FormatFloat(r.InPerSecond, 'f', 1, 64))
	kv("out_per_second", strconv.FormatFloat(r.OutPerSecond, 'f', 1, 64))
	_, err := io.WriteString(w, b.String())
	return err
}
