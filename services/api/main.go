// Command api is txpersister's ingest API: it validates transactions, stores
// each with an outbox entry in PostgreSQL, and relays the outbox to
// RabbitMQ for the converter.
//
// Usage:
//
//	api              serve (migrating the database first)
//	api migrate      apply the api's migrations to DATABASE_URL and exit
//	api healthcheck  exit 0 when this machine's api is ready (for container images)
//
// Configuration comes from environment variables; see the README.
package main

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

	"golang.org/x/sync/errgroup"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/config"
	"github.com/txpersister/txpersister/services/api/internal/httpapi"
	"github.com/txpersister/txpersister/services/api/internal/ingest"
	"github.com/txpersister/txpersister/services/api/internal/relay"
	"github.com/txpersister/txpersister/services/api/internal/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "api: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.Log, "api")

	switch {
	case len(args) == 1 && args[0] == "migrate":
		return store.Migrate(ctx, cfg.DatabaseURL, log)
	case len(args) == 1 && args[0] == "healthcheck":
		return telemetry.Probe(ctx, telemetry.LocalURL(cfg.AdminAddr, "/readyz"))
	case len(args) > 0:
		return fmt.Errorf("unknown arguments %q (usage: api [migrate|healthcheck])", args)
	}

	if err := cfg.CheckAccess(); err != nil {
		return err
	}
	log.InfoContext(ctx, "starting", "version", version, "config", cfg)
	shutdownTracing, err := telemetry.SetupTracing(ctx, "api", version)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(ctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()

	if err := store.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
		return err
	}
	pool, err := pgkit.NewPool(ctx, cfg.DatabaseURL, cfg.DBMaxConns)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	st := store.New(pool)

	metrics := telemetry.NewMetrics("txpersister_")
	for name, f := range pgkit.PoolGauges(pool) {
		metrics.Gauge(name, f)
	}
	topo := amqpx.DefaultTopology()
	rel := relay.New(st, relay.Config{
		Exchange:   topo.Exchange,
		RoutingKey: topo.RoutingKey,
		BatchSize:  cfg.RelayBatchSize,
		PollPeriod: cfg.RelayPollPeriod,
	}, log, metrics)
	// Every commit that adds outbox entries wakes this process's relays.
	txs := ingest.New(st, time.Now, ingest.BatchConfig{
		Flushers: cfg.BatchFlushers,
		MaxSize:  cfg.BatchMax,
		Window:   cfg.BatchWindow,
		Timeout:  cfg.RequestTimeout,
	}, rel.Wake)
	// Closed after the servers stopped: their last requests wait on it.
	defer txs.Close()
	if cfg.AuthDisabled {
		log.WarnContext(ctx, "authentication is disabled (AUTH_DISABLED=true): every request is let in")
	}
	handler := httpapi.New(txs, log, metrics, time.Now, cfg.RequestTimeout,
		httpapi.WithAccess(auth.NewAuthenticator(cfg.Keys, cfg.AuthDisabled), auth.NewLimiter(cfg.RateLimit, cfg.RateBurst)),
		httpapi.WithOpenAPI(openAPISpec))
	public := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	admin := telemetry.NewAdminServer(cfg.AdminAddr, metrics, st.Ping)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return telemetry.RunServer(ctx, public, log) })
	g.Go(func() error { return telemetry.RunServer(ctx, admin, log) })
	g.Go(func() error { rel.WatchBacklog(ctx); return nil })
	g.Go(func() error { return runRelays(ctx, cfg, topo, rel, log) })
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}

// runRelays connects to RabbitMQ, retrying for as long as it takes (the
// API keeps accepting meanwhile: transactions wait in the outbox), and runs
// cfg.Relays relay loops, each publishing on its own channel.
func runRelays(ctx context.Context, cfg config.Config, topo amqpx.Topology, rel *relay.Relay, log *slog.Logger) error {
	conn, err := amqpx.DialUntil(ctx, cfg.AMQPURL,
		func(err error, wait time.Duration) {
			log.WarnContext(ctx, "RabbitMQ unreachable; transactions wait in the outbox", "err", err, "retry_in", wait)
		},
		amqpx.WithLogger(log),
		amqpx.WithConnectionName("txpersister-api"),
		amqpx.OnConnect(topo.Declare))
	if err != nil {
		return nil // stopped before the broker came
	}
	defer func() {
		if err := conn.Close(); err != nil {
			log.Warn("close the RabbitMQ connection", "err", err)
		}
	}()
	log.InfoContext(ctx, "outbox relay running", "exchange", topo.Exchange, "relays", cfg.Relays)
	g, ctx := errgroup.WithContext(ctx)
	for range cfg.Relays {
		g.Go(func() error {
			pub := amqpx.NewPublisher(conn)
			defer func() {
				if err := pub.Close(); err != nil {
					log.Warn("close a relay's publisher", "err", err)
				}
			}()
			return rel.Run(ctx, pub)
		})
	}
	return g.Wait()
}
