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
	"log/slog"
	"net/http"
	"time"
	_ "time/tzdata" // the provider's calendar (Europe/Berlin) where the image has no zone database

	vm "github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/batch"
	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/service"
	"github.com/txpersister/txpersister/libs/service/admin"
	"github.com/txpersister/txpersister/libs/service/envconfig"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/services/converter/internal/config"
	"github.com/txpersister/txpersister/services/converter/internal/convert"
	"github.com/txpersister/txpersister/services/converter/internal/readiness"
	"github.com/txpersister/txpersister/services/converter/internal/store"
	"github.com/txpersister/txpersister/services/converter/internal/worker"
	"github.com/txpersister/txpersister/services/converter/schema"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { service.Main("converter", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.Log, "converter")
	migrate := func(ctx context.Context) error { return schema.Migrate(ctx, cfg.DatabaseURL, log) }
	if handled, err := service.Command(ctx, "converter", args, migrate, cfg.AdminAddr); handled {
		return err
	}
	topo := amqpx.DefaultTopology()
	topo.RetryDelays, topo.WaitDelay = cfg.RetryDelays, cfg.PendingRetry
	if err := topo.Validate(); err != nil {
		return fmt.Errorf("RETRY_DELAYS: %w", err)
	}

	log.InfoContext(ctx, "starting", "version", version, "config", cfg)
	base, err := service.Start(ctx, log, service.Config{
		Name: "converter", Version: version, DatabaseURL: cfg.DatabaseURL, DBMaxConns: cfg.DBMaxConns, Migrate: schema.Migrate,
	})
	if err != nil {
		return err
	}
	defer base.Close(ctx)
	st, metrics := store.New(base.Pool), base.Metrics
	rates, err := newRates(cfg, metrics)
	if err != nil {
		return err
	}
	if err := checkTarget(ctx, rates, cfg, log); err != nil {
		return err
	}

	conn, err := service.DialBroker(ctx, cfg.AMQPURL, "txpersister-converter", topo, log, "waiting")
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
	saver := st.Batched(batch.Config{Flushers: 2, MaxSize: cfg.Prefetch, Timeout: 10 * time.Second})
	defer saver.Close()
	w := worker.New(convert.New(rates, saver, cfg.Target, cfg.Rule, time.Now), amqpx.NewRetrier(pub, topo), topo, log, metrics, time.Now,
		worker.WithItemConcurrency(cfg.Concurrency))
	consumer := amqpx.NewConsumer(conn, topo.Queue, cfg.Prefetch,
		amqpx.WithConcurrency(cfg.Concurrency), amqpx.WithConsumerLogger(log), amqpx.WithConsumerTag("txpersister-converter"),
		// One cumulative ack for many messages instead of a frame each; an
		// ack lost with the process is a redelivery, which changes nothing.
		amqpx.WithBatchedAcks(max(cfg.Prefetch/4, 2), 5*time.Millisecond))

	adminServer := admin.NewServer(cfg.AdminAddr, metrics, readyCheck(st, conn, consumer, rates, cfg, topo), admin.WithPprof(cfg.Pprof))
	return service.Run(ctx, log, []*http.Server{adminServer}, func(ctx context.Context) error {
		log.InfoContext(ctx, "consuming", "queue", topo.Queue, "prefetch", cfg.Prefetch, "concurrency", cfg.Concurrency, "target", cfg.Target.Code(),
			"rate_rule", string(cfg.Rule.Kind))
		return consumer.Run(ctx, w.Handle)
	})
}

// newRates is the rates provider's client, traced and measured.
func newRates(cfg config.Config, metrics *telemetry.Metrics) (*ratesclient.Client, error) {
	rates, err := ratesclient.New(ratesclient.Config{
		BaseURL:  cfg.RatesURL,
		Provider: cfg.RatesProvider,
		Timeout:  cfg.RatesTimeout,
		Calendar: cfg.Rule.Publication.Zone,
		// A transaction that waited for its day's rate comes back after
		// RATES_PENDING_RETRY: the answer that made it wait must be asked
		// again by then.
		ProvisionalTTL: min(ratesclient.DefaultProvisionalTTL, cfg.PendingRetry/2),
		// The client span is named by the method alone, as OpenTelemetry's
		// HTTP conventions say for a client without a route template.
		HTTPClient: &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method }))},
		Observer: newRatesObserver(metrics, cfg.RatesProvider),
	})
	if err != nil {
		return nil, fmt.Errorf("rates client: %w", err)
	}
	return rates, nil
}

