package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/txpersister/txpersister/libs/batch"
	"github.com/txpersister/txpersister/libs/telemetry"
)

// Due is a delivery a sender has claimed: the message, where to, and
// the secrets that sign it.
type Due struct {
	Tenant     string
	EndpointID string
	MessageID  string
	URL        string
	Secrets    []string
	Body       []byte
	// Attempt is this attempt's number, from 1; Try its number since the
	// delivery was made or replayed: its place in the retry schedule.
	Attempt    int
	Try        int
	OccurredAt time.Time
}

// Result is what one attempt at a Due did.
type Result struct {
	Due       Due
	StartedAt time.Time
	Duration  time.Duration
	// StatusCode is the answer's status, 0 when there was none.
	StatusCode int
	// Err says why it failed; empty when delivered.
	Err string
	// State is the delivery's state after it: delivered, pending (to be
	// tried again at Next) or failed (no attempt left).
	State string
	Next  time.Time
}

// Queue is what the sender needs of the store.
type Queue interface {
	// Claim leases up to limit deliveries due at now, until now+lease,
	// and counts an attempt for each.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Due, error)
	// Record stores attempts and their deliveries' new states, in one
	// transaction. An endpoint failing since disableAfter or longer is
	// disabled, and its pending deliveries fail; a delivered one clears
	// the endpoint's failure.
	Record(ctx context.Context, rs []Result, disableAfter time.Duration) error
	// Backlog returns the pending deliveries as they are at now.
	Backlog(ctx context.Context, now time.Time) (Backlog, error)
	// Prune deletes up to limit messages of outcomes before cutoff that
	// have nothing left to send, with their deliveries and attempts.
	Prune(ctx context.Context, cutoff time.Time, limit int) (int, error)
}

// Backlog is what is still to be delivered.
type Backlog struct {
	// Pending is how many deliveries are pending (due, or waiting for a
	// retry).
	Pending int
	// Oldest is when the oldest pending delivery's outcome occurred;
	// OldestDue since when the longest-due one has been due: when the
	// senders keep up it is at most a poll period ago, whatever the
	// receivers do. Zero when there is none.
	Oldest, OldestDue time.Time
}

// SenderConfig configures a Sender.
type SenderConfig struct {
	// Delays are the waits before each retry (WEBHOOK_RETRY_DELAYS);
	// after the last, a failed attempt fails the delivery.
	Delays []time.Duration
	// Timeout bounds one attempt: a 2xx within it is success.
	Timeout time.Duration
	// Concurrency is how many attempts are in flight at once.
	Concurrency int
	// PollPeriod is how often the sender looks for due deliveries
	// without being woken.
	PollPeriod time.Duration
	// DisableAfter disables an endpoint that has failed for this long.
	DisableAfter time.Duration
	// Policy checks every address dialled.
	Policy *Policy
	// Retention is how long a message is kept once nothing is left to
	// send of it (WEBHOOK_RETENTION): replay reaches that far back.
	Retention time.Duration
}

// DefaultDelays is the specification's retry schedule, after the first
// attempt.
func DefaultDelays() []time.Duration {
	return []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
}

// Sender delivers the due messages of every tenant; several senders, in
// one process or many, share the work through the queue's leases.
type Sender struct {
	q      Queue
	cfg    SenderConfig
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	// records groups the attempts finished at about the same time into
	// one transaction: one commit for many, not one each.
	records *batch.Batcher[Result, struct{}]

	delivered, retried, failed, errors, pruned *metrics.Counter
	duration                                   *metrics.PrometheusHistogram
	// pending, oldest and oldestDue (Unix nanoseconds, 0: none) are the
	// backlog as last read, for the gauges.
	pending, oldest, oldestDue atomic.Int64
}

// lease is how long a claimed delivery is the claimer's: past it, a
// sender that died with it in flight is presumed dead, and another takes
// it.
func (c SenderConfig) lease() time.Duration { return c.Timeout + 20*time.Second }

