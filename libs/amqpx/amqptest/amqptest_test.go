package amqptest

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"
)

// These tests run against the real broker, administered the way the
// environment chooses (rabbitmqctl where it is on PATH); management_test.go
// covers the management API client against a fake of the API.

func TestNewVhost(t *testing.T) {
	var url, vhost string
	t.Run("sub", func(t *testing.T) {
		url = NewVhost(t)
		vhost = Vhost(t, url)
		if !strings.HasPrefix(vhost, "test-TestNewVhost-sub-") {
			t.Errorf("vhost %q does not start with test-TestNewVhost-sub-", vhost)
		}
		if !slices.Contains(vhostNames(t), vhost) {
			t.Errorf("vhost %q is not listed", vhost)
		}
		ch := channel(t, url)
		// Needs configure permission.
		if _, err := ch.QueueDeclare("q", false, true, false, false, nil); err != nil {
			t.Errorf("declare a queue in the new vhost: %v", err)
		}
	})
	if slices.Contains(vhostNames(t), vhost) {
		t.Errorf("vhost %q still exists after the test's cleanup", vhost)
	}
}

func TestQueues(t *testing.T) {
	url := NewVhost(t)
	ch := channel(t, url)
	if _, err := ch.QueueDeclare("work", true, false, false, false, amqp.Table{
		"x-queue-type": "quorum", "x-delivery-limit": 20, "x-dead-letter-exchange": "",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("plain", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]Queue{
		"work": {Type: "quorum", Args: map[string]any{
			"x-queue-type": "quorum", "x-delivery-limit": float64(20), "x-dead-letter-exchange": "",
		}},
		"plain": {Type: "classic", Args: map[string]any{}},
	}
	if diff := cmp.Diff(want, Queues(t, url)); diff != "" {
		t.Errorf("Queues (-want +got):\n%s", diff)
	}
}

func TestCloseConnections(t *testing.T) {
	url := NewVhost(t)
	conn := dialURL(t, url)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	CloseConnections(t, url)
	select {
	case err := <-closed:
		if err == nil || err.Code != amqp.ConnectionForced {
			t.Errorf("connection closed with %v, want a %d (connection-forced) error", err, amqp.ConnectionForced)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the connection was not closed")
	}
}

func vhostNames(t *testing.T) []string {
	t.Helper()
	adm := newAdminOrFail(t, BaseURL())
	names, err := adm.vhosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func dialURL(t *testing.T, url string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func channel(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	ch, err := dialURL(t, url).Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// fatalTB records Fatalf instead of failing the real test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatalMessage runs fn with a fatalTB and returns what it failed with.
func fatalMessage(t *testing.T, fn func(testing.TB)) string {
	t.Helper()
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestNewVhostFailsWhenUnreachable(t *testing.T) {
	addr := freeAddr(t)
	t.Setenv(EnvURL, "amqp://guest:guest@"+addr+"/")
	msg := fatalMessage(t, func(tb testing.TB) { NewVhost(tb) })
	for _, want := range []string{"not reachable at amqp://guest:xxxxx@" + addr, "rabbitmq-server -detached", "docker compose up -d --wait rabbitmq"} {
		if !strings.Contains(msg, want) {
			t.Errorf("NewVhost failed with %q, want it to contain %q", msg, want)
		}
	}
}
