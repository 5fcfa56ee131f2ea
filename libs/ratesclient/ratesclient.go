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
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-resty/resty/v2"
	"github.com/shopspring/decimal"
	"golang.org/x/sync/singleflight"
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

// ErrNotFound is wrapped by errors that will not go away by asking again:
// the provider itself says it has no quote of the currency for the day
// (Frankfurter's JSON "not found" answer, exchangerate-api's
// "unsupported-code", a currency its answer does not hold), or a code is
// not a currency code at all.
var ErrNotFound = errors.New("not found")

// ErrUnavailable is wrapped by errors that may go away by asking again
// later: the provider is unreachable, timed out, answered 5xx or 429,
// refused the request (ErrRejected) or answered something that is not a
// usable answer (ErrBadAnswer).
var ErrUnavailable = errors.New("rate provider unavailable")

// ErrRejected is wrapped, with ErrUnavailable, when the provider answered
// a 4xx status that is not its own "not found": a wrong RATES_API_URL, a
// key it refuses, a proxy or gateway in between. It is retried like an
// outage and counted as an error, never taken as a verdict on a
// transaction.
var ErrRejected = fmt.Errorf("request rejected: %w", ErrUnavailable)

// ErrBadAnswer is wrapped, with ErrUnavailable, when the provider answered
// 200 with something that is not a usable answer: not the JSON asked for,
// another base or date than asked, a quote that is not a positive decimal
// within bounds. A provider that misbehaves so is treated as one that is
// down.
var ErrBadAnswer = fmt.Errorf("unusable answer: %w", ErrUnavailable)

// Outcome names the kind of a call's result, for metrics: "ok",
// "not_found", "rejected", "bad_answer" or "unavailable".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrBadAnswer):
		return "bad_answer"
	default:
		return "unavailable"
	}
}

// Outcomes lists every value Outcome returns.
func Outcomes() []string { return []string{"ok", "not_found", "rejected", "bad_answer", "unavailable"} }

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
	http           *resty.Client
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
		if !validCode(code) {
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
	if !validCode(code) {
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

// flightBudget is the most one fetch can take: every attempt times out and
// every backoff is at most maxBackoff.
func (c *Client) flightBudget() time.Duration {
	return time.Duration(c.retries+1)*c.timeout + time.Duration(c.retries)*maxBackoff
}

// store caches a: a final answer until it is evicted, a provisional one
// for ProvisionalTTL, so the cache never keeps a provisional answer as
// final.
func (c *Client) store(q query, a answer) {
	if c.final(q.day, a.date) {
		c.cache.add(q.key(), a, time.Time{})
		return
	}
	c.cache.add(q.key(), a, c.now().Add(c.provisionalTTL))
}

// fetch asks the provider, retrying transient failures with backoff.
func (c *Client) fetch(ctx context.Context, q query) (answer, error) {
	var err error
	for attempt := 0; ; attempt++ {
		var a answer
		a, err = c.attempt(ctx, q)
		if err == nil {
			return a, nil
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
			return answer{}, err
		case <-t.C:
		}
	}
	if errors.Is(err, ErrUnavailable) && c.retries > 0 {
		return answer{}, fmt.Errorf("after %d attempts: %w", c.retries+1, err)
	}
	return answer{}, err
}

// attempt makes one HTTP call and turns its outcome into an answer or an
// error wrapping ErrNotFound or ErrUnavailable.
func (c *Client) attempt(ctx context.Context, q query) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.http.R().SetContext(ctx).Get(c.provider.url(q))
	var a answer
	if err == nil {
		a, err = c.answer(q, resp)
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", q, err)
	}
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnavailable) {
		// Transport errors: refused, reset, timeout, body too large.
		err = fmt.Errorf("%w: %w", err, ErrUnavailable)
	}
	if c.observer != nil {
		c.observer.ObserveCall(c.provider.name(), time.Since(start), err)
	}
	return a, err
}

// answer turns a response into an answer, by its status: 200 is parsed by
// the provider, 429 and 5xx are an outage, a 4xx is the provider's "not
// found" only when the provider says so in its own words.
func (c *Client) answer(q query, resp *resty.Response) (answer, error) {
	name := c.provider.name()
	code := resp.StatusCode()
	switch {
	case code == http.StatusOK:
		return c.provider.parse(q, resp.Body())
	case code == http.StatusTooManyRequests || code >= 500:
		return answer{}, fmt.Errorf("%s answered %s: %w", name, resp.Status(), ErrUnavailable)
	case code >= 400 && c.provider.notFound(code, resp.Body()):
		return answer{}, fmt.Errorf("%s has no such quote (%s %s): %w", name, resp.Status(), snippet(resp.Body()), ErrNotFound)
	case code >= 400:
		return answer{}, fmt.Errorf("%s answered %s: %s: %w", name, resp.Status(), snippet(resp.Body()), ErrRejected)
	default:
		return answer{}, fmt.Errorf("%s answered unexpected %s: %w", name, resp.Status(), ErrBadAnswer)
	}
}

// snippet is a short one-line excerpt of a response body for messages,
// quoted, so that whatever the body holds stays text.
func snippet(b []byte) string {
	const limit = 120
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(empty body)"
	}
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "…"
	}
	return fmt.Sprintf("%q", s)
}

func (c *Client) observeCacheHit(hit bool) {
	if c.observer != nil {
		c.observer.ObserveCacheHit(hit)
	}
}

// query is one question to a provider.
type query struct {
	day    time.Time // calendar day asked, UTC midnight
	codes  []string  // sorted, without Base
	latest bool      // the latest quotes of every currency (Check)
}

// key identifies the answer in the cache and among flights.
func (q query) key() string {
	return q.day.Format(time.DateOnly) + "/" + strings.Join(q.codes, ",")
}

// String is the prefix of every error message about q.
func (q query) String() string {
	if q.latest {
		return "latest quotes"
	}
	return fmt.Sprintf("quotes of %s for %s", strings.Join(q.codes, ","), q.day.Format(time.DateOnly))
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
