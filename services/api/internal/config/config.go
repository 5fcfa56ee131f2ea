// Package config reads the api's configuration from environment variables.
package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/txpersister/txpersister/libs/service/envconfig"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/services/api/internal/auth"
	"github.com/txpersister/txpersister/services/api/internal/webhooks"
)

// Config is the api's configuration. Every field has a default that works
// on a developer's machine with PostgreSQL and RabbitMQ on localhost.
type Config struct {
	DatabaseURL string // DATABASE_URL
	AMQPURL     string // AMQP_URL
	HTTPAddr    string // HTTP_ADDR: the public API
	AdminAddr   string // ADMIN_ADDR: health, readiness, metrics, and pprof when PPROF
	Pprof       bool   // PPROF: serve /debug/pprof/ on the admin port
	Log         telemetry.LogConfig

	DBMaxConns      int           // DB_MAX_CONNS: the pool's size
	RequestTimeout  time.Duration // REQUEST_TIMEOUT: the most a request may wait for PostgreSQL
	RelayBatchSize  int           // OUTBOX_BATCH_SIZE: outbox entries published per confirm round
	RelayPollPeriod time.Duration // OUTBOX_POLL_INTERVAL: how often the relay looks without being woken
	SweepPeriod     time.Duration // STATUS_SWEEP_INTERVAL: how often the status index is swept of finished transactions
	Relays          int           // OUTBOX_RELAYS: relay loops, each with its own channel to the broker
	MessageMax      int           // OUTBOX_MESSAGE_MAX: transactions per AMQP message (1: one each, as before 0.4.0)

	BatchFlushers int           // INGEST_BATCH_FLUSHERS: inserts in flight at once
	BatchMax      int           // INGEST_BATCH_MAX: transactions per insert at most
	BatchWindow   time.Duration // INGEST_BATCH_WINDOW: how long an insert waits for company (0: never)

	InflightBytes int           // INGEST_INFLIGHT_BYTES: ingest request bodies held at once, in bytes
	QueueWait     time.Duration // INGEST_QUEUE_WAIT: how long a request beyond it waits for room before a 503 (0: none)

	Keys         []auth.Key // API_KEYS and API_KEYS_FILE: tenant:name:sha256-hex entries
	AuthDisabled bool       // AUTH_DISABLED: let every request in, on purpose, as the tenant "default"
	RateLimit    float64    // RATE_LIMIT: requests a second per key (0: none)
	RateBurst    int        // RATE_BURST: requests at once per key
	TenantLimit  float64    // TENANT_RATE_LIMIT: requests a second per tenant, all its keys together (0: none)
	TenantBurst  int        // TENANT_RATE_BURST: requests at once per tenant
	FailureLimit float64    // AUTH_FAILURE_RATE: failed authentications a second per client address (0: none)
	FailureBurst int        // AUTH_FAILURE_BURST: failed authentications at once per client address

	TrustBaggage bool // TRUST_INCOMING_BAGGAGE: keep the W3C baggage clients send

	Webhooks Webhooks
}

// Webhooks configures the webhooks' senders and endpoints.
type Webhooks struct {
	Send          bool            // WEBHOOK_SENDER: this instance sends webhooks (every instance may; they share the work)
	AllowPrivate  bool            // WEBHOOK_ALLOW_PRIVATE: let endpoints be private, loopback or link-local addresses (development)
	RetryDelays   []time.Duration // WEBHOOK_RETRY_DELAYS: the waits before each retry
	Timeout       time.Duration   // WEBHOOK_TIMEOUT: a 2xx within it is success
	Concurrency   int             // WEBHOOK_CONCURRENCY: attempts in flight at once, per instance
	PollPeriod    time.Duration   // WEBHOOK_POLL_INTERVAL: how often the sender looks without being woken
	DisableAfter  time.Duration   // WEBHOOK_DISABLE_AFTER: an endpoint failing for this long is disabled
	SecretOverlap time.Duration   // WEBHOOK_SECRET_OVERLAP: a rotated-out secret signs beside the new one for this long
	Retention     time.Duration   // WEBHOOK_RETENTION: messages with nothing left to send are kept this long
}

// Defaults of the configuration.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable"
	DefaultAMQPURL     = "amqp://guest:guest@127.0.0.1:5672/"
)

