// Package ratesclient asks an exchange-rate provider for the quotes of a
// calendar day against the euro, exactly as the provider published them
// (decimals taken from the JSON number text, never through a float), with
// a bounded cache, coalescing of identical concurrent asks, per-call
// timeouts and a few quick retries.
//
// The quotes are the ones the European Central Bank publishes: 1 EUR = q
// units of a currency. A caller converts with them itself, X to EUR as
// amount ÷ q(X) and X to T as amount × q(T) ÷ q(X) (txmodel.ConvertQuoted),
// so that the only rounding is its own: a provider's X→EUR rate is 1/q
// already rounded.
//
// Two providers are supported: Frankfurter v1 (the default; tools/ratesd
// serves the same API locally over the ECB's reference rates) and
// exchangerate-api v4, which only knows the latest rates.
//
// Every error returned by Client.Quotes wraps exactly one of ErrNotFound
// (permanent: the provider itself says it has no such quote) or
// ErrUnavailable (transient: ask again later); ErrRejected and ErrBadAnswer
// say more about some of the latter.
package ratesclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"golang.org/x/sync/singleflight"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// Base is the currency every quote is against.
const Base = "EUR"

// Quotes is one answer of a provider: how many units of each currency one
// euro bought on a business day, as published.
type Quotes struct {
	// Provider is the provider's name (ProviderFrankfurter, ...).
	Provider string
	// Asked is the calendar day asked for, at UTC midnight.
	Asked time.Time
	// Date is the business day the provider answered for, at UTC midnight:
	// the day asked, or the closest earlier business day (a weekend, a
	// holiday, a day not published yet), or, from a provider that only
	// knows the latest rates, possibly a later day.
	Date time.Time
	// Rates holds the quote of each currency asked for, by code; never Base.
	Rates map[string]Quote
	// Final reports whether the answer can no longer change: it is dated
	// the day asked, or later, or the day asked is over in the provider's
	// calendar (Config.Calendar), so the provider will publish nothing more
	// for it. A provisional answer is cached only briefly.
	Final bool
}

// Quote is one currency's rate against Base: 1 Base = Value units.
type Quote struct {
	// Value is exact and positive.
	Value decimal.Decimal
	// Text is the number exactly as the provider wrote it.
	Text string
}

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
	DefaultTimeout        = 5 * time.Second
	DefaultRetries        = 2
	DefaultRetryBackoff   = 100 * time.Millisecond
	DefaultCacheSize      = 10000
	DefaultProvisionalTTL = 60 * time.Second
	// DefaultCalendar is the zone of the ECB's calendar: it publishes its
	// reference rates around 16:00 in Frankfurt.
	DefaultCalendar = "Europe/Berlin"

	maxRetries   = 10
	maxBackoff   = time.Second
	maxBodyBytes = 1 << 20
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
	// call. 0 means the default (2); a negative value disables retries.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles for each
	// further retry, capped at 1s, with a little jitter. Default 100ms.
	RetryBackoff time.Duration
	// CacheSize bounds the number of cached answers (least recently used are
	// evicted). Default 10000.
	CacheSize int
	// ProvisionalTTL is how long an answer that is not final is cached.
	// Default 60s.
	ProvisionalTTL time.Duration
	// Calendar is the zone of the provider's calendar: a day is over, and
	// an answer for it final, at the midnight that ends it there. Nil means
	// DefaultCalendar (Europe/Berlin, the ECB's), which needs the time
	// zone database (import time/tzdata in a binary that may run without
	// one).
	Calendar *time.Location
	// HTTPClient, when set, is used for the calls (copied, never modified), so
	// callers can plug an instrumented transport. Its own Timeout, if any,
	// applies on top of Timeout.
	HTTPClient *http.Client
	// Observer, when set, is told about every HTTP call and cache lookup.
	Observer Observer
	// Now, when set, replaces time.Now: it decides whether a day is over and
	// when cached provisional answers expire.
	Now func() time.Time
}

// Observer receives the client's measurements; the telemetry layer
// implements it. Its methods are called synchronously and must be cheap and
// safe for concurrent use.
type Observer interface {
	// ObserveCall is called after every HTTP call (every attempt) with the
	// provider name, how long it took and its error (nil on success; see
	// Outcome).
	ObserveCall(provider string, duration time.Duration, err error)
	// ObserveCacheHit is called once per Quotes lookup that consults the cache.
	ObserveCacheHit(hit bool)
}

