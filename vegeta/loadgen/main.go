// Command loadgen feeds and checks the load tests in vegeta/: it writes the
// run's transactions as vegeta targets, sums up vegeta's results, and waits
// for the pipeline to drain, reporting from the database what became of
// every accepted transaction.
//
//	[API_KEY=key] loadgen targets -url http://127.0.0.1:8080 -run RUN [-batch N] [-n COUNT] [-seed S]
//	loadgen results [-batch N] [-shell FILE] [-json FILE] < results.json
//	loadgen check [-database-url URL]
//	loadgen seed -rows N [-database-url URL] [-tenant T] [-users U] [-failed-every K] [-pending P]
//	loadgen sink [-addr 127.0.0.1:9099]
//	loadgen report -run RUN [-database-url URL] [-expect N] [-drain 30s]
//	               [-since RFC3339] [-attack-end RFC3339] [-json FILE] [-shell FILE]
//
// Exit status: 0 when all is well, 1 when report finds transactions lost,
// 2 for a usage error or a failure to do the work.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/vegeta/loadgen/internal/attack"
	"github.com/txpersister/txpersister/vegeta/loadgen/internal/drain"
	"github.com/txpersister/txpersister/vegeta/loadgen/internal/targets"
)

// DefaultDatabaseURL is the database report reads when neither
// -database-url nor DATABASE_URL says otherwise: the one make run uses.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable"

// Exit statuses.
const (
	exitOK    = 0
	exitLost  = 1
	exitError = 2
)

func main() {
	// A reader that goes away (vegeta at the end of its attack) must end
	// `loadgen targets` with a write error, not kill it with SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run runs the subcommand args names and returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: loadgen targets|results|check|report|seed|sink [flags]; loadgen <command> -h for its flags")
		return exitError
	}
	var err error
	switch args[0] {
	case "targets":
		err = runTargets(args[1:], stdout, stderr, getenv)
	case "results":
		err = runResults(args[1:], stdin, stdout, stderr)
	case "check":
		err = runCheck(ctx, args[1:], stdout, stderr, getenv)
	case "report":
		return runReport(ctx, args[1:], stdout, stderr, getenv)
	case "seed":
		err = runSeed(ctx, args[1:], stdout, stderr, getenv)
	case "sink":
		err = runSink(ctx, args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("unknown command %q: want targets, results, check, report, seed or sink", args[0])
	}
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "loadgen %s\n", err)
		}
		return exitError
	}
	return exitOK
}

// runTargets writes the targets. The API key, if any, comes from $API_KEY,
// not a flag, so that it does not show in the process list.
func runTargets(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("targets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "the api's base URL")
	runID := fs.String("run", "", "the run id (required): transaction ids are load-<run>-<n>")
	batch := fs.Int("batch", 0, "transactions per request to POST /v1/transactions/batch; 0 posts each to POST /v1/transactions")
	n := fs.Int64("n", -1, "how many targets to write; negative writes until the reader goes away")
	seed := fs.Uint64("seed", 0, "seed of users, amounts, currencies and dates; 0 derives it from the run id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := *seed
	if s == 0 {
		h := fnv.New64a()
		h.Write([]byte(*runID))
		s = h.Sum64()
	}
	g, err := targets.New(targets.Config{URL: *url, Run: *runID, Batch: *batch, Seed: s, APIKey: getenv("API_KEY")})
	if err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	err = g.WriteTargets(stdout, *n)
	if *n < 0 && errors.Is(err, syscall.EPIPE) {
		return nil // the reader has all it wanted
	}
	if err != nil {
		return fmt.Errorf("targets: %w", err)
	}
	return nil
}

func runResults(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("results", flag.ContinueOnError)
	fs.SetOutput(stderr)
	batch := fs.Int("batch", 0, "transactions per request of the attack; 0 for single requests")
	shellFile := fs.String("shell", "", "also write name=value lines for a shell script to this file")
	jsonFile := fs.String("json", "", "also write the summary as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := attack.Summarize(stdin, *batch)
	if err != nil {
		return fmt.Errorf("results: %w", err)
	}
	if *jsonFile != "" {
		if err := writeJSON(*jsonFile, s); err != nil {
			return fmt.Errorf("results: %w", err)
		}
	}
	if *shellFile != "" {
		if err := writeFile(*shellFile, s.WriteShell); err != nil {
			return fmt.Errorf("results: %w", err)
		}
	}
	if err := s.WriteText(stdout); err != nil {
		return fmt.Errorf("results: %w", err)
	}
	return nil
}

// databaseURLFlag adds -database-url to fs, defaulting to $DATABASE_URL,
// else DefaultDatabaseURL.
func databaseURLFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := getenv("DATABASE_URL")
	if def == "" {
		def = DefaultDatabaseURL
	}
	return fs.String("database-url", def, "the pipeline's database (default $DATABASE_URL, else make run's)")
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	return conn, nil
}

// runCheck makes sure report will be able to read the database, before an
// attack rather than after it.
func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := databaseURLFlag(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	conn, err := connect(ctx, *dbURL)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM accepted_transactions t LEFT JOIN conversion_outcomes c USING (tenant, transaction_id) LIMIT 1) x`).Scan(&n)
	if err != nil {
		return fmt.Errorf("check: the database lacks the api's and the converter's published views (have both started once?): %w", err)
	}
	fmt.Fprintln(stdout, "database ok")
	return nil
}

func runReport(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "loadgen report: %v\n", err)
		return exitError
	}
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runID := fs.String("run", "", "the run id (required)")
	dbURL := databaseURLFlag(fs, getenv)
	expect := fs.Int64("expect", -1, "how many transactions the attack got 201/200 for; negative when unknown")
	drainFor := fs.Duration("drain", 30*time.Second, "how long to wait for every accepted transaction to have an outcome")
	poll := fs.Duration("poll", 250*time.Millisecond, "how often to count while waiting")
	since := fs.String("since", "", "when the attack started, RFC 3339")
	attackEnd := fs.String("attack-end", "", "when the attack's last answer came, RFC 3339")
	jsonFile := fs.String("json", "", "also write the report as JSON to this file")
	shellFile := fs.String("shell", "", "also write name=value lines for a shell script to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitError
		}
		return fail(err)
	}
	opts := drain.Options{Run: *runID, Expect: *expect, Drain: *drainFor, Poll: *poll}
	var err error
	if opts.Since, err = parseTime("since", *since); err != nil {
		return fail(err)
	}
	if opts.AttackEnd, err = parseTime("attack-end", *attackEnd); err != nil {
		return fail(err)
	}
	if err := targets.CheckRun(opts.Run); err != nil {
		return fail(err)
	}

	conn, err := connect(ctx, *dbURL)
	if err != nil {
		return fail(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	r, err := drain.Wait(ctx, conn, opts)
	if err != nil {
		return fail(err)
	}
	if *jsonFile != "" {
		if err := writeJSON(*jsonFile, r); err != nil {
			return fail(err)
		}
	}
	if *shellFile != "" {
		if err := writeFile(*shellFile, r.WriteShell); err != nil {
			return fail(err)
		}
	}
	if err := r.WriteText(stdout); err != nil {
		return fail(err)
	}
	if r.Lost > 0 {
		return exitLost
	}
	return exitOK
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-%s: %w", name, err)
	}
	return t, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		_ = f.Close() // the write's error is the one to report
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