// NewSender returns a sender over q, with its metrics in m.
func NewSender(q Queue, cfg SenderConfig, log *slog.Logger, m *telemetry.Metrics, now func() time.Time) *Sender {
	dialer := &net.Dialer{Timeout: cfg.Timeout, Control: cfg.Policy.Control}
	transport := &http.Transport{
		Proxy:                 nil, // never through a proxy: the address checked is the one called
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	s := &Sender{
		q: q, cfg: cfg, log: log, now: now, wake: make(chan struct{}, 1),
		client: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			// A redirect is not followed: it is an answer that is not a
			// 2xx, and following it would call an address nobody checked
			// when the endpoint was made.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		delivered: m.Counter(`webhook_deliveries_total{outcome="delivered"}`),
		retried:   m.Counter(`webhook_deliveries_total{outcome="retried"}`),
		failed:    m.Counter(`webhook_deliveries_total{outcome="failed"}`),
		errors:    m.Counter("webhook_sender_errors_total"),
		pruned:    m.Counter("webhook_messages_pruned_total"),
		duration:  m.Histogram("webhook_delivery_duration_seconds", telemetry.LatencyBuckets()),
	}
	s.records = batch.New(func(ctx context.Context, rs []Result) ([]struct{}, error) {
		return make([]struct{}, len(rs)), q.Record(ctx, rs, cfg.DisableAfter)
	}, batch.Config{Flushers: 2, MaxSize: 4 * cfg.Concurrency, Timeout: 10 * time.Second})
	m.Gauge("webhook_backlog", func() float64 { return float64(s.pending.Load()) })
	m.Gauge("webhook_oldest_undelivered_seconds", func() float64 { return s.age(&s.oldest) })
	m.Gauge("webhook_oldest_due_seconds", func() float64 { return s.age(&s.oldestDue) })
	return s
}

// age is how long ago the time in at was, in seconds (0: none).
func (s *Sender) age(at *atomic.Int64) float64 {
	t := at.Load()
	if t == 0 {
		return 0
	}
	return max(s.now().Sub(time.Unix(0, t)).Seconds(), 0)
}

// Wake makes the sender look for due deliveries now: the sweeper calls it
// after recording messages.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: it claims as many due deliveries as it has
// free slots, sends each on its own, and looks again when woken, when a
// slot frees, or every poll period.
func (s *Sender) Run(ctx context.Context) {
	slots := make(chan struct{}, s.cfg.Concurrency)
	freed := make(chan struct{}, s.cfg.Concurrency)
	tick := time.NewTicker(s.cfg.PollPeriod)
	defer tick.Stop()
	// After a slot frees, the loop claims again only once a quarter of
	// them are free: one claim for many deliveries, not one each.
	minClaim, woken := max(s.cfg.Concurrency/4, 1), true
	for {
		free := s.cfg.Concurrency - len(slots)
		claimed := 0
		if free >= minClaim || (woken && free > 0) {
			due, err := s.q.Claim(ctx, s.now(), s.cfg.lease(), free)
			if err != nil && ctx.Err() == nil {
				s.errors.Inc()
				s.log.WarnContext(ctx, "webhook sender: claiming due deliveries failed; trying again", "err", err, "retry_in", s.cfg.PollPeriod)
			}
			claimed = len(due)
			for _, d := range due {
				slots <- struct{}{}
				go func() {
					defer func() {
						<-slots
						select {
						case freed <- struct{}{}:
						default: // the loop is awake already
						}
					}()
					s.deliver(ctx, d)
				}()
			}
		}
		if claimed == free && free > 0 {
			woken = false
			continue // there may be more due
		}
		select {
		case <-ctx.Done():
			for range cap(slots) { // wait for the attempts in flight
				slots <- struct{}{}
			}
			s.records.Close()
			return
		case <-s.wake:
			woken = true
		case <-freed:
			woken = false
		case <-tick.C:
			woken = true
		}
	}
}

// WatchBacklog refreshes the backlog gauges every period until ctx ends.
func (s *Sender) WatchBacklog(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		b, err := s.q.Backlog(ctx, s.now())
		switch {
		case err != nil && ctx.Err() == nil:
			s.errors.Inc()
			s.log.WarnContext(ctx, "webhook backlog: reading it failed", "err", err)
		case err == nil:
			s.pending.Store(int64(b.Pending))
			s.oldest.Store(unixNanoOrZero(b.Oldest))
			s.oldestDue.Store(unixNanoOrZero(b.OldestDue))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// pruneLimit bounds the messages one prune statement deletes: its
// transaction stays short.
const pruneLimit = 10_000

// Prune deletes, every period until ctx ends, the messages older than
// the retention that have nothing left to send, in rounds of pruneLimit.
func (s *Sender) Prune(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		for {
			n, err := s.q.Prune(ctx, s.now().Add(-s.cfg.Retention), pruneLimit)
			if err != nil && ctx.Err() == nil {
				s.errors.Inc()
				s.log.WarnContext(ctx, "webhook sender: pruning old messages failed; trying again", "err", err, "retry_in", period)
			}
			s.pruned.Add(n)
			if n < pruneLimit || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxAnswerBytes is how much of an answer's body is read (and dropped).
const maxAnswerBytes = 64 << 10

// deliver makes one attempt at d and records it.
func (s *Sender) deliver(ctx context.Context, d Due) {
	r := s.attempt(ctx, d)
	switch {
	case r.Err == "":
		r.State = StateDelivered
	case ctx.Err() != nil:
		// The sender is stopping: the attempt was cut short, not
		// refused, and the delivery is due again at once, for another.
		r.State, r.Next, r.Err = StatePending, r.StartedAt, "interrupted: the sender stopped"
	case d.Try <= len(s.cfg.Delays):
		r.State, r.Next = StatePending, r.StartedAt.Add(r.Duration).Add(s.cfg.Delays[d.Try-1])
	default:
		r.State = StateFailed
	}
	// The record outlives a stopping sender: an attempt made is written
	// down, or its lease runs out and it is made again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.records.Do(rctx, r); err != nil {
		s.errors.Inc()
		s.log.WarnContext(ctx, "webhook sender: recording an attempt failed; the delivery is tried again when its lease ends",
			"tenant", d.Tenant, "endpoint_id", d.EndpointID, "webhook_id", d.MessageID, "err", err)
		return
	}
	if ctx.Err() != nil && r.State == StatePending {
		return // not the receiver's doing: neither counted nor logged as a failure
	}
	s.duration.Update(r.Duration.Seconds())
	switch r.State {
	case StateDelivered:
		s.delivered.Inc()
	case StatePending:
		s.retried.Inc()
		s.log.InfoContext(ctx, "webhook delivery failed; retrying", "tenant", d.Tenant, "endpoint_id", d.EndpointID,
			"webhook_id", d.MessageID, "attempt", d.Attempt, "status", r.StatusCode, "err", r.Err, "retry_at", r.Next)
	case StateFailed:
		s.failed.Inc()
		s.log.WarnContext(ctx, "webhook delivery failed for good: no attempt left", "tenant", d.Tenant, "endpoint_id", d.EndpointID,
			"webhook_id", d.MessageID, "attempts", d.Attempt, "status", r.StatusCode, "err", r.Err)
	}
}

// attempt posts d once.
func (s *Sender) attempt(ctx context.Context, d Due) (r Result) {
	start := s.now()
	r = Result{Due: d, StartedAt: start}
	defer func() { r.Duration = s.now().Sub(start) }()
	ts := start.Unix()
	sig, err := Sign(d.Secrets, d.MessageID, ts, d.Body)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "txpersister-webhooks/1")
	req.Header.Set("webhook-id", d.MessageID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.client.Do(req)
	if err != nil {
		r.Err = describe(err)
		return r
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	_ = resp.Body.Close()
	r.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.Err = fmt.Sprintf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return r
}

// describe says why a request got no answer, without the URL (already
// known by the endpoint).
func describe(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	switch {
	case errors.Is(err, errPrivate):
		return "refused: " + err.Error() + " (WEBHOOK_ALLOW_PRIVATE is off)"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return err.Error()
}