// readyCheck is the converter's readiness: PostgreSQL answers, the broker
// is connected and consumed, and the provider answers its latest quotes
// (asked at most every few seconds, however often the probe comes). Its
// error names the dependency that fails.
func readyCheck(st *store.Store, conn *amqpx.Conn, consumer *amqpx.Consumer, rates *ratesclient.Client, cfg config.Config, topo amqpx.Topology) func(context.Context) error {
	ratesReady := readiness.Cached(func(ctx context.Context) error { return rates.Check(ctx, cfg.Target.Code()) }, 5*time.Second, time.Now)
	return func(ctx context.Context) error {
		if err := st.Ping(ctx); err != nil {
			return fmt.Errorf("PostgreSQL: %w", err)
		}
		if !conn.Ready() {
			return fmt.Errorf("RabbitMQ: connection down")
		}
		if !consumer.Consuming() {
			return fmt.Errorf("RabbitMQ: not consuming %s", topo.Queue)
		}
		if err := ratesReady(ctx); err != nil {
			return fmt.Errorf("rates provider: %w", err)
		}
		return nil
	}
}

// checkTarget asks the provider, once, for its latest euro quotes: a
// TARGET_CURRENCY it does not quote stops the converter here, since no
// transaction could ever be converted to it. A provider that does not
// answer now is an outage, not a configuration error: the converter starts
// and reports it through /readyz and its metrics.
func checkTarget(ctx context.Context, rates *ratesclient.Client, cfg config.Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.RatesTimeout)
	defer cancel()
	err := rates.Check(ctx, cfg.Target.Code())
	switch {
	case errors.Is(err, ratesclient.ErrNotFound):
		return fmt.Errorf("TARGET_CURRENCY %s: the rates provider (%s at %s) does not quote it: %w",
			cfg.Target.Code(), cfg.RatesProvider, envconfig.Redact(cfg.RatesURL), err)
	case err != nil:
		log.WarnContext(ctx, "the rates provider does not answer as it should yet; converting waits for it", "err", err)
	}
	return nil
}

// ratesObserver counts the rates client's calls and cache use.
type ratesObserver struct {
	calls    map[string]*vm.Counter // by outcome
	duration *vm.PrometheusHistogram
	hits     *vm.Counter
	misses   *vm.Counter
}

// newRatesObserver returns a ratesObserver for provider, whose series
// exist at zero from the start, so the provider's error ratio and cache
// hit ratio are zero, not absent, until the first call.
func newRatesObserver(m *telemetry.Metrics, provider string) ratesObserver {
	o := ratesObserver{
		calls:    map[string]*vm.Counter{},
		duration: m.Histogram(telemetry.MetricName("rates_request_duration_seconds", "provider", provider), telemetry.LatencyBuckets()),
		hits:     m.Counter("rates_cache_hits_total"),
		misses:   m.Counter("rates_cache_misses_total"),
	}
	for _, outcome := range ratesclient.Outcomes() {
		o.calls[outcome] = m.Counter(telemetry.MetricName("rates_requests_total", "provider", provider, "outcome", outcome))
	}
	return o
}

// ObserveCall counts a call by its outcome (ratesclient.Outcome): ok,
// not_found (the provider says it has no such rate: a healthy answer, kept
// out of its error ratio), or one of the errors: rejected (a 4xx that is
// not its "not found": a misconfiguration), bad_answer, unavailable.
func (o ratesObserver) ObserveCall(_ string, d time.Duration, err error) {
	o.calls[ratesclient.Outcome(err)].Inc()
	o.duration.Update(d.Seconds())
}

func (o ratesObserver) ObserveCacheHit(hit bool) {
	if hit {
		o.hits.Inc()
	} else {
		o.misses.Inc()
	}
}
