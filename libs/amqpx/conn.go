package amqpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	defaultDialTimeout = 5 * time.Second
	defaultHeartbeat   = 10 * time.Second
	minBackoff         = 100 * time.Millisecond
	maxBackoff         = 5 * time.Second
)

// Option configures Dial.
type Option func(*connConfig)

type connConfig struct {
	logger      *slog.Logger
	setups      []func(*amqp.Channel) error
	dialTimeout time.Duration
	name        string
}

// WithLogger sets the logger for connection events (lost, re-established,
// failed re-dials). The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(c *connConfig) {
		if l != nil {
			c.logger = l
		}
	}
}

// OnConnect adds a setup callback that runs on every new connection, the
// first one included, before the connection is handed out; typically
// Topology.Declare. Callbacks run in the order given, on one channel that is
// closed afterwards. If one fails, the first Dial fails, and a re-dial is
// retried with backoff.
func OnConnect(setup func(*amqp.Channel) error) Option {
	return func(c *connConfig) {
		if setup != nil {
			c.setups = append(c.setups, setup)
		}
	}
}

// WithDialTimeout bounds each dial, TCP connect and AMQP handshake together.
// The default is 5s.
func WithDialTimeout(d time.Duration) Option {
	return func(c *connConfig) {
		if d > 0 {
			c.dialTimeout = d
		}
	}
}

// WithConnectionName sets the connection_name client property, which
// RabbitMQ shows in `rabbitmqctl list_connections client_properties` and
// the management UI.
func WithConnectionName(name string) Option {
	return func(c *connConfig) { c.name = name }
}

// Conn is a RabbitMQ connection that re-dials by itself (backoff 100ms..5s,
// with jitter) after the broker goes away, and re-runs its OnConnect setup
// callbacks (topology declaration) on each new connection.
//
// Channels obtained from a Conn die with the underlying connection; users
// such as Publisher and Consumer open new ones after a reconnect.
type Conn struct {
	urls   []string // as given; they contain the password
	safes  []string // urls with the password redacted, for logs and errors
	safe   string   // safes, comma-separated
	cfg    connConfig
	log    *slog.Logger
	done   chan struct{} // closed by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conn  *amqp.Connection // nil while down
	ready chan struct{}    // closed while conn is live
	gen   uint64           // connections made so far; for tests
	// first is the index in urls of the node tried first: the one of the
	// live connection, or after it is lost the one after it.
	first int

	closeOnce sync.Once
	closeErr  error
}