// Load reads the configuration through getenv (os.Getenv in production).
// A bad value is an error naming its variable; all bad values are reported
// at once.
func Load(getenv func(string) string) (Config, error) {
	e := envconfig.NewEnv(getenv)
	c := Config{
		DatabaseURL:     e.URL("DATABASE_URL", DefaultDatabaseURL, "postgres", "postgresql"),
		AMQPURL:         e.URLs("AMQP_URL", DefaultAMQPURL, "amqp", "amqps"),
		HTTPAddr:        e.String("HTTP_ADDR", ":8080"),
		AdminAddr:       e.String("ADMIN_ADDR", ":8081"),
		Pprof:           e.Bool("PPROF", false),
		Log:             e.Log(),
		DBMaxConns:      e.Int("DB_MAX_CONNS", 16, 1, 1000),
		RequestTimeout:  e.Duration("REQUEST_TIMEOUT", 5*time.Second),
		RelayBatchSize:  e.Int("OUTBOX_BATCH_SIZE", 500, 1, 10000),
		RelayPollPeriod: e.Duration("OUTBOX_POLL_INTERVAL", time.Second),
		SweepPeriod:     e.Duration("STATUS_SWEEP_INTERVAL", time.Second),
		Relays:          e.Int("OUTBOX_RELAYS", 2, 1, 64),
		MessageMax:      e.Int("OUTBOX_MESSAGE_MAX", 100, 1, 10000),
		BatchFlushers:   e.Int("INGEST_BATCH_FLUSHERS", 4, 1, 256),
		BatchMax:        e.Int("INGEST_BATCH_MAX", 500, 1, 10000),
		BatchWindow:     e.DurationOrZero("INGEST_BATCH_WINDOW", 0),
		InflightBytes:   e.Int("INGEST_INFLIGHT_BYTES", 2<<20, 1<<20, 1<<34),
		QueueWait:       e.DurationOrZero("INGEST_QUEUE_WAIT", time.Second),
		AuthDisabled:    e.Bool("AUTH_DISABLED", false),
		RateLimit:       e.Float("RATE_LIMIT", 10000, 0, 1e9),
		RateBurst:       e.Int("RATE_BURST", 20000, 1, 1e9),
		TenantLimit:     e.Float("TENANT_RATE_LIMIT", 0, 0, 1e9),
		TenantBurst:     e.Int("TENANT_RATE_BURST", 20000, 1, 1e9),
		FailureLimit:    e.Float("AUTH_FAILURE_RATE", 1, 0, 1e9),
		FailureBurst:    e.Int("AUTH_FAILURE_BURST", 20, 1, 1e9),
		TrustBaggage:    e.Bool("TRUST_INCOMING_BAGGAGE", false),
		Webhooks: Webhooks{
			Send:          e.Bool("WEBHOOK_SENDER", true),
			AllowPrivate:  e.Bool("WEBHOOK_ALLOW_PRIVATE", false),
			RetryDelays:   e.Durations("WEBHOOK_RETRY_DELAYS", webhooks.DefaultDelays()),
			Timeout:       e.Duration("WEBHOOK_TIMEOUT", 10*time.Second),
			Concurrency:   e.Int("WEBHOOK_CONCURRENCY", 32, 1, 1024),
			PollPeriod:    e.Duration("WEBHOOK_POLL_INTERVAL", time.Second),
			DisableAfter:  e.Duration("WEBHOOK_DISABLE_AFTER", 5*24*time.Hour),
			SecretOverlap: e.Duration("WEBHOOK_SECRET_OVERLAP", 24*time.Hour),
			Retention:     e.Duration("WEBHOOK_RETENTION", 30*24*time.Hour),
		},
	}
	c.Keys = loadKeys(e, getenv)
	if err := e.Err(); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// CheckAccess refuses to serve with no API key unless authentication is
// disabled on purpose. Only serving needs it: `api migrate` does not.
func (c Config) CheckAccess() error {
	if len(c.Keys) == 0 && !c.AuthDisabled {
		return fmt.Errorf("configuration: API_KEYS: no API key configured: set API_KEYS or API_KEYS_FILE, or AUTH_DISABLED=true to run without authentication on purpose")
	}
	return nil
}

// LogValue is the configuration as it is logged at start: every secret is
// masked (passwords in URLs, in their userinfo or their query), and the
// keys show as tenant:name only.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("DATABASE_URL", envconfig.Redact(c.DatabaseURL)),
		slog.String("AMQP_URL", envconfig.RedactList(c.AMQPURL)),
		slog.String("HTTP_ADDR", c.HTTPAddr),
		slog.String("ADMIN_ADDR", c.AdminAddr),
		slog.Bool("PPROF", c.Pprof),
		slog.String("LOG_LEVEL", c.Log.Level),
		slog.String("LOG_FORMAT", c.Log.Format),
		slog.Int("DB_MAX_CONNS", c.DBMaxConns),
		slog.Duration("REQUEST_TIMEOUT", c.RequestTimeout),
		slog.Int("OUTBOX_BATCH_SIZE", c.RelayBatchSize),
		slog.Duration("OUTBOX_POLL_INTERVAL", c.RelayPollPeriod),
		slog.Duration("STATUS_SWEEP_INTERVAL", c.SweepPeriod),
		slog.Int("OUTBOX_RELAYS", c.Relays),
		slog.Int("OUTBOX_MESSAGE_MAX", c.MessageMax),
		slog.Int("INGEST_BATCH_FLUSHERS", c.BatchFlushers),
		slog.Int("INGEST_BATCH_MAX", c.BatchMax),
		slog.Duration("INGEST_BATCH_WINDOW", c.BatchWindow),
		slog.Int("INGEST_INFLIGHT_BYTES", c.InflightBytes),
		slog.Duration("INGEST_QUEUE_WAIT", c.QueueWait),
		slog.Any("API_KEYS", keyNames(c.Keys)),
		slog.Bool("AUTH_DISABLED", c.AuthDisabled),
		slog.Float64("RATE_LIMIT", c.RateLimit),
		slog.Int("RATE_BURST", c.RateBurst),
		slog.Float64("TENANT_RATE_LIMIT", c.TenantLimit),
		slog.Int("TENANT_RATE_BURST", c.TenantBurst),
		slog.Float64("AUTH_FAILURE_RATE", c.FailureLimit),
		slog.Int("AUTH_FAILURE_BURST", c.FailureBurst),
		slog.Bool("TRUST_INCOMING_BAGGAGE", c.TrustBaggage),
		slog.Bool("WEBHOOK_SENDER", c.Webhooks.Send),
		slog.Bool("WEBHOOK_ALLOW_PRIVATE", c.Webhooks.AllowPrivate),
		slog.Any("WEBHOOK_RETRY_DELAYS", c.Webhooks.RetryDelays),
		slog.Duration("WEBHOOK_TIMEOUT", c.Webhooks.Timeout),
		slog.Int("WEBHOOK_CONCURRENCY", c.Webhooks.Concurrency),
		slog.Duration("WEBHOOK_POLL_INTERVAL", c.Webhooks.PollPeriod),
		slog.Duration("WEBHOOK_DISABLE_AFTER", c.Webhooks.DisableAfter),
		slog.Duration("WEBHOOK_SECRET_OVERLAP", c.Webhooks.SecretOverlap),
		slog.Duration("WEBHOOK_RETENTION", c.Webhooks.Retention),
	)
}

// loadKeys reads API_KEYS and the file API_KEYS_FILE names.
func loadKeys(e *envconfig.Env, getenv func(string) string) []auth.Key {
	var keys []auth.Key
	if v := getenv("API_KEYS"); v != "" {
		k, err := auth.ParseKeys(strings.NewReader(v))
		if err != nil {
			e.Fail("API_KEYS", "%v", err)
		}
		keys = append(keys, k...)
	}
	if path := getenv("API_KEYS_FILE"); path != "" {
		b, err := os.ReadFile(path) //nolint:gosec // G304: the operator names the file
		if err != nil {
			e.Fail("API_KEYS_FILE", "%v", err)
			return keys
		}
		k, err := auth.ParseKeys(bytes.NewReader(b))
		if err != nil {
			e.Fail("API_KEYS_FILE", "%v", err)
		}
		keys = append(keys, k...)
	}
	return keys
}

// keyNames are what the logs show of the keys: their tenants and names.
func keyNames(keys []auth.Key) []string {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Tenant + ":" + k.Name
	}
	return names
}
