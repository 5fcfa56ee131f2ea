// Package amqptest gives each test its own RabbitMQ virtual host on the
// real broker, so that tests can run in parallel and leave nothing behind.
//
// The broker is found through the TEST_AMQP_URL environment variable
// (default amqp://guest:guest@127.0.0.1:5672/). It is administered with
// rabbitmqctl when that is on PATH (it must be allowed to talk to the node:
// run as root or as the rabbitmq user), else through the management
// plugin's HTTP API (TEST_AMQP_MANAGEMENT_URL, default port 15672 of the
// broker's host) as the URL's user, which then needs the administrator
// tag: the way to reach a broker in a container, such as docker-compose.yml's.
// TEST_AMQP_ADMIN=rabbitmqctl or =http forces one of the two. When the
// broker or the way to administer it is missing the test fails with a
// message saying what to start; it is never skipped.
package amqptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the broker used when TEST_AMQP_URL is unset.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// EnvURL names the environment variable holding the broker's base URL.
const EnvURL = "TEST_AMQP_URL"

// cmdTimeout bounds one administrative operation: a rabbitmqctl call, or
// an HTTP call and, for CloseConnections, the wait for the management API
// to list the connections.
const cmdTimeout = 60 * time.Second

// BaseURL returns the broker's base URL: TEST_AMQP_URL, or DefaultURL.
func BaseURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Queue is a queue as the broker describes it.
type Queue struct {
	// Type is "classic", "quorum" or "stream".
	Type string
	// Args are the queue's x-arguments; numbers are float64, as JSON
	// decodes them.
	Args map[string]any
}

// NewVhost creates a fresh virtual host named test-<test name>-<random>,
// grants the base URL's user all permissions on it, deletes it (closing its
// connections) in t.Cleanup, and returns the base URL pointing at it, e.g.
// amqp://guest:guest@127.0.0.1:5672/test-TestPublish-1a2b3c4d.
//
// It fails the test if the broker is unreachable or cannot be
// administered (see the package doc).
func NewVhost(t testing.TB) string {
	t.Helper()
	base := BaseURL()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("amqptest: parse %s %q: %v", EnvURL, base, err)
	}
	conn, err := amqp.DialConfig(base, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("amqptest: RabbitMQ not reachable at %s: %v\nstart it with `rabbitmq-server -detached` "+
			"or `docker compose up -d --wait rabbitmq` (or set %s)", u.Redacted(), err, EnvURL)
	}
	_ = conn.Close()
	adm := newAdminOrFail(t, base)

	user := "guest"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	vhost := "test-" + sanitize(t.Name()) + "-" + randomSuffix(t)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := adm.addVhost(ctx, vhost, user); err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		if err := adm.deleteVhost(ctx, vhost); err != nil {
			t.Errorf("amqptest: %v", err)
		}
	})

	v := *u
	v.Path = "/" + vhost
	v.RawPath = ""
	return v.String()
}

// CloseConnections makes the broker close every client connection to the
// vhost of amqpURL (as `rabbitmqctl close_all_connections -p <vhost>`
// does), to test reconnection. Through the management API it waits until
// the API lists at least one connection to the vhost: call it when the
// code under test is connected.
func CloseConnections(t testing.TB, amqpURL string) {
	t.Helper()
	vhost := Vhost(t, amqpURL)
	adm := newAdminOrFail(t, amqpURL)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	if err := adm.closeConnections(ctx, vhost); err != nil {
		t.Fatalf("amqptest: %v", err)
	}
}

// Queues lists the queues of amqpURL's vhost by name, with their types
// and arguments, through rabbitmqctl or the management API as the package
// doc says.
func Queues(t testing.TB, amqpURL string) map[string]Queue {
	t.Helper()
	vhost := Vhost(t, amqpURL)
	adm := newAdminOrFail(t, amqpURL)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	qs, err := adm.queues(ctx, vhost)
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	return qs
}

// Vhost returns the virtual host named by an amqp:// URL ("/" when the
// path is empty).
func Vhost(t testing.TB, amqpURL string) string {
	t.Helper()
	uri, err := amqp.ParseURI(amqpURL)
	if err != nil {
		t.Fatalf("amqptest: parse %q: %v", amqpURL, err)
	}
	return uri.Vhost
}

// Rabbitmqctl runs rabbitmqctl with args and returns its standard output,
// failing the test if it fails. It needs rabbitmqctl on PATH whatever
// TEST_AMQP_ADMIN says; Queues works either way.
func Rabbitmqctl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := rabbitmqctl(ctx, args...)
	if err != nil {
		t.Fatalf("amqptest: rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newAdminOrFail is newAdmin for amqpURL, failing the test on error.
func newAdminOrFail(t testing.TB, amqpURL string) admin {
	t.Helper()
	adm, err := newAdmin(amqpURL)
	if err != nil {
		t.Fatalf("amqptest: %v", err)
	}
	return adm
}

func sanitize(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := b.String()
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

func randomSuffix(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("amqptest: random vhost suffix: %v", err)
	}
	return hex.EncodeToString(b[:])
}
