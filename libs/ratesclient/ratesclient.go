// Package ratesclient asks an exchange-rate provider for the rate between two
// currencies on a calendar day, exactly (decimals parsed from the JSON number
// text, never through a float), with a bounded cache, coalescing of identical
// concurrent asks, per-call timeouts and a few quick retries.
//
// Two providers are supported: Frankfurter v1 (the default; tools/ratesd
// serves the same API locally over the ECB's reference rates) and
// exchangerate-api v4, which only knows the latest rates.
//
// Every error returned by Client.Rate wraps exactly one of ErrNotFound
// (permanent: do not retry) or ErrUnavailable (transient: retry later).
package ratesclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/shopspring/decimal"
	"golang.org/x/sync/singleflight"
)

// Rate is one exchange rate: 1 From = Value To, as published for Date.
type Rate struct {
	// From and To are ISO 4217 codes, upper case.
	From, To string
	// Date is the business day the provider answered for, at UTC midnight.
	// It may be earlier than the day asked for (weekends, holidays) and, for
	// a provider that only knows the latest rates, later.
	Date time.Time
	// Value is exact, parsed from the JSON number text, never via a float.
	Value decimal.Decimal
}

// ErrNotFound is wrapped by errors that will not go away by asking again:
// the provider does not know the currency or the date (HTTP 4xx other than
// 429, the target currency missing from its answer, an invalid code).
var ErrNotFound = errors.New("not found")

// ErrUnavailable is wrapped by errors that may go away by asking again later:
// the provider is unreachable, timed out, answered 5xx or 429, or answered
// something that is not a usable rate.
var ErrUnavailable = errors.New("rate provider unavailable")

// Provider names accepted in Config.Provider.
const (
	// ProviderFrankfurter is the Frankfurter v1 API (also served by tools/ratesd).
	ProviderFrankfurter = "frankfurter"
	// ProviderExchangeRateAPI is the exchangerate-api.com v4 API, which only
	// has the latest rates: it is used for every date.
	ProviderExchangeRateAPI = "exchangerate-api"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultRetries      = 2
	DefaultRetryBackoff = 100 * time.Millisecond
	DefaultCacheSize    = 10000
	DefaultLatestTTL    = 60 * time.Second

	maxRetries     = 10
	maxBackoff     = time.Second
	maxBodyBytes   = 1 << 20
	recentPastDays = 7
)

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// BaseURL is the provider's API root, e.g. http://127.0.0.1:8090/v1
	// (Frankfurter or ratesd) or https://api.exchangerate-api.com/v4.
	BaseURL string
	// Provider is ProviderFrankfurter (default) or ProviderExchangeRateAPI.
	Provider string
	// Timeout bounds each HTTP call (each attempt). Default 5s.
	Timeout time.Duration
	// Retries is how many times a transient failure is retried within one
	// call to Rate. 0 means the default (2); a negative value disables retries.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles for each
	// further retry, capped at 1s, with a little jitter. Default 100ms.
	RetryBackoff time.Duration
	// CacheSize bounds the number of cached rates (least recently used are
	// evicted). Default 10000.
	CacheSize int
	// LatestTTL is how long an answer for "latest" is cached. Default 60s.
	LatestTTL time.Duration
	// HTTPClient, when set, is used for the calls (copied, never modified), so
	// callers can plug an instrumented transport. Its own Timeout, if any,
	// applies on top of Timeout.
	HTTPClient *http.Client
	// Observer, when set, is told about every HTTP call and cache lookup.
	Observer Observer
	// Now, when set, replaces time.Now: it decides which dates are "today or
	// later" (asked as latest) and when cached latest rates expire.
	Now func() time.Time
}

// Observer receives the client's measurements; the telemetry layer
// implements it. Its methods are called synchronously and must be cheap and
// safe for concurrent use.
type Observer interface {
	// ObserveCall is called after every HTTP call (every attempt) with the
	// provider name, how long it took and its error (nil on success).
	ObserveCall(provider string, duration time.Duration, err error)
	// ObserveCacheHit is called once per Rate lookup that consults the cache.
	ObserveCacheHit(hit bool)
}

// Client fetches exchange rates. It is safe for concurrent use.
type Client struct {
	provider  provider
	http      *resty.Client
	timeout   time.Duration
	retries   int
	backoff   time.Duration
	latestTTL time.Duration
	observer  Observer
	now       func() time.Time
	cache     *lruCache
	flights   singleflight.Group
}

