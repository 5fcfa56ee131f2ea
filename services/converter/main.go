// Command converter is txpersister's conversion worker: it consumes
// transactions from RabbitMQ, fetches the exchange rate for each one's day,
// and records the amount converted to TARGET_CURRENCY in PostgreSQL.
//
// Usage:
//
//	converter              serve (migrating the database first)
//	converter migrate      apply the converter's migrations to DATABASE_URL and exit
//	converter healthcheck  exit 0 when this machine's converter is ready (for container images)
//
// Configuration comes from environment variables; see the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/sync/errgroup"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/pgkit"
	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/services/converter/internal/config"
	"github.com/txpersister/txpersister/services/converter/internal/convert"
	"github.com/txpersister/txpersister/services/converter/internal/store"
	"github.com/txpersister/txpersister/services/converter/internal/worker"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "converter: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.Log, "converter")

	switch {
	case len(args) == 1 && args[0] == "migrate":
		return store.Migrate(ctx, cfg.DatabaseURL, log)
	case len(args) == 1 && args[0] == "healthcheck":
		return telemetry.Probe(ctx, telemetry.LocalURL(cfg.AdminAddr, "/readyz"))
	case len(args) > 0:
		return fmt.Errorf("unknown arguments %q (usage: converter [migrate|healthcheck])", args)
	}

	log.InfoContext(ctx, "starting", "version", version, "config", cfg)
	shutdownTracing, err := telemetry.SetupTracing(ctx, "converter", version)
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
	rates, err := ratesclient.New(ratesclient.Config{
		BaseURL:  cfg.RatesURL,
		Provider: cfg.RatesProvider,
		Timeout:  cfg.RatesTimeout,
		// The client span is named by the method alone, as OpenTelemetry's
		// HTTP conventions say for a client without a route template.
		HTTPClient: &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }))},
		Observer: newRatesObserver(metrics, cfg.RatesProvider),
	})
	if err != nil {
		return fmt.Errorf("rates client: %w", err)
	}

	topo := amqpx.DefaultTopology()
	topo.RetryDelays = cfg.RetryDelays
	if err := topo.Validate(); err != nil {
		return fmt.Errorf("RETRY_DELAYS: %w", err)
	}
	conn, err := amqpx.DialUntil(ctx, cfg.AMQPURL,
		func(err error, wait time.Duration) {
			log.WarnContext(ctx, "RabbitMQ unreachable; waiting", "err", err, "retry_in", wait)
		},
		amqpx.WithLogger(log),
		amqpx.WithConnectionName("txpersister-converter"),
		amqpx.OnConnect(topo.Declare))
	if err != nil {
		return nil // stopped before the broker came
	}
	defer func() {
		if err := conn.Close(); err != nil {
			log.Warn("close the RabbitMQ connection", "err", err)
		}
	}()
	pub := amqpx.NewPublisher(conn)
	defer func() {
		if err := pub.Close(); err != nil {
			log.Warn("close the retry publisher", "err", err)
		}
	}()
	// Concurrent messages share the round trip and commit of their writes.
	saver := st.Batched(pgkit.BatchConfig{Flushers: 2, MaxSize: cfg.Prefetch, Timeout: 10 * time.Second})
	defer saver.Close()
	w := worker.New(convert.New(rates, saver, cfg.Target, time.Now), amqpx.NewRetrier(pub, topo), topo.Queue, log, metrics, time.Now)
	consumer := amqpx.NewConsumer(conn, topo.Queue, cfg.Prefetch,
		amqpx.WithConcurrency(cfg.Concurrency), amqpx.WithConsumerLogger(log), amqpx.WithConsumerTag("txpersister-converter"),
		// One cumulative ack for many messages instead of a frame each; an
		// ack lost with the process is a redelivery, which changes nothing.
		amqpx.WithBatchedAcks(max(cfg.Prefetch/4, 2), 5*time.Millisecond))

	ready := func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return err
		}
		if !conn.Ready() {
			return fmt.Errorf("RabbitMQ connection down")
		}
		if !consumer.Consuming() {
			return fmt.Errorf("not consuming %s", topo.Queue)
		}
		return nil
	}
	admin := telemetry.NewAdminServer(cfg.AdminAddr, metrics, ready)

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return telemetry.RunServer(ctx, admin, log) })
	g.Go(func() error {
		log.InfoContext(ctx, "consuming", "queue", topo.Queue, "prefetch", cfg.Prefetch, "concurrency", cfg.Concurrency, "target", cfg.Target.Code())
		return consumer.Run(ctx, w.Handle)
	})
	err = g.Wait()
	log.Info("stopped", "err", err)
	return err
}

// ratesObserver counts the rates client's calls and cache use.
type ratesObserver struct{ m *telemetry.Metrics }

// newRatesObserver returns a ratesObserver whose series for provider exist
// at zero from the start, so the provider's error ratio and cache hit ratio
// are zero, not absent, until the first call.
func newRatesObserver(m *telemetry.Metrics, provider string) ratesObserver {
	for _, outcome := range []string{"ok", "not_found", "error"} {
		m.Counter(telemetry.MetricName("rates_requests_total", "provider", provider, "outcome", outcome))
	}
	m.Histogram(telemetry.MetricName("rates_request_duration_seconds", "provider", provider), telemetry.LatencyBuckets())
	m.Counter("rates_cache_hits_total")
	m.Counter("rates_cache_misses_total")
	return ratesObserver{m}
}

// ObserveCall counts a call by outcome: ok, not_found (the provider
// answered that it has no such rate: a healthy answer, kept out of its
// error ratio) or error.
func (o ratesObserver) ObserveCall(provider string, d time.Duration, err error) {
	outcome := "ok"
	switch {
	case errors.Is(err, ratesclient.ErrNotFound):
		outcome = "not_found"
	case err != nil:
		outcome = "error"
	}
	o.m.Counter(telemetry.MetricName("rates_requests_total", "provider", provider, "outcome", outcome)).Inc()
	o.m.Histogram(telemetry.MetricName("rates_request_duration_seconds", "provider", provider), telemetry.LatencyBuckets()).Update(d.Seconds())
}

func (o ratesObserver) ObserveCacheHit(hit bool) {
	if hit {
		o.m.Counter("rates_cache_hits_total").Inc()
	} else {
		o.m.Counter("rates_cache_misses_total").Inc()
	}
}
