// Package config reads the converter's configuration from environment
// variables.
package config

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/txpersister/txpersister/libs/amqpx"
	"github.com/txpersister/txpersister/libs/ratesclient"
	"github.com/txpersister/txpersister/libs/service/envconfig"
	"github.com/txpersister/txpersister/libs/telemetry"
	"github.com/txpersister/txpersister/libs/txmodel"
	"github.com/txpersister/txpersister/services/converter/internal/raterule"
)

// Config is the converter's configuration. Every field has a default that
// works on a developer's machine.
type Config struct {
	DatabaseURL string // DATABASE_URL
	AMQPURL     string // AMQP_URL
	AdminAddr   string // ADMIN_ADDR: health, readiness, metrics, and pprof when PPROF
	Pprof       bool   // PPROF: serve /debug/pprof/ on the admin port
	Log         telemetry.LogConfig

	RatesURL      string        // RATES_API_URL
	RatesProvider string        // RATES_PROVIDER: frankfurter or exchangerate-api
	RatesTimeout  time.Duration // RATES_TIMEOUT: one call to the provider
	Target        txmodel.Currency

	// Rule chooses each transaction's rate: RATE_RULE (day or as-of),
	// RATES_PUBLISHED_AT (when and where the provider publishes; its zone
	// is the provider's calendar) and RATES_MAX_AGE_DAYS.
	Rule raterule.Rule
	// PendingRetry is how long a transaction whose rate is not final waits
	// before it is tried again: RATES_PENDING_RETRY.
	PendingRetry time.Duration

	DBMaxConns  int             // DB_MAX_CONNS
	Prefetch    int             // PREFETCH: unacked messages the broker may send ahead
	Concurrency int             // CONCURRENCY: messages converted at once
	RetryDelays []time.Duration // RETRY_DELAYS: waits between attempts while the provider is away
}

// Defaults of the configuration.
const (
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/txpersister?sslmode=disable"
	DefaultAMQPURL     = "amqp://guest:guest@127.0.0.1:5672/"
	DefaultRatesURL    = "http://127.0.0.1:8090/v1"
)

// Load reads the configuration through getenv; every bad variable is
// reported by name.
func Load(getenv func(string) string) (Config, error) {
	e := envconfig.NewEnv(getenv)
	c := Config{
		DatabaseURL:   e.URL("DATABASE_URL", DefaultDatabaseURL, "postgres", "postgresql"),
		AMQPURL:       e.URLs("AMQP_URL", DefaultAMQPURL, "amqp", "amqps"),
		AdminAddr:     e.String("ADMIN_ADDR", ":8082"),
		Pprof:         e.Bool("PPROF", false),
		Log:           e.Log(),
		RatesURL:      e.URL("RATES_API_URL", DefaultRatesURL, "http", "https"),
		RatesProvider: e.String("RATES_PROVIDER", ratesclient.ProviderFrankfurter),
		RatesTimeout:  e.Duration("RATES_TIMEOUT", 5*time.Second),
		DBMaxConns:    e.Int("DB_MAX_CONNS", 16, 1, 1000),
		// A wide window: each message waits for a shared commit, so the
		// messages in flight bound the throughput (docs/PERFORMANCE.md).
		Prefetch:    e.Int("PREFETCH", 512, 1, 65535),
		Concurrency: e.Int("CONCURRENCY", 1024, 1, 4096),
		RetryDelays: e.Durations("RETRY_DELAYS", amqpx.DefaultRetryDelays()),
		// The ECB's longest gap between two publications is Easter's:
		// Thursday to Tuesday.
		Rule:         raterule.Rule{MaxAgeDays: e.Int("RATES_MAX_AGE_DAYS", 5, 0, 3660)},
		PendingRetry: e.Duration("RATES_PENDING_RETRY", amqpx.DefaultWaitDelay),
	}
	rule := e.String("RATE_RULE", string(txmodel.RateRuleDay))
	if kind, ok := txmodel.ParseRateRule(rule); ok {
		c.Rule.Kind = kind
	} else {
		e.Fail("RATE_RULE", "%q is not %s or %s", rule, txmodel.RateRuleDay, txmodel.RateRuleAsOf)
	}
	pub, err := raterule.ParsePublication(e.String("RATES_PUBLISHED_AT", raterule.DefaultPublication))
	if err != nil {
		e.Fail("RATES_PUBLISHED_AT", "%v", err)
	}
	c.Rule.Publication = pub
	if d := c.PendingRetry; d < time.Second || d%time.Millisecond != 0 {
		e.Fail("RATES_PENDING_RETRY", "%s: want at least 1s, in whole milliseconds", d)
	}
	if p := c.RatesProvider; p != ratesclient.ProviderFrankfurter && p != ratesclient.ProviderExchangeRateAPI {
		e.Fail("RATES_PROVIDER", "%q is not %s or %s", p, ratesclient.ProviderFrankfurter, ratesclient.ProviderExchangeRateAPI)
	}
	target, err := txmodel.LookupCurrency(e.String("TARGET_CURRENCY", "EUR"))
	if err != nil {
		e.Fail("TARGET_CURRENCY", "%v", err)
	}
	c.Target = target
	if err := e.Err(); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// LogValue is the configuration as logged at start, passwords masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("DATABASE_URL", envconfig.Redact(c.DatabaseURL)),
		slog.String("AMQP_URL", envconfig.RedactList(c.AMQPURL)),
		slog.String("ADMIN_ADDR", c.AdminAddr),
		slog.Bool("PPROF", c.Pprof),
		slog.String("LOG_LEVEL", c.Log.Level),
		slog.String("LOG_FORMAT", c.Log.Format),
		slog.String("RATES_API_URL", envconfig.Redact(c.RatesURL)),
		slog.String("RATES_PROVIDER", c.RatesProvider),
		slog.Duration("RATES_TIMEOUT", c.RatesTimeout),
		slog.String("TARGET_CURRENCY", c.Target.Code()),
		slog.String("RATE_RULE", string(c.Rule.Kind)),
		slog.String("RATES_PUBLISHED_AT", c.Rule.Publication.String()),
		slog.Int("RATES_MAX_AGE_DAYS", c.Rule.MaxAgeDays),
		slog.Duration("RATES_PENDING_RETRY", c.PendingRetry),
		slog.Int("DB_MAX_CONNS", c.DBMaxConns),
		slog.Int("PREFETCH", c.Prefetch),
		slog.Int("CONCURRENCY", c.Concurrency),
		slog.Any("RETRY_DELAYS", c.RetryDelays),
	)
}
