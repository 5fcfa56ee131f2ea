// Package txclient is a typed Go client for txpersister's HTTP API, the
// contract of services/api/openapi.yaml.
//
// Amounts and rates are decimal.Decimal, sent and read as decimal strings,
// never through a float. An error the API answers is a *Problem (errors.As).
// Network errors, 503 and 429 are retried, after the API's Retry-After when
// it gives one, within a RetryPolicy; a retried POST sends the very same
// body, so the same transaction_id, which the API makes safe: the stored
// transaction is answered again (200), never stored twice.
package txclient

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-resty/resty/v2"
)

// maxBodyBytes bounds an answer the client reads: a page of 500
// transactions or a batch of 1,000 results is well below.
const maxBodyBytes = 16 << 20

// RetryPolicy bounds the retries of one call. A call is retried on a
// network error, a 503 or a 429; every other answer is final.
type RetryPolicy struct {
	// MaxAttempts is the most requests one call makes, the first
	// included; 1 turns retries off. Default 5.
	MaxAttempts int
	// MaxElapsed bounds the time of one call, its waits included: a retry
	// that could not start within it is not made. Default 30 s.
	MaxElapsed time.Duration
	// BaseDelay is the first wait when the API gives no Retry-After
	// (network errors, mostly); each next wait doubles, with jitter, up to
	// MaxDelay. Defaults 100 ms and 5 s.
	BaseDelay time.Duration
	MaxDelay  time.Duration
}

// DefaultRetryPolicy is the policy New uses unless WithRetry says
// otherwise.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, MaxElapsed: 30 * time.Second, BaseDelay: 100 * time.Millisecond, MaxDelay: 5 * time.Second}
}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	http  *resty.Client
	retry RetryPolicy
	now   func() time.Time
	// sleep waits d or until ctx ends.
	sleep func(ctx context.Context, d time.Duration) error
}

// Option configures New.
type Option func(*config)

type config struct {
	apiKey string
	hc     *http.Client
	retry  RetryPolicy
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
}

// WithAPIKey sends key as "Authorization: Bearer <key>" with every request.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithHTTPClient makes the requests with (a copy of) hc, e.g. for its
// Transport or Timeout; by default a plain http.Client.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.hc = hc } }

// WithRetry replaces DefaultRetryPolicy; zero fields keep their default.
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// withClock replaces the clock and the wait between attempts, for tests.
func withClock(now func() time.Time, sleep func(context.Context, time.Duration) error) Option {
	return func(c *config) { c.now, c.sleep = now, sleep }
}

// New returns a client of the API at baseURL, e.g. "http://localhost:8080".
func New(baseURL string, opts ...Option) *Client {
	cfg := config{retry: DefaultRetryPolicy(), now: time.Now, sleep: sleepCtx}
	for _, o := range opts {
		o(&cfg)
	}
	def := DefaultRetryPolicy()
	if cfg.retry.MaxAttempts <= 0 {
		cfg.retry.MaxAttempts = def.MaxAttempts
	}
	if cfg.retry.MaxElapsed <= 0 {
		cfg.retry.MaxElapsed = def.MaxElapsed
	}
	if cfg.retry.BaseDelay <= 0 {
		cfg.retry.BaseDelay = def.BaseDelay
	}
	if cfg.retry.MaxDelay <= 0 {
		cfg.retry.MaxDelay = def.MaxDelay
	}
	// Copy the caller's client: resty fills in a nil Transport, and the
	// client is not ours to change.
	hc := &http.Client{}
	if cfg.hc != nil {
		cp := *cfg.hc
		hc = &cp
	}
	r := resty.NewWithClient(hc).
		SetBaseURL(baseURL).
		SetLogger(discardLogger{}).
		SetRetryCount(0). // retries are ours: same body, Retry-After, bounded
		SetResponseBodyLimit(maxBodyBytes).
		SetHeader("Accept", "application/json, application/problem+json")
	if cfg.apiKey != "" {
		r.SetAuthToken(cfg.apiKey)
	}
	return &Client{http: r, retry: cfg.retry, now: cfg.now, sleep: cfg.sleep}
}

