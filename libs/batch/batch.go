// Package batch groups concurrent calls into batches: many callers share
// one call of a function that handles a batch, such as one database round
// trip and one commit for every caller (group commit), with results
// handed back to each caller in its own order.
package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrClosed: Do was called after Close.
var ErrClosed = errors.New("batcher closed")

// Func writes a batch in one round trip and returns one result per
// item, in order; an error fails every item of the batch.
type Func[In, Out any] func(ctx context.Context, items []In) ([]Out, error)

// Config tunes a Batcher.
type Config struct {
	// Flushers is how many batches may be in flight at once (at least 1).
	Flushers int
	// MaxSize bounds a batch (at least 1).
	MaxSize int
	// Window is how long a flusher that took a first item waits for more
	// before it flushes what it has. Zero flushes at once: batches then form
	// only from the calls that queue while every flusher is busy, so a lone
	// call never waits for company, and under load a batch holds what
	// arrived during one round trip.
	Window time.Duration
	// Timeout bounds one flush, whatever the callers' contexts say.
	Timeout time.Duration
}

// Batcher groups concurrent calls into batches, so that many callers share
// one database round trip and one commit: the group commit that lets one
// PostgreSQL take many times the transactions it could commit one by one.
// It is safe for concurrent use.
type Batcher[In, Out any] struct {
	fn    Func[In, Out]
	cfg   Config
	calls chan *call[In, Out]
	stop  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	// mu orders sends on calls before Close: once closed is set no call is
	// queued, so the flushers' final drain answers every queued one.
	mu     sync.RWMutex
	closed bool
}

type call[In, Out any] struct {
	ctx  context.Context
	item In
	done chan result[Out]
}

type result[Out any] struct {
	out Out
	err error
}

// New starts a Batcher that flushes with fn. Close stops it.
func New[In, Out any](fn Func[In, Out], cfg Config) *Batcher[In, Out] {
	cfg.Flushers = max(cfg.Flushers, 1)
	cfg.MaxSize = max(cfg.MaxSize, 1)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	b := &Batcher[In, Out]{
		fn:    fn,
		cfg:   cfg,
		calls: make(chan *call[In, Out], cfg.MaxSize*cfg.Flushers),
		stop:  make(chan struct{}),
	}
	for range cfg.Flushers {
		b.wg.Go(b.flusher)
	}
	return b
}

// Do adds item to the next batch and waits for its result. It returns ctx's
// error if ctx ends before the item was flushed (the item may still be
// written, in a batch already under way: retrying must be safe), and
// ErrClosed after Close.
func (b *Batcher[In, Out]) Do(ctx context.Context, item In) (Out, error) {
	c := &call[In, Out]{ctx: ctx, item: item, done: make(chan result[Out], 1)}
	var zero Out
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return zero, ErrClosed
	}
	select {
	case b.calls <- c:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return zero, ctx.Err()
	}
	select {
	case r := <-c.done:
		return r.out, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Close stops taking calls, flushes those already queued, and waits for the
// flushers to finish.
func (b *Batcher[In, Out]) Close() {
	b.once.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.stop)
	})
	b.wg.Wait()
}

func (b *Batcher[In, Out]) flusher() {
	batch := make([]*call[In, Out], 0, b.cfg.MaxSize)
	for {
		batch = batch[:0]
		select {
		case c := <-b.calls:
			batch = append(batch, c)
		case <-b.stop:
			b.drain()
			return
		}
		batch = b.fill(batch)
		b.flush(batch)
	}
}

// fill adds queued calls to batch, waiting up to the window for more.
func (b *Batcher[In, Out]) fill(batch []*call[In, Out]) []*call[In, Out] {
	var window <-chan time.Time
	if b.cfg.Window > 0 {
		t := time.NewTimer(b.cfg.Window)
		defer t.Stop()
		window = t.C
	}
	for len(batch) < b.cfg.MaxSize {
		select {
		case c := <-b.calls:
			batch = append(batch, c)
			continue
		default:
		}
		if window == nil {
			return batch
		}
		select {
		case c := <-b.calls:
			batch = append(batch, c)
		case <-window:
			return batch
		}
	}
	return batch
}

// drain flushes what is still queued after Close.
func (b *Batcher[In, Out]) drain() {
	for {
		batch := b.fill(make([]*call[In, Out], 0, b.cfg.MaxSize))
		if len(batch) == 0 {
			return
		}
		b.flush(batch)
	}
}

func (b *Batcher[In, Out]) flush(batch []*call[In, Out]) {
	// Calls whose caller gave up are not written.
	live := batch[:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.done <- result[Out]{err: err}
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	items := make([]In, len(live))
	for i, c := range live {
		items[i] = c.item
	}
	// The first caller's context carries the trace the batch's span joins;
	// its cancellation must not abort the others' write.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), b.cfg.Timeout)
	defer cancel()
	outs, err := b.fn(ctx, items)
	if err == nil && len(outs) != len(items) {
		err = fmt.Errorf("batch of %d returned %d results", len(items), len(outs))
	}
	for i, c := range live {
		if err != nil {
			c.done <- result[Out]{err: err}
		} else {
			c.done <- result[Out]{out: outs[i]}
		}
	}
}
