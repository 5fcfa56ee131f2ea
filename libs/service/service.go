package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/service/probe"
	"github.com/txpersister/txpersister/libs/service/server"
	"github.com/txpersister/txpersister/libs/telemetry"
)

// RunFunc is a service's run: it reads its configuration with getenv,
// logs to stderr, and returns when ctx ends (nil) or it cannot go on.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error

// Main runs run with a context that ends on SIGINT or SIGTERM, the
// process's arguments and environment; when run fails it prints the error,
// prefixed with name, and exits 1.
func Main(name string, run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

// Command runs the subcommands every service has, named by args:
// "migrate" applies the service's migrations (migrate) and returns;
// "healthcheck" returns nil when the service on this machine answers its
// admin address's /readyz (a container's HEALTHCHECK, with no shell or
// curl in the image). handled is false when args are empty: the service
// should serve. Other args are an error naming the usage.
func Command(ctx context.Context, name string, args []string, migrate func(context.Context) error, adminAddr string) (handled bool, err error) {
	switch {
	case len(args) == 0:
		return false, nil
	case len(args) == 1 && args[0] == "migrate":
		return true, migrate(ctx)
	case len(args) == 1 && args[0] == "healthcheck":
		return true, probe.Get(ctx, probe.LocalURL(adminAddr, "/readyz"))
	default:
		return true, fmt.Errorf("unknown arguments %q (usage: %s [migrate|healthcheck])", args, name)
	}
}

// Config says what Start starts.
type Config struct {
	// Name and Version name the service in its traces.
	Name, Version string
	// DatabaseURL and DBMaxConns are its PostgreSQL and pool size.
	DatabaseURL string
	DBMaxConns  int
	// Migrate applies the service's migrations to the database.
	Migrate func(ctx context.Context, databaseURL string, log *slog.Logger) error
	// MetricsPrefix prefixes the service's metrics; default "txpersister_".
	MetricsPrefix string
}

// Base is what Start made for a service. Close releases it.
type Base struct {
	Log     *slog.Logger
	Metrics *telemetry.Metrics
	Pool    *pgxpool.Pool

	shutdownTracing func(context.Context) error
}

// Start sets up tracing (from the OTEL_* variables), applies the
// service's migrations, opens a pool on the database and makes the metrics
// with the pool's gauges. It returns the migrations' and the pool's errors
// (PostgreSQL unavailable wraps pgkit.ErrUnavailable).
func Start(ctx context.Context, log *slog.Logger, cfg Config) (*Base, error) {
	shutdownTracing, err := telemetry.SetupTracing(ctx, cfg.Name, cfg.Version)
	if err != nil {
		return nil, err
	}
	b := &Base{Log: log, shutdownTracing: shutdownTracing}
	if err := cfg.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
		b.Close(ctx)
		return nil, err
	}
	if b.Pool, err = pgkit.NewPool(ctx, cfg.DatabaseURL, cfg.DBMaxConns); err != nil {
		b.Close(ctx)
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	prefix := cfg.MetricsPrefix
	if prefix == "" {
		prefix = "txpersister_"
	}
	b.Metrics = telemetry.NewMetrics(prefix)
	for name, f := range pgkit.PoolGauges(b.Pool) {
		b.Metrics.Gauge(name, f)
	}
	return b, nil
}

// Close closes the pool and flushes the traces, for at most 5 s after ctx
// (usually done by now: the service is stopping) ends.
func (b *Base) Close(ctx context.Context) {
	if b.Pool != nil {
		b.Pool.Close()
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := b.shutdownTracing(ctx); err != nil {
		b.Log.Warn("flush traces", "err", err)
	}
}

// DialBroker connects to RabbitMQ at url as connName, declaring topo on
// every connection, and waits for the broker as long as it takes, logging
// waiting (what waits meanwhile) with each failure. It returns ctx's
// error when ctx ends first.
func DialBroker(ctx context.Context, url, connName string, topo amqpx.Topology, log *slog.Logger, waiting string) (*amqpx.Conn, error) {
	return amqpx.DialUntil(ctx, url,
		func(err error, wait time.Duration) {
			log.WarnContext(ctx, "RabbitMQ unreachable; "+waiting, "err", err, "retry_in", wait)
		},
		amqpx.WithLogger(log),
		amqpx.WithConnectionName(connName),
		amqpx.OnConnect(topo.Declare))
}

// Run serves servers and runs tasks until ctx ends or one of them fails,
// then stops the rest (servers gracefully) and returns the first error.
func Run(ctx context.Context, log *slog.Logger, servers []*http.Server, tasks ...func(context.Context) error) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, srv := range servers {
		g.Go(func() error { return server.Run(ctx, srv, log) })
	}
	for _, task := range tasks {
		g.Go(func() error { return task(ctx) })
	}
	err := g.Wait()
	log.Info("stopped", "err", err)
	return err
}