// Client fetches quotes. It is safe for concurrent use.
type Client struct {
	provider       provider
	http           *http.Client
	timeout        time.Duration
	retries        int
	backoff        time.Duration
	provisionalTTL time.Duration
	calendar       *time.Location
	observer       Observer
	now            func() time.Time
	cache          *lruCache
	flights        singleflight.Group
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

	if cfg.Timeout < 0 || cfg.RetryBackoff < 0 || cfg.ProvisionalTTL < 0 || cfg.CacheSize < 0 {
		return nil, errors.New("ratesclient config: Timeout, RetryBackoff, ProvisionalTTL and CacheSize must not be negative")
	}
	if cfg.Retries > maxRetries {
		return nil, fmt.Errorf("ratesclient config: Retries %d is more than %d", cfg.Retries, maxRetries)
	}
	calendar := cfg.Calendar
	if calendar == nil {
		if calendar, err = time.LoadLocation(DefaultCalendar); err != nil {
			return nil, fmt.Errorf("ratesclient config: the default Calendar %s: %w (import time/tzdata, or set Calendar)", DefaultCalendar, err)
		}
	}
	c := &Client{
		provider:       p,
		timeout:        orDefault(cfg.Timeout, DefaultTimeout),
		retries:        cfg.Retries,
		backoff:        orDefault(cfg.RetryBackoff, DefaultRetryBackoff),
		provisionalTTL: orDefault(cfg.ProvisionalTTL, DefaultProvisionalTTL),
		calendar:       calendar,
		observer:       cfg.Observer,
		now:            cfg.Now,
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

	// A copy: the caller's client is not ours to change.
	c.http = &http.Client{}
	if cfg.HTTPClient != nil {
		cp := *cfg.HTTPClient
		c.http = &cp
	}
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Provider is the name of the provider the client asks.
func (c *Client) Provider() string { return c.provider.name() }

// Quotes returns the quotes against Base of codes published for the
// calendar day of day (its UTC year, month and day): that day's, or the
// closest earlier business day's. Codes are case-insensitive; Base among
// them is dropped (its quote is 1); at least one other is needed.
//
// The error wraps ErrNotFound or ErrUnavailable; when ctx ends first it also
// wraps ctx.Err().
func (c *Client) Quotes(ctx context.Context, day time.Time, codes ...string) (Quotes, error) {
	q := query{day: civilDay(day)}
	for _, code := range codes {
		code = strings.ToUpper(strings.TrimSpace(code))
		if !txmodel.IsCurrencyCode(code) {
			return Quotes{}, fmt.Errorf("%s: invalid currency code %q: %w", q, code, ErrNotFound)
		}
		if code != Base && !slices.Contains(q.codes, code) {
			q.codes = append(q.codes, code)
		}
	}
	if len(q.codes) == 0 {
		return Quotes{}, fmt.Errorf("%s: no currency but %s asked: %w", q, Base, ErrNotFound)
	}
	slices.Sort(q.codes)

	key := q.key()
	if a, ok := c.cache.get(key, c.now()); ok {
		c.observeCacheHit(true)
		return c.quotes(q, a), nil
	}
	c.observeCacheHit(false)

	// The flight runs on a context that keeps ctx's values (trace ids) but
	// not its cancellation, so that one caller giving up does not fail the
	// others waiting for the same answer; it is bounded by its own deadline.
	ch := c.flights.DoChan(key, func() (any, error) {
		flightCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flightBudget())
		defer cancel()
		if a, ok := c.cache.get(key, c.now()); ok {
			return a, nil
		}
		a, err := c.fetch(flightCtx, q)
		if err != nil {
			return answer{}, err
		}
		c.store(q, a)
		return a, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return Quotes{}, res.Err
		}
		return c.quotes(q, res.Val.(answer)), nil
	case <-ctx.Done():
		return Quotes{}, fmt.Errorf("%s: %w: %w", q, ErrUnavailable, ctx.Err())
	}
}

// Check asks the provider for its latest quotes against Base, uncached,
// and reports whether it answers them and quotes code among them (Base
// itself is always quoted): for a readiness probe, and for a check at
// start that the target currency can be converted to. It returns an error
// wrapping ErrNotFound when the provider answers but does not quote code,
// else one wrapping ErrUnavailable when it does not answer as it should
// (any 4xx there means a misconfiguration, and wraps ErrRejected).
func (c *Client) Check(ctx context.Context, code string) error {
	code = strings.ToUpper(strings.TrimSpace(code))
	if !txmodel.IsCurrencyCode(code) {
		return fmt.Errorf("check %s: invalid currency code %q: %w", c.provider.name(), code, ErrNotFound)
	}
	q := query{latest: true}
	a, err := c.attempt(ctx, q)
	if errors.Is(err, ErrNotFound) {
		// A provider that knows nothing of its latest euro quotes is not
		// the one the URL should name.
		return fmt.Errorf("check %s at %s: %v: %w", c.provider.name(), c.provider.url(q), err, ErrRejected) //nolint:errorlint // not found here is no verdict: only ErrRejected is wrapped
	}
	if err != nil {
		return fmt.Errorf("check %s at %s: %w", c.provider.name(), c.provider.url(q), err)
	}
	if _, ok := a.rates[code]; !ok && code != Base {
		return fmt.Errorf("check %s: its latest quotes (%s) hold none for %s: %w",
			c.provider.name(), a.date.Format(time.DateOnly), code, ErrNotFound)
	}
	return nil
}

// quotes is the answer a for q, final or not as of now.
func (c *Client) quotes(q query, a answer) Quotes {
	rates := make(map[string]Quote, len(q.codes))
	for _, code := range q.codes {
		rates[code] = a.rates[code]
	}
	return Quotes{
		Provider: c.provider.name(),
		Asked:    q.day,
		Date:     a.date,
		Rates:    rates,
		Final:    c.final(q.day, a.date),
	}
}

// final reports whether an answer dated answered for the day asked can no
// longer change.
func (c *Client) final(asked, answered time.Time) bool {
	return !answered.Before(asked) || c.over(asked)
}

// over reports whether day (a UTC-midnight calendar day) has ended in the
// provider's calendar by now.
func (c *Client) over(day time.Time) bool {
	y, m, d := day.Date()
	end := time.Date(y, m, d+1, 0, 0, 0, 0, c.calendar)
	return !c.now().Before(end)
}

func (c *Client) observeCacheHit(hit bool) {
	if c.observer != nil {
		c.observer.ObserveCacheHit(hit)
	}
}
