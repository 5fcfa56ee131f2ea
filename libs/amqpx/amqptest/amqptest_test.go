package amqptest

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestNewVhost(t *testing.T) {
	var url, vhost string
	t.Run("sub", func(t *testing.T) {
		url = NewVhost(t)
		vhost = Vhost(t, url)
		if !strings.HasPrefix(vhost, "test-TestNewVhost-sub-") {
			t.Errorf("vhost %q does not start with test-TestNewVhost-sub-", vhost)
		}
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			t.Fatalf("dial the new vhost: %v", err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		// Needs configure permission.
		if _, err := ch.QueueDeclare("q", false, true, false, false, nil); err != nil {
			t.Errorf("declare a queue in the new vhost: %v", err)
		}
	})
	if vhosts := Rabbitmqctl(t, "list_vhosts", "name"); strings.Contains(vhosts, vhost) {
		t.Errorf("vhost %q still exists after the test's cleanup", vhost)
	}
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

func TestNewVhostFailsWhenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	t.Setenv(EnvURL, "amqp://guest:guest@"+addr+"/")

	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NewVhost(f)
	}()
	<-done
	if !strings.Contains(f.msg, "not reachable at amqp://guest:xxxxx@"+addr) || !strings.Contains(f.msg, "rabbitmq-server -detached") {
		t.Errorf("NewVhost failed with %q, want it to name the URL and how to start RabbitMQ", f.msg)
	}
}