// New validates cfg, applies defaults and returns a Client.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("ratesclient config: BaseURL is required")
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("ratesclient config: BaseURL %q: %w", cfg.BaseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ratesclient config: BaseURL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ratesclient config: BaseURL %q must not have a query or fragment", cfg.BaseURL)
	}
	base := strings.TrimRight(cfg.BaseURL, "/")

	var p provider
	switch cfg.Provider {
	case "", ProviderFrankfurter:
		p = frankfurter{base: base}
	case ProviderExchangeRateAPI:
		p = exchangeRateAPI{base: base}
	default:
		return nil, fmt.Errorf("ratesclient config: unknown Provider %q (want %q or %q)",
			cfg.Provider, ProviderFrankfurter, ProviderExchangeRateAPI)
	}

	if cfg.Timeout < 0 || cfg.RetryBackoff < 0 || cfg.LatestTTL < 0 || cfg.CacheSize < 0 {
		return nil, errors.New("ratesclient config: Timeout, RetryBackoff, LatestTTL and CacheSize must not be negative")
	}
	if cfg.Retries > maxRetries {
		return nil, fmt.Errorf("ratesclient config: Retries %d is more than %d", cfg.Retries, maxRetries)
	}
	c := &Client{
		provider:  p,
		timeout:   orDefault(cfg.Timeout, DefaultTimeout),
		retries:   cfg.Retries,
		backoff:   orDefault(cfg.RetryBackoff, DefaultRetryBackoff),
		latestTTL: orDefault(cfg.LatestTTL, DefaultLatestTTL),
		observer:  cfg.Observer,
		now:       cfg.Now,
	}
	switch {
	case cfg.Retries == 0:
		c.retries = DefaultRetries
	case cfg.Retries < 0:
		c.retries = 0
	}
	size := cfg.CacheSize
	if size == 0 {
		size = DefaultCacheSize
	}
	c.cache = newLRUCache(size)
	if c.now == nil {
		c.now = time.Now
	}

	// Copy the caller's client: resty fills in a nil Transport and we must
	// not change an object we do not own.
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		cp := *cfg.HTTPClient
		hc = &cp
	}
	c.http = resty.NewWithClient(hc).
		SetLogger(discardLogger{}).
		SetRetryCount(0).
		SetResponseBodyLimit(maxBodyBytes).
		SetHeader("Accept", "application/json")
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Rate returns the rate of 1 from in to, as published for the calendar day
// of date (its UTC year, month and day). A day that is today or later (UTC)
// is asked as "latest". Codes are case-insensitive; from == to answers 1
// without asking the provider.
//
// The error wraps ErrNotFound or ErrUnavailable; when ctx ends first it also
// wraps ctx.Err().
func (c *Client) Rate(ctx context.Context, from, to string, date time.Time) (Rate, error) {
	from, to = strings.ToUpper(strings.TrimSpace(from)), strings.ToUpper(strings.TrimSpace(to))
	day := civilDay(date)
	latest := !day.Before(civilDay(c.now()))
	q := query{from: from, to: to, day: day, latest: latest || !c.provider.dated()}

	for _, code := range []string{from, to} {
		if !validCode(code) {
			return Rate{}, fmt.Errorf("%s: invalid currency code %q: %w", q, code, ErrNotFound)
		}
	}
	if from == to {
		return Rate{From: from, To: to, Date: day, Value: decimal.NewFromInt(1)}, nil
	}

	key := q.key()
	if r, ok := c.cache.get(key, c.now()); ok {
		c.observeCacheHit(true)
		return r, nil
	}
	c.observeCacheHit(false)

	// The flight runs on a context that keeps ctx's values (trace ids) but
	// not its cancellation, so that one caller giving up does not fail the
	// others waiting for the same answer; it is bounded by its own deadline.
	ch := c.flights.DoChan(key, func() (any, error) {
		flightCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flightBudget())
		defer cancel()
		if r, ok := c.cache.get(key, c.now()); ok {
			return r, nil
		}
		r, err := c.fetch(flightCtx, q)
		if err != nil {
			return Rate{}, err
		}
		c.store(q, r)
		return r, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Rate{}, res.Err
		}
		return res.Val.(Rate), nil
	case <-ctx.Done():
		return Rate{}, fmt.Errorf("%s: %w: %w", q, ErrUnavailable, ctx.Err())
	}
}

