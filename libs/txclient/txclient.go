// Package txclient is a typed Go client for txpersister's HTTP API, the
// contract of services/api/openapi.yaml.
//
// Amounts and rates are decimal.Decimal, sent and read as decimal strings,
// never through a float. An error the API answers is a *Problem (errors.As).
// Network errors, 503 and 429 are retried, after the API's Retry-After when
// it gives one, within a RetryPolicy; a retried POST sends the very same
// body, so the same transaction_id, which the API makes safe: the stored
// transaction is answered again (200), never stored twice.
//
// Transaction ids are unique per tenant, the tenant of the client's API
// key: two tenants may each store a transaction "42", and every call sees
// only its own tenant's (another tenant's is not found; a listing holds
// the tenant's only).
package txclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
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
	http    *http.Client
	baseURL string
	apiKey  string
	retry   RetryPolicy
	now     func() time.Time
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
	// A copy: the caller's client is not ours to change.
	hc := &http.Client{}
	if cfg.hc != nil {
		cp := *cfg.hc
		hc = &cp
	}
	return &Client{http: hc, baseURL: strings.TrimRight(baseURL, "/"), apiKey: cfg.apiKey, retry: cfg.retry, now: cfg.now, sleep: cfg.sleep}
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
	if s := resp.status; s != http.StatusCreated && s != http.StatusOK {
		return Resource{}, false, c.problemOf(resp)
	}
	if err := decode(resp, &res); err != nil {
		return Resource{}, false, err
	}
	return res, resp.status == http.StatusCreated, nil
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
	if resp.status != http.StatusOK {
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

// Get reads a transaction of the key's tenant and its conversion. An
// unknown id (or another tenant's) is a *Problem with Status 404.
func (c *Client) Get(ctx context.Context, id string) (Resource, error) {
	return c.get(ctx, id, nil)
}

// MaxWait is the longest wait WaitFinal may ask the API for.
const MaxWait = 30 * time.Second

// WaitFinal reads a transaction as Get does, once it is final (processed
// or failed), or after wait (at most MaxWait) with its status then:
// received when it is not final yet. The API holds the request open
// meanwhile, so an http.Client's Timeout must leave room for wait.
func (c *Client) WaitFinal(ctx context.Context, id string, wait time.Duration) (Resource, error) {
	if wait < 0 || wait > MaxWait {
		return Resource{}, fmt.Errorf("wait %s: want 0 to %s", wait, MaxWait)
	}
	return c.get(ctx, id, url.Values{"wait": {wait.String()}})
}

func (c *Client) get(ctx context.Context, id string, query url.Values) (Resource, error) {
	resp, err := c.do(ctx, http.MethodGet, "/v1/transactions/"+url.PathEscape(id), query, nil)
	if err != nil {
		return Resource{}, err
	}
	if resp.status != http.StatusOK {
		return Resource{}, c.problemOf(resp)
	}
	var res Resource
	if err := decode(resp, &res); err != nil {
		return Resource{}, err
	}
	return res, nil
}

// List returns one page of the key's tenant's transactions, newest first. A bad filter or
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
	if resp.status != http.StatusOK {
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

// response is an answer of the API, read whole.
type response struct {
	method, url string
	status      int
	header      http.Header
	body        []byte
}

// do makes a request, retrying network errors, 503 and 429 within the
// policy, with the waits the API asks for (Retry-After) or else
// cenkalti/backoff's. It returns the last answer, whatever its status, or
// the last network error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte) (*response, error) {
	deadline := c.now().Add(c.retry.MaxElapsed)
	waits := c.backoff()
	for attempt := 1; ; attempt++ {
		resp, err := c.send(ctx, method, path, query, body)
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, fmt.Errorf("txclient: %s %s: %w", method, path, ctx.Err())
			}
			err = fmt.Errorf("txclient: %s %s: %w", method, path, err)
			wait = waits.NextBackOff()
		case resp.status == http.StatusServiceUnavailable || resp.status == http.StatusTooManyRequests:
			var ok bool
			if wait, ok = retryAfter(resp.header.Get("Retry-After"), c.now()); !ok {
				wait = waits.NextBackOff()
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

// send makes one request and reads its answer, at most maxBodyBytes of it.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte) (*response, error) {
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		// The same bytes on every attempt: the same transaction_id.
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the answer: %w", err)
	}
	if len(b) > maxBodyBytes {
		return nil, fmt.Errorf("answer larger than %d bytes", maxBodyBytes)
	}
	return &response{method: method, url: u, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// backoff is the policy's waits when the API names none: BaseDelay
// doubling per attempt up to MaxDelay, each drawn between half of its
// delay and all of it (intervals of three quarters of the delay, a third
// either way).
func (c *Client) backoff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     c.retry.BaseDelay * 3 / 4,
		RandomizationFactor: 1.0 / 3,
		Multiplier:          2,
		MaxInterval:         c.retry.MaxDelay * 3 / 4,
	}
	b.Reset()
	return b
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
func (c *Client) problemOf(resp *response) *Problem {
	p := &Problem{}
	if err := json.Unmarshal(resp.body, p); err != nil || p.Status == 0 {
		p = &Problem{Type: TypeBlank, Title: http.StatusText(resp.status), Status: resp.status}
	}
	// The status line is the truth; a body may be a proxy's.
	p.Status = resp.status
	p.RetryAfter, _ = retryAfter(resp.header.Get("Retry-After"), c.now())
	return p
}

// decode reads a JSON answer into v.
func decode(resp *response, v any) error {
	if err := json.Unmarshal(resp.body, v); err != nil {
		return fmt.Errorf("txclient: %s %s: answer %d is not the JSON expected: %w", resp.method, resp.url, resp.status, err)
	}
	return nil
}
