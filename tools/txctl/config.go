package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/service/envconfig"
)

// Defaults of the configuration: the services' own.
const (
	defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable"
	defaultAMQPURL     = "amqp://guest:guest@127.0.0.1:5672/"
)

// config is txctl's configuration, read from the environment variables the
// services read, so that one setting reaches all of them.
type config struct {
	DatabaseURL string          // DATABASE_URL
	AMQPURL     string          // AMQP_URL
	RetryDelays []time.Duration // RETRY_DELAYS: names the delay queues
	WaitDelay   time.Duration   // RATES_PENDING_RETRY: names the wait queue
}

func loadConfig(getenv func(string) string) (config, error) {
	e := envconfig.NewEnv(getenv)
	c := config{
		DatabaseURL: e.URL("DATABASE_URL", defaultDatabaseURL, "postgres", "postgresql"),
		AMQPURL:     e.URLs("AMQP_URL", defaultAMQPURL, "amqp", "amqps"),
		RetryDelays: e.Durations("RETRY_DELAYS", amqpx.DefaultRetryDelays()),
		WaitDelay:   e.Duration("RATES_PENDING_RETRY", amqpx.DefaultWaitDelay),
	}
	if err := e.Err(); err != nil {
		return config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// topology is the pipeline's topology with delays as its retry ladder and
// wait as the delay of its wait queue.
func topology(delays []time.Duration, wait time.Duration) (amqpx.Topology, error) {
	topo := amqpx.DefaultTopology()
	topo.RetryDelays = delays
	topo.WaitDelay = wait
	if err := topo.Validate(); err != nil {
		return amqpx.Topology{}, usageError("retry delays: %v", err)
	}
	return topo, nil
}

// openDB returns a small pool on the database; the caller closes it.
func openDB(ctx context.Context, c config) (*pgxpool.Pool, error) {
	pool, err := pgkit.NewPool(ctx, c.DatabaseURL, 2)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL %s: %w", envconfig.Redact(c.DatabaseURL), err)
	}
	return pool, nil
}

// dialBroker connects to RabbitMQ without declaring anything: an operator's
// look must not create queues; the caller closes the Conn.
func dialBroker(ctx context.Context, c config) (*amqpx.Conn, error) {
	conn, err := amqpx.Dial(ctx, c.AMQPURL, amqpx.WithConnectionName("txpersister-txctl"))
	if err != nil {
		return nil, fmt.Errorf("AMQP_URL: %w", err)
	}
	return conn, nil
}

// newFlags returns a flag set for a command that reports errors to e.stderr
// and returns them instead of exiting.
func newFlags(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("txctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args into fs and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageError("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// idsFlag collects a repeatable -id flag; a value may also list several
// ids separated by commas.
type idsFlag []string

func (f *idsFlag) String() string { return strings.Join(*f, ",") }

func (f *idsFlag) Set(v string) error {
	for id := range strings.SplitSeq(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*f = append(*f, id)
		}
	}
	return nil
}

// durationsFlag is a comma-separated list of durations.
type durationsFlag []time.Duration

func (f *durationsFlag) String() string {
	parts := make([]string, len(*f))
	for i, d := range *f {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func (f *durationsFlag) Set(v string) error {
	var out []time.Duration
	for part := range strings.SplitSeq(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil || d <= 0 {
			return fmt.Errorf("%q is not a comma-separated list of positive durations such as 5s,30s,2m", v)
		}
		out = append(out, d)
	}
	*f = out
	return nil
}

// timeFlag is a point in time: RFC 3339 ("2024-09-11T12:00:00Z"), a UTC
// date ("2024-09-11"), or a duration meaning that long before now ("36h").
type timeFlag struct {
	t   time.Time
	now func() time.Time
}

func (f *timeFlag) String() string {
	if f == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(v string) error {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		f.t = t
		return nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		f.t = t
		return nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		f.t = f.now().Add(-d)
		return nil
	}
	return fmt.Errorf("%q is not a time such as 2024-09-11T12:00:00Z, 2024-09-11 or 36h (ago)", v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