// flightBudget is the most one fetch can take: every attempt times out and
// every backoff is at most maxBackoff.
func (c *Client) flightBudget() time.Duration {
	return time.Duration(c.retries+1)*c.timeout + time.Duration(c.retries)*maxBackoff
}

// store caches r. A past day's rate never changes, except that a provider
// may not have published a day yet: a recent day answered with an earlier
// date is therefore kept only as long as a latest rate.
func (c *Client) store(q query, r Rate) {
	now := c.now()
	if q.latest {
		c.cache.add(q.key(), r, now.Add(c.latestTTL))
		return
	}
	if r.Date.Before(q.day) && civilDay(now).Sub(q.day) <= recentPastDays*24*time.Hour {
		c.cache.add(q.key(), r, now.Add(c.latestTTL))
		return
	}
	c.cache.add(q.key(), r, time.Time{})
}

// fetch asks the provider, retrying transient failures with backoff.
func (c *Client) fetch(ctx context.Context, q query) (Rate, error) {
	var err error
	for attempt := 0; ; attempt++ {
		var r Rate
		r, err = c.attempt(ctx, q)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ErrUnavailable) || attempt >= c.retries {
			break
		}
		wait := c.backoff << attempt
		if wait > maxBackoff || wait <= 0 {
			wait = maxBackoff
		}
		wait += rand.N(wait/5 + 1) //nolint:gosec // G404: jitter, so many clients do not retry in step; not a secret
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Rate{}, err
		case <-t.C:
		}
	}
	if errors.Is(err, ErrUnavailable) && c.retries > 0 {
		return Rate{}, fmt.Errorf("after %d attempts: %w", c.retries+1, err)
	}
	return Rate{}, err
}

// attempt makes one HTTP call and turns its outcome into a Rate or an error
// wrapping ErrNotFound or ErrUnavailable.
func (c *Client) attempt(ctx context.Context, q query) (Rate, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.http.R().SetContext(ctx).Get(c.provider.url(q))
	if err == nil {
		err = checkStatus(c.provider.name(), resp)
	}
	var r Rate
	if err == nil {
		r, err = c.provider.parse(q, resp.Body())
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", q, err)
	}
	if c.observer != nil {
		c.observer.ObserveCall(c.provider.name(), time.Since(start), err)
	}
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable) {
		// Transport errors: refused, reset, timeout, body too large.
		err = fmt.Errorf("%w: %w", err, ErrUnavailable)
	}
	return r, err
}

// checkStatus maps an HTTP status to nil, ErrNotFound or ErrUnavailable.
func checkStatus(provider string, resp *resty.Response) error {
	code := resp.StatusCode()
	switch {
	case code == http.StatusOK:
		return nil
	case code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%s answered %s: %w", provider, resp.Status(), ErrUnavailable)
	case code >= 400:
		return fmt.Errorf("%s answered %s (unknown currency or date): %s: %w",
			provider, resp.Status(), snippet(resp.Body()), ErrNotFound)
	default:
		return fmt.Errorf("%s answered unexpected %s: %w", provider, resp.Status(), ErrUnavailable)
	}
}

// snippet is a short one-line excerpt of a response body for messages.
func snippet(b []byte) string {
	const max = 120
	s := strings.Join(strings.Fields(string(b)), " ")
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}

func (c *Client) observeCacheHit(hit bool) {
	if c.observer != nil {
		c.observer.ObserveCacheHit(hit)
	}
}

// query is one question to a provider.
type query struct {
	from, to string
	day      time.Time // calendar day asked, UTC midnight
	latest   bool      // ask for the latest rates instead of day
}

// key identifies the answer in the cache and among flights.
func (q query) key() string {
	if q.latest {
		return q.from + "/" + q.to + "/latest"
	}
	return q.from + "/" + q.to + "/" + q.day.Format(time.DateOnly)
}

// String is the prefix of every error message about q.
func (q query) String() string {
	s := fmt.Sprintf("rate %s->%s for %s", q.from, q.to, q.day.Format(time.DateOnly))
	if q.latest {
		s += " (latest)"
	}
	return s
}

// civilDay is t's UTC calendar day at midnight.
func civilDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// validCode reports whether s looks like an ISO 4217 code (three upper-case
// ASCII letters); whether the provider knows it is for the provider to say.
func validCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// discardLogger silences resty: every failure is returned to the caller.
type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}