// Create sends one transaction. created is true when this call stored it
// (201) and false when it was already stored with the same content (200),
// e.g. by an attempt whose answer was lost. An error the API answers is a
// *Problem: 409 (TypeConflict) when the id is taken by other content, 422
// (TypeInvalidFields) listing every invalid field.
func (c *Client) Create(ctx context.Context, tx Transaction) (res Resource, created bool, err error) {
	body, err := json.Marshal(tx)
	if err != nil {
		return Resource{}, false, fmt.Errorf("txclient: encode transaction %s: %w", tx.ID, err)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/transactions", nil, body)
	if err != nil {
		return Resource{}, false, err
	}
	if s := resp.StatusCode(); s != http.StatusCreated && s != http.StatusOK {
		return Resource{}, false, c.problemOf(resp)
	}
	if err := decode(resp, &res); err != nil {
		return Resource{}, false, err
	}
	return res, resp.StatusCode() == http.StatusCreated, nil
}

// CreateBatch sends 1 to 1,000 transactions in one request and returns
// each one's result, in order: one invalid transaction does not fail the
// others. The error is a *Problem when the request as a whole is refused.
func (c *Client) CreateBatch(ctx context.Context, txs []Transaction) ([]BatchResult, error) {
	body, err := json.Marshal(txs)
	if err != nil {
		return nil, fmt.Errorf("txclient: encode batch: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, "/v1/transactions/batch", nil, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode() != http.StatusOK {
		return nil, c.problemOf(resp)
	}
	var out struct {
		Results []struct {
			Status      int       `json:"status"`
			Transaction *Resource `json:"transaction"`
			Problem     *Problem  `json:"problem"`
		} `json:"results"`
	}
	if err := decode(resp, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != len(txs) {
		return nil, fmt.Errorf("txclient: batch of %d answered with %d results", len(txs), len(out.Results))
	}
	results := make([]BatchResult, len(out.Results))
	for i, r := range out.Results {
		results[i] = BatchResult{Status: r.Status, Resource: r.Transaction, Problem: r.Problem}
	}
	return results, nil
}

// Get reads a transaction and its conversion. An unknown id is a *Problem
// with Status 404 (TypeNotFound).
func (c *Client) Get(ctx context.Context, id string) (Resource, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/transactions/"+url.PathEscape(id), nil, nil)
	if err != nil {
		return Resource{}, err
	}
	if resp.StatusCode() != http.StatusOK {
		return Resource{}, c.problemOf(resp)
	}
	var res Resource
	if err := decode(resp, &res); err != nil {
		return Resource{}, err
	}
	return res, nil
}

// List returns one page of transactions, newest first. A bad filter or
// cursor is a *Problem with Status 400 (TypeInvalidQuery).
func (c *Client) List(ctx context.Context, o ListOptions) (Page, error) {
	q := url.Values{}
	if o.UserID != "" {
		q.Set("user_id", o.UserID)
	}
	if o.Status != "" {
		q.Set("status", string(o.Status))
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Cursor != "" {
		q.Set("cursor", o.Cursor)
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/transactions", q, nil)
	if err != nil {
		return Page{}, err
	}
	if resp.StatusCode() != http.StatusOK {
		return Page{}, c.problemOf(resp)
	}
	var out struct {
		Items      []Resource `json:"items"`
		NextCursor *string    `json:"next_cursor"`
	}
	if err := decode(resp, &out); err != nil {
		return Page{}, err
	}
	p := Page{Items: out.Items}
	if out.NextCursor != nil {
		p.NextCursor = *out.NextCursor
	}
	return p, nil
}

// All lists every transaction that o selects, page after page from
// o.Cursor on, newest first. It stops at the first error, which it yields.
func (c *Client) All(ctx context.Context, o ListOptions) iter.Seq2[Resource, error] {
	return func(yield func(Resource, error) bool) {
		for {
			p, err := c.List(ctx, o)
			if err != nil {
				yield(Resource{}, err)
				return
			}
			for _, r := range p.Items {
				if !yield(r, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			o.Cursor = p.NextCursor
		}
	}
}

// do makes a request, retrying network errors, 503 and 429 within the
// policy. It returns the last answer, whatever its status, or the last
// network error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) (*resty.Response, error) {
	start := c.now()
	deadline := start.Add(c.retry.MaxElapsed)
	for attempt := 1; ; attempt++ {
		req := c.http.R().SetContext(ctx)
		if query != nil {
			req.SetQueryParamsFromValues(query)
		}
		if body != nil {
			// The same bytes on every attempt: the same transaction_id.
			req.SetHeader("Content-Type", "application/json").SetBody(body)
		}
		resp, err := req.Execute(method, path)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("txclient: %s %s: %w", method, path, ctx.Err())
			}
			err = fmt.Errorf("txclient: %s %s: %w", method, path, err)
			wait = c.backoff(attempt)
		case resp.StatusCode() == http.StatusServiceUnavailable || resp.StatusCode() == http.StatusTooManyRequests:
			var ok bool
			if wait, ok = retryAfter(resp.Header().Get("Retry-After"), c.now()); !ok {
				wait = c.backoff(attempt)
			}
		default:
			return resp, nil
		}
		if attempt >= c.retry.MaxAttempts || c.now().Add(wait).After(deadline) {
			if err != nil {
				return nil, err
			}
			return resp, nil
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("txclient: %s %s: waiting to retry: %w", method, path, err)
		}
	}
}

// backoff is the wait before attempt+1 when the API named none: BaseDelay
// doubled per attempt up to MaxDelay, between half of that and all of it.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay << min(attempt-1, 30)
	if d <= 0 || d > c.retry.MaxDelay {
		d = c.retry.MaxDelay
	}
	return d/2 + rand.N(d/2+1) //nolint:gosec // G404: jitter, not a secret
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(h); err == nil {
		return time.Duration(max(s, 0)) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// problemOf is the *Problem an error answer carries, or one made of its
// status when the body is no problem document.
func (c *Client) problemOf(resp *resty.Response) *Problem {
	p := &Problem{}
	if err := json.Unmarshal(resp.Body(), p); err != nil || p.Status == 0 {
		p = &Problem{Type: TypeBlank, Title: http.StatusText(resp.StatusCode()), Status: resp.StatusCode()}
	}
	// The status line is the truth; a body may be a proxy's.
	p.Status = resp.StatusCode()
	p.RetryAfter, _ = retryAfter(resp.Header().Get("Retry-After"), c.now())
	return p
}

// decode reads a JSON answer into v.
func decode(resp *resty.Response, v any) error {
	if err := json.Unmarshal(resp.Body(), v); err != nil {
		return fmt.Errorf("txclient: %s %s: answer %d is not the JSON expected: %w",
			resp.Request.Method, resp.Request.URL, resp.StatusCode(), err)
	}
	return nil
}

// discardLogger keeps resty quiet: the caller sees every error it needs.
type discardLogger struct{}

func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Debugf(string, ...any) {}
