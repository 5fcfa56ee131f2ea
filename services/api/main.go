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
	"io"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/service"
	"github.com/txpersister/txpersister/libs/service/admin"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/config"
	"github.com/txpersister/txpersister/services/api/internal/httpapi"
	"github.com/txpersister/txpersister/services/api/internal/ingest"
	"github.com/txpersister/txpersister/services/api/internal/relay"
	"github.com/txpersister/txpersister/services/api/internal/store"
	"github.com/txpersister/txpersister/services/api/internal/sweep"
	"github.com/txpersister/txpersister/services/api/internal/webhooks"
	"github.com/txpersister/txpersister/services/api/schema"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() { service.Main("api", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(stderr, cfg.Log, "api")
	migrate := func(ctx context.Context) error { return schema.Migrate(ctx, cfg.DatabaseURL, log) }
	if handled, err := service.Command(ctx, "api", args, migrate, cfg.AdminAddr); handled {
		return err
	}
	if err := cfg.CheckAccess(); err != nil {
		return err
	}
	log.InfoContext(ctx, "starting", "version", version, "config", cfg)
	base, err := service.Start(ctx, log, service.Config{
		Name: "api", Version: version, DatabaseURL: cfg.DatabaseURL, DBMaxConns: cfg.DBMaxConns, Migrate: schema.Migrate,
	})
	if err != nil {
		return err
	}
	defer base.Close(ctx)
	st, metrics := store.New(base.Pool), base.Metrics

	topo := amqpx.DefaultTopology()
	rel := relay.New(st, relay.Config{
		Exchange:   topo.Exchange,
		RoutingKey: topo.RoutingKey,
		BatchSize:  cfg.RelayBatchSize,
		PollPeriod: cfg.RelayPollPeriod,
		MessageMax: cfg.MessageMax,
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
	wh := cfg.Webhooks
	policy := webhooks.NewPolicy(wh.AllowPrivate)
	if wh.AllowPrivate {
		log.WarnContext(ctx, "webhook endpoints may be private addresses (WEBHOOK_ALLOW_PRIVATE=true): for development only")
	}
	sender := webhooks.NewSender(st, webhooks.SenderConfig{
		Delays: wh.RetryDelays, Timeout: wh.Timeout, Concurrency: wh.Concurrency, PollPeriod: wh.PollPeriod,
		DisableAfter: wh.DisableAfter, Policy: policy, Retention: wh.Retention,
	}, log, metrics, time.Now)
	if cfg.AuthDisabled {
		log.WarnContext(ctx, "authentication is disabled (AUTH_DISABLED=true): every request is let in")
	}
	handler := httpapi.New(txs, log, metrics, time.Now, cfg.RequestTimeout,
		httpapi.WithAccess(httpapi.Access{
			Auth:      auth.NewAuthenticator(cfg.Keys, cfg.AuthDisabled),
			Tenants:   auth.Tenants(cfg.Keys),
			PerKey:    auth.NewLimiter(cfg.RateLimit, cfg.RateBurst),
			PerTenant: auth.NewLimiter(cfg.TenantLimit, cfg.TenantBurst),
			Failures:  auth.NewFailureLimiter(cfg.FailureLimit, cfg.FailureBurst),
		}),
		httpapi.WithIncomingBaggage(cfg.TrustBaggage),
		httpapi.WithInflightLimit(int64(cfg.InflightBytes), cfg.QueueWait),
		httpapi.WithWebhooks(webhooks.NewService(st, policy, time.Now, wh.SecretOverlap)),
		httpapi.WithOpenAPI(openAPISpec))
	public := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      httpapi.MaxWait + 15*time.Second, // a GET may wait MaxWait
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	adminServer := admin.NewServer(cfg.AdminAddr, metrics, st.Ping, admin.WithPprof(cfg.Pprof))
	sweeper := sweep.New(st, cfg.SweepPeriod, sweepLimit, log, metrics, sender.Wake)
	return service.Run(ctx, log, []*http.Server{public, adminServer},
		func(ctx context.Context) error { rel.WatchBacklog(ctx); return nil },
		func(ctx context.Context) error { sweeper.Run(ctx); return nil },
		func(ctx context.Context) error { sender.WatchBacklog(ctx, webhookBacklogPeriod); return nil },
		func(ctx context.Context) error {
			if wh.Send {
				sender.Run(ctx)
			}
			return nil
		},
		func(ctx context.Context) error {
			if wh.Send {
				sender.Prune(ctx, webhookPrunePeriod)
			}
			return nil
		},
		func(ctx context.Context) error { return runRelays(ctx, cfg, topo, rel, log) })
}

// webhookBacklogPeriod is how often the webhook backlog's gauges are
// read from the database.
const webhookBacklogPeriod = 5 * time.Second

// webhookPrunePeriod is how often messages past WEBHOOK_RETENTION are
// deleted.
const webhookPrunePeriod = time.Minute

// sweepLimit is how many entries of the status index one sweep round
// settles at most: a round's transaction stays short.
const sweepLimit = 10_000

// runRelays connects to RabbitMQ, retrying for as long as it takes (the
// API keeps accepting meanwhile: transactions wait in the outbox), and runs
// cfg.Relays relay loops, each publishing on its own channel.
func runRelays(ctx context.Context, cfg config.Config, topo amqpx.Topology, rel *relay.Relay, log *slog.Logger) error {
	conn, err := service.DialBroker(ctx, cfg.AMQPURL, "txpersister-api", topo, log, "transactions wait in the outbox")
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
