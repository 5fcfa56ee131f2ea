// Package config reads the api's configuration from environment variables.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/txpersister/txpersister/libs/telemetry"
)

// Config is the api's configuration. Every field has a default that works
// on a developer's machine with PostgreSQL and RabbitMQ on localhost.
type Config struct {
	DatabaseURL string // DATABASE_URL
	AMQPURL     string // AMQP_URL
	HTTPAddr    string // HTTP_ADDR: the public API
	AdminAddr   string // ADMIN_ADDR: health, readiness, metrics, pprof
	Log         telemetry.LogConfig

	DBMaxConns      int           // DB_MAX_CONNS: the pool's size
	RequestTimeout  time.Duration // REQUEST_TIMEOUT: the most a request may wait for PostgreSQL
	RelayBatchSize  int           // OUTBOX_BATCH_SIZE: outbox entries published per confirm round
	RelayPollPeriod time.Duration // OUTBOX_POLL_INTERVAL: how often the relay looks without a notification
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
	e := env{getenv: getenv}
	c := Config{
		DatabaseURL:     e.url("DATABASE_URL", DefaultDatabaseURL, "postgres", "postgresql"),
		AMQPURL:         e.url("AMQP_URL", DefaultAMQPURL, "amqp", "amqps"),
		HTTPAddr:        e.str("HTTP_ADDR", ":8080"),
		AdminAddr:       e.str("ADMIN_ADDR", ":8081"),
		DBMaxConns:      e.int("DB_MAX_CONNS", 16, 1, 1000),
		RequestTimeout:  e.duration("REQUEST_TIMEOUT", 5*time.Second),
		RelayBatchSize:  e.int("OUTBOX_BATCH_SIZE", 500, 1, 10000),
		RelayPollPeriod: e.duration("OUTBOX_POLL_INTERVAL", time.Second),
	}
	var err error
	if c.Log, err = telemetry.ParseLogConfig(getenv("LOG_LEVEL"), getenv("LOG_FORMAT")); err != nil {
		e.errs = append(e.errs, err)
	}
	if err := errors.Join(e.errs...); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	return c, nil
}

// LogValue is the configuration as it is logged at start: passwords in
// URLs are masked.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("DATABASE_URL", Redact(c.DatabaseURL)),
		slog.String("AMQP_URL", Redact(c.AMQPURL)),
		slog.String("HTTP_ADDR", c.HTTPAddr),
		slog.String("ADMIN_ADDR", c.AdminAddr),
		slog.String("LOG_LEVEL", c.Log.Level),
		slog.String("LOG_FORMAT", c.Log.Format),
		slog.Int("DB_MAX_CONNS", c.DBMaxConns),
		slog.Duration("REQUEST_TIMEOUT", c.RequestTimeout),
		slog.Int("OUTBOX_BATCH_SIZE", c.RelayBatchSize),
		slog.Duration("OUTBOX_POLL_INTERVAL", c.RelayPollPeriod),
	)
}

// Redact returns raw with the password of its user info masked.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// env reads variables and collects what is wrong with them.
type env struct {
	getenv func(string) string
	errs   []error
}

func (e *env) str(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func (e *env) url(name, def string, schemes ...string) string {
	v := e.str(name, def)
	u, err := url.Parse(v)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("%s: not a URL", name))
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	e.errs = append(e.errs, fmt.Errorf("%s: scheme %q, want %v", name, u.Scheme, schemes))
	return v
}

func (e *env) int(name string, def, lo, hi int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not a whole number from %d to %d", name, v, lo, hi))
		return def
	}
	return n
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.errs = append(e.errs, fmt.Errorf("%s: %q is not a positive duration such as 500ms or 2s", name, v))
		return def
	}
	return d
}
