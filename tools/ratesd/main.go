// Command ratesd is a local exchange-rate server over the European Central
// Bank's euro reference rates, answering like Frankfurter v1
// (GET /v1/latest, /v1/{YYYY-MM-DD}, /v1/currencies) and like
// exchangerate-api v4 (GET /v4/latest/{BASE}), so that everything that needs
// rates runs with no internet.
//
// Usage:
//
//	ratesd               serve
//	ratesd healthcheck   exit 0 if the ratesd listening on RATESD_ADDR on this
//	                     machine answers GET /healthz with 2xx, else 1 (the
//	                     container image's HEALTHCHECK: it has no shell or curl)
//
// Configuration, from the environment:
//
//	RATESD_ADDR  listen address (default :8090)
//	ECB_SOURCE   ECB rates file: a path or an http(s) URL to
//	             eurofxref-hist.csv, eurofxref-hist.zip or one of the XML files;
//	             empty = a built-in table of 2024-09-02..2024-09-20
//	ECB_REFRESH  how often ECB_SOURCE is loaded again (default 1h for a URL,
//	             0 = never for a path); a failed load keeps the last good copy
//	LOG_LEVEL    debug, info (default), warn, error
//	LOG_FORMAT   json or text (default: text on a terminal, json otherwise)
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/txpersister/txpersister/libs/service/probe"
	"github.com/txpersister/txpersister/libs/service/server"
	"github.com/txpersister/txpersister/tools/ratesd/internal/ecb"
	"github.com/txpersister/txpersister/tools/ratesd/internal/httpapi"
	"github.com/txpersister/txpersister/tools/ratesd/internal/refresh"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args := os.Args[1:]; {
	case len(args) == 0:
		err = run(ctx, os.Getenv, os.Stderr, nil)
	case len(args) == 1 && args[0] == "healthcheck":
		err = healthcheck(ctx, os.Getenv)
	default:
		err = fmt.Errorf("unknown arguments %q (usage: ratesd [healthcheck])", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ratesd:", err)
		stop()
		os.Exit(1)
	}
}

// config is ratesd's configuration, read from the environment.
type config struct {
	Addr      string
	Source    string
	Refresh   time.Duration // 0: never
	LogLevel  slog.Level
	LogFormat string
}

// defaultRefresh is how often a source given by URL is loaded again: the
// ECB publishes once a business day, around 16:00 in Frankfurt.
const defaultRefresh = time.Hour

// loadConfig reads and validates the configuration; logOut decides the
// default log format (text on a terminal).
func loadConfig(getenv func(string) string, logOut io.Writer) (config, error) {
	cfg := config{
		Addr:      getenv("RATESD_ADDR"),
		Source:    strings.TrimSpace(getenv("ECB_SOURCE")),
		LogFormat: strings.ToLower(getenv("LOG_FORMAT")),
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8090"
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return config{}, fmt.Errorf("RATESD_ADDR %q: %w", cfg.Addr, err)
	}
	if isURL(cfg.Source) {
		cfg.Refresh = defaultRefresh
	}
	if v := strings.TrimSpace(getenv("ECB_REFRESH")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || (d > 0 && d < 100*time.Millisecond) {
			return config{}, fmt.Errorf("ECB_REFRESH %q: want a duration of at least 100ms, or 0 for never", v)
		}
		cfg.Refresh = d
	}
	if cfg.Source == "" {
		cfg.Refresh = 0 // the built-in table never changes
	}
	if lvl := getenv("LOG_LEVEL"); lvl != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(lvl)); err != nil {
			return config{}, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", lvl)
		}
	}
	switch cfg.LogFormat {
	case "":
		cfg.LogFormat = "json"
		if isTerminal(logOut) {
			cfg.LogFormat = "text"
		}
	case "json", "text":
	default:
		return config{}, fmt.Errorf("LOG_FORMAT %q: want json or text", cfg.LogFormat)
	}
	return cfg, nil
}

func isURL(s string) bool { return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// run loads the rates and serves them until ctx ends, then shuts down
// gracefully. When ready is not nil it receives the address listened on.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer, ready func(addr string)) error {
	cfg, err := loadConfig(getenv, logOut)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := newLogger(cfg, logOut)

	source := cfg.Source
	if source == "" {
		source = "built-in table"
	}
	log.Info("loading rates", slog.String("source", source), slog.Duration("refresh", cfg.Refresh))
	hc := &http.Client{Timeout: time.Minute}
	tables, err := refresh.New(ctx, func(ctx context.Context) (*ecb.Table, error) { return ecb.Load(ctx, cfg.Source, hc) },
		2*time.Minute, log, time.Now)
	if err != nil {
		return fmt.Errorf("load rates: %w", err)
	}
	table := tables.Table()
	log.Info("rates loaded",
		slog.String("source", source),
		slog.Int("days", table.Len()),
		slog.Int("currencies", len(table.Currencies())),
		slog.String("first", table.First().Date.Format(time.DateOnly)),
		slog.String("latest", table.Latest().Date.Format(time.DateOnly)))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           httpapi.New(tables.Table, tables.Status, log),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	if cfg.Refresh > 0 {
		go tables.Run(ctx, cfg.Refresh)
	}
	return server.Serve(ctx, srv, ln, log)
}

// healthcheck asks the ratesd listening on the configured address of this
// machine for GET /healthz and fails unless the answer is 2xx, with the
// services' probe (libs/service/probe, which needs only the standard
// library).
func healthcheck(ctx context.Context, getenv func(string) string) error {
	cfg, err := loadConfig(getenv, io.Discard)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return probe.Get(ctx, probe.LocalURL(cfg.Addr, "/healthz"))
}
