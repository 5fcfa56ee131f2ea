// Package amqptest gives each test its own RabbitMQ virtual host on the
// real broker, so that tests can run in parallel and leave nothing behind.
//
// The broker is found through the TEST_AMQP_URL environment variable
// (default amqp://guest:guest@127.0.0.1:5672/) and administered with
// rabbitmqctl, which must be on PATH and allowed to talk to the node (run as
// root or as the rabbitmq user). When either is missing the test fails with
// a message saying what to start; it is never skipped.
package amqptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DefaultURL is the broker used when TEST_AMQP_URL is unset.
const DefaultURL = "amqp://guest:guest@127.0.0.1:5672/"

// EnvURL names the environment variable holding the broker's base URL.
const EnvURL = "TEST_AMQP_URL"

// cmdTimeout bounds one rabbitmqctl call.
const cmdTimeout = 60 * time.Second

// BaseURL returns the broker's base URL: TEST_AMQP_URL, or DefaultURL.
func BaseURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// NewVhost creates a fresh virtual host named test-<test name>-<random>,
// grants the base URL's user all permissions on it, deletes it (closing its
// connections) in t.Cleanup, and returns the base URL pointing at it, e.g.
// amqp://guest:guest@127.0.0.1:5672/test-TestPublish-1a2b3c4d.
//
// It fails the test if the broker is unreachable or rabbitmqctl is missing
// or fails.
func NewVhost(t testing.TB) string {
	t.Helper()
	base := BaseURL()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("amqptest: parse %s %q: %v", EnvURL, base, err)
	}
	conn, err := amqp.DialConfig(base, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("amqptest: RabbitMQ not reachable at %s: %v\nstart it with `rabbitmq-server -detached` (or set %s)", u.Redacted(), err, EnvURL)
	}
	_ = conn.Close()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		t.Fatalf("amqptest: rabbitmqctl not found on PATH (%v): install RabbitMQ's CLI tools, e.g. `apt-get install rabbitmq-server`", err)
	}

	user := "guest"
	if u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	}
	vhost := "test-" + sanitize(t.Name()) + "-" + randomSuffix(t)
	create(t, vhost, user)
	t.Cleanup(func() {
		if out, err := rabbitmqctl("delete_vhost", vhost); err != nil {
			t.Errorf("amqptest: delete vhost %q: %v\n%s", vhost, err, out)
		}
	})

	v := *u
	v.Path = "/" + vhost
	return v.String()
}

// create makes the vhost and grants user all permissions on it. One
// `rabbitmqctl eval` costs one CLI start instead of two (each ~0.4s of CPU);
// if the broker's internals differ from 3.x's, it falls back to the two
// documented commands.
func create(t testing.TB, vhost, user string) {
	t.Helper()
	bin := func(s string) string { return "<<\"" + s + "\">>" }
	expr := "ok = rabbit_vhost:add(" + bin(vhost) + ", " + bin("amqptest") + "), " +
		"ok = rabbit_auth_backend_internal:set_permissions(" + bin(user) + ", " + bin(vhost) + ", " +
		bin(".*") + ", " + bin(".*") + ", " + bin(".*") + ", " + bin("amqptest") + ")."
	out, err := rabbitmqctl("eval", expr)
	if err == nil && strings.TrimSpace(string(out)) == "ok" {
		return
	}
	t.Logf("amqptest: rabbitmqctl eval did not create vhost %q (%v: %s); using add_vhost + set_permissions", vhost, err, out)
	if out, err := rabbitmqctl("add_vhost", vhost); err != nil && !bytes.Contains(out, []byte("already exists")) {
		t.Fatalf("amqptest: rabbitmqctl add_vhost %q: %v\n%s", vhost, err, out)
	}
	if out, err := rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"); err != nil {
		t.Fatalf("amqptest: rabbitmqctl set_permissions -p %q %q: %v\n%s", vhost, user, err, out)
	}
}

// CloseConnections makes the broker close every client connection to the
// vhost of url (as `rabbitmqctl close_all_connections -p <vhost>` does),
// to test reconnection.
func CloseConnections(t testing.TB, amqpURL string) {
	t.Helper()
	vhost := Vhost(t, amqpURL)
	if out, err := rabbitmqctl("close_all_connections", "-p", vhost, "amqptest: forced close"); err != nil {
		t.Fatalf("amqptest: close connections of vhost %q: %v\n%s", vhost, err, out)
	}
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
// failing the test if it fails.
func Rabbitmqctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := rabbitmqctl(args...)
	if err != nil {
		t.Fatalf("amqptest: rabbitmqctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func rabbitmqctl(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "rabbitmqctl", append([]string{"-q"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
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
