package ratesclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

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

// fetch asks the provider, retrying what wraps ErrUnavailable with a
// jittered exponential backoff, at most Config.Retries times. When ctx
// ends first, the error is the last attempt's.
func (c *Client) fetch(ctx context.Context, q query) (answer, error) {
	var last error
	a, err := backoff.Retry(ctx, func() (answer, error) {
		a, err := c.attempt(ctx, q)
		last = err
		if err != nil && !errors.Is(err, ErrUnavailable) {
			return answer{}, backoff.Permanent(err)
		}
		return a, err
	}, backoff.WithBackOff(c.backoffPolicy()), backoff.WithMaxTries(uint(c.retries+1)), backoff.WithMaxElapsedTime(0)) //nolint:gosec // G115: Retries is 0 to maxRetries
	switch {
	case err == nil:
		return a, nil
	case errors.Is(last, ErrUnavailable) && c.retries > 0 && ctx.Err() == nil:
		return answer{}, fmt.Errorf("after %d attempts: %w", c.retries+1, last)
	default:
		return answer{}, last
	}
}

// backoffPolicy is the wait between attempts: RetryBackoff, doubling,
// capped at maxBackoff, each wait up to a fifth longer at random, so that
// many clients do not retry in step.
func (c *Client) backoffPolicy() *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{
		InitialInterval:     c.backoff,
		RandomizationFactor: 0.2,
		Multiplier:          2,
		MaxInterval:         maxBackoff,
	}
}

// attempt makes one HTTP call and turns its outcome into an answer or an
// error wrapping ErrNotFound or ErrUnavailable.
func (c *Client) attempt(ctx context.Context, q query) (answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	a, err := c.get(ctx, q)
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

// get asks the provider for q once and reads its answer, at most
// maxBodyBytes of it.
func (c *Client) get(ctx context.Context, q query) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.provider.url(q), nil)
	if err != nil {
		return answer{}, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return answer{}, fmt.Errorf("read the answer: %w", err)
	}
	if len(body) > maxBodyBytes {
		return answer{}, fmt.Errorf("answer larger than %d bytes: %w", maxBodyBytes, ErrBadAnswer)
	}
	return c.answer(q, resp, body)
}

// answer turns a response into an answer, by its status: 200 is parsed by
// the provider, 429 and 5xx are an outage, a 4xx is the provider's "not
// found" only when the provider says so in its own words.
func (c *Client) answer(q query, resp *http.Response, body []byte) (answer, error) {
	name := c.provider.name()
	code := resp.StatusCode
	switch {
	case code == http.StatusOK:
		return c.provider.parse(q, body)
	case code == http.StatusTooManyRequests || code >= 500:
		return answer{}, fmt.Errorf("%s answered %s: %w", name, resp.Status, ErrUnavailable)
	case code >= 400 && c.provider.notFound(code, body):
		return answer{}, fmt.Errorf("%s has no such quote (%s %s): %w", name, resp.Status, snippet(body), ErrNotFound)
	case code >= 400:
		return answer{}, fmt.Errorf("%s answered %s: %s: %w", name, resp.Status, snippet(body), ErrRejected)
	default:
		return answer{}, fmt.Errorf("%s answered unexpected %s: %w", name, resp.Status, ErrBadAnswer)
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