// Dial connects to url (amqp://user:pass@host:port/vhost) and runs the
// OnConnect callbacks. url may name several nodes of a cluster,
// comma-separated (amqp://u:p@node1:5672/,amqp://u:p@node2:5672/): Dial
// tries them in order and keeps the first that answers, and after a lost
// connection the Conn re-dials starting with the next node, so it lands on
// a surviving one. It fails fast, with an error naming each (redacted) URL,
// if no node is reachable, refuses the login or a callback fails; it does
// not retry. After it succeeds the Conn keeps itself connected until
// Close.
func Dial(ctx context.Context, url string, opts ...Option) (*Conn, error) {
	cfg := connConfig{
		logger:      slog.New(slog.DiscardHandler),
		dialTimeout: defaultDialTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	urls := splitURLs(url)
	if len(urls) == 0 {
		return nil, errors.New("amqpx: dial: no URL")
	}
	safes := make([]string, len(urls))
	for i, u := range urls {
		safes[i] = redact(u)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &Conn{
		urls:   urls,
		safes:  safes,
		safe:   strings.Join(safes, ","),
		cfg:    cfg,
		log:    cfg.logger.With("component", "amqpx", "url", strings.Join(safes, ",")),
		done:   make(chan struct{}),
		cancel: cancel,
		ready:  make(chan struct{}),
	}
	conn, err := c.connect(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	c.setUp(conn) // cannot fail: nobody can Close c yet
	c.wg.Add(1)
	go c.supervise(bg, conn)
	return c, nil
}

// DialUntil is Dial that does not give up: while the broker is unreachable
// it tries again with a growing, jittered backoff (100ms to 5s), calling
// onRetry with each failure and the wait before the next try (for a log
// line; it may be nil). A service that must start while RabbitMQ is down
// uses it. It returns ctx's error when ctx ends first.
func DialUntil(ctx context.Context, url string, onRetry func(err error, wait time.Duration), opts ...Option) (*Conn, error) {
	retry := []backoff.RetryOption{backoff.WithBackOff(newBackoff()), backoff.WithMaxElapsedTime(0)}
	if onRetry != nil {
		retry = append(retry, backoff.WithNotify(onRetry))
	}
	c, err := backoff.Retry(ctx, func() (*Conn, error) { return Dial(ctx, url, opts...) }, retry...)
	if err != nil {
		return nil, ctx.Err()
	}
	return c, nil
}

// splitURLs returns the URLs of a comma-separated list, each trimmed,
// the empty ones left out.
func splitURLs(list string) []string {
	var urls []string
	for _, u := range strings.Split(list, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	return urls
}

// connect dials the nodes in turn, from c.first, and returns the first
// connection made, its setup callbacks run; the error names every node
// that failed.
func (c *Conn) connect(ctx context.Context) (*amqp.Connection, error) {
	c.mu.Lock()
	first := c.first
	c.mu.Unlock()
	var errs []error
	for i := range c.urls {
		n := (first + i) % len(c.urls)
		conn, err := c.connectTo(ctx, n)
		if err == nil {
			c.mu.Lock()
			c.first = n
			c.mu.Unlock()
			if len(c.urls) > 1 {
				c.log.Info("rabbitmq node connected", "node", c.safes[n])
			}
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// connectTo dials the node urls[n] once and runs the setup callbacks.
func (c *Conn) connectTo(ctx context.Context, n int) (*amqp.Connection, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.dialTimeout)
	defer cancel()
	props := amqp.NewConnectionProperties()
	if c.cfg.name != "" {
		props.SetClientConnectionName(c.cfg.name)
	}
	safe := c.safes[n]
	conn, err := amqp.DialConfig(c.urls[n], amqp.Config{
		Heartbeat:  defaultHeartbeat,
		Locale:     "en_US",
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// Bound the AMQP handshake too; amqp091 clears the deadline
			// once the connection is open.
			deadline, _ := ctx.Deadline()
			if err := nc.SetDeadline(deadline); err != nil {
				_ = nc.Close()
				return nil, err
			}
			return nc, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("amqpx: dial %s: %w", safe, err)
	}
	if len(c.cfg.setups) == 0 {
		return conn, nil
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("amqpx: open setup channel on %s: %w", safe, err)
	}
	for i, setup := range c.cfg.setups {
		if err := setup(ch); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("amqpx: setup callback %d on %s: %w", i, safe, err)
		}
	}
	_ = ch.Close()
	return conn, nil
}

// setUp publishes conn as the live connection. It reports false, and the
// caller must close conn, if Close has begun: checking under c.mu is what
// keeps Close from missing a connection that a re-dial has just made.
func (c *Conn) setUp(conn *amqp.Connection) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return false
	default:
	}
	c.conn = conn
	c.gen++
	close(c.ready)
	return true
}

// setDown marks the connection lost; the next dial starts with the node
// after the one lost, which may be down.
func (c *Conn) setDown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn = nil
		c.ready = make(chan struct{})
		c.first = (c.first + 1) % len(c.urls)
	}
}

// supervise waits for the live connection to close and re-dials until it
// succeeds or Close is called. It is the only goroutine a Conn runs.
func (c *Conn) supervise(ctx context.Context, conn *amqp.Connection) {
	defer c.wg.Done()
	for {
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		select {
		case <-c.done:
			return
		case err := <-closed:
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("rabbitmq connection lost", "error", errString(err))
		}
		c.setDown()
		conn = c.redial(ctx)
		if conn == nil {
			return
		}
		if !c.setUp(conn) {
			_ = conn.Close()
			return
		}
		c.log.Info("rabbitmq connection re-established")
	}
}

// redial dials with capped, jittered exponential backoff until it succeeds
// or ctx (cancelled by Close) is done, in which case it returns nil.
func (c *Conn) redial(ctx context.Context) *amqp.Connection {
	b := newBackoff()
	for attempt := 1; ; attempt++ {
		if !sleepCtx(ctx, b.NextBackOff()) {
			return nil
		}
		conn, err := c.connect(ctx)
		if err == nil {
			return conn
		}
		c.log.Warn("rabbitmq re-dial failed", "attempt", attempt, "error", err)
	}
}

// Channel opens a new channel on the live connection, waiting (bounded by
// ctx) while the Conn is re-dialing. The caller owns the channel and must
// close it. It returns ErrClosed after Close, ctx.Err() (wrapped) when ctx is
// done first, or the broker's error if the channel cannot be opened.
func (c *Conn) Channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		select {
		case <-c.done:
			return nil, ErrClosed
		default:
		}
		c.mu.Lock()
		conn, ready := c.conn, c.ready
		c.mu.Unlock()
		if conn == nil {
			select {
			case <-ready:
				continue
			case <-c.done:
				return nil, ErrClosed
			case <-ctx.Done():
				return nil, fmt.Errorf("amqpx: wait for connection to %s: %w", c.safe, ctx.Err())
			}
		}
		ch, err := conn.Channel()
		if err == nil {
			return ch, nil
		}
		if !conn.IsClosed() {
			return nil, fmt.Errorf("amqpx: open channel: %w", err)
		}
		// The connection died but the supervisor has not noticed yet; give
		// it a moment instead of spinning.
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return nil, fmt.Errorf("amqpx: wait for connection to %s: %w", c.safe, ctx.Err())
		}
	}
}

// Ready reports whether the Conn has a live connection right now; meant for
// a readiness probe.
func (c *Conn) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && !c.conn.IsClosed()
}

// Close closes the connection and stops re-dialing. Channels opened from it
// are closed with it. It is idempotent and returns the error of closing the
// live connection, if any, on every call.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		close(c.done)
		conn := c.conn
		c.mu.Unlock()
		c.cancel()
		if conn != nil && !conn.IsClosed() {
			if err := conn.Close(); err != nil && !errors.Is(err, amqp.ErrClosed) {
				c.closeErr = fmt.Errorf("amqpx: close connection to %s: %w", c.safe, err)
			}
		}
		c.wg.Wait()
		c.setDown()
	})
	return c.closeErr
}

// newBackoff returns the waits between re-dials and re-subscriptions:
// doubling from minBackoff to maxBackoff, each drawn between half of its
// delay and all of it (intervals of three quarters of the delay, a third
// either way), so that several clients do not re-dial in lockstep.
func newBackoff() *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     minBackoff * 3 / 4,
		RandomizationFactor: 1.0 / 3,
		Multiplier:          2,
		MaxInterval:         maxBackoff * 3 / 4,
	}
	b.Reset()
	return b
}

// sleepCtx sleeps for d and reports whether it did so without ctx ending.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable amqp url>"
	}
	return u.Redacted()
}

func errString(err *amqp.Error) string {
	if err == nil {
		return "closed"
	}
	return err.Error()
}
