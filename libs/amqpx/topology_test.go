package amqpx

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
)

func TestTopologyDeclare(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	topo := DefaultTopology()

	c1 := dial(t, url, topo)
	c2 := dial(t, url, topo)

	// Again on one connection, then from two connections at once.
	if err := topo.Declare(rawChannel(t, c1)); err != nil {
		t.Fatalf("second Declare: %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []*Conn{c1, c2} {
		ch := rawChannel(t, c)
		wg.Go(func() { errs[i] = topo.Declare(ch) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Declare %d: %v", i, err)
		}
	}

	// JSON numbers decode as float64.
	delayQueue := func(ttl float64) queueInfo {
		return queueInfo{Type: "quorum", Args: map[string]any{
			"x-queue-type":              "quorum",
			"x-message-ttl":             ttl,
			"x-dead-letter-exchange":    "transactions",
			"x-dead-letter-routing-key": "convert",
			"x-dead-letter-strategy":    "at-least-once",
			"x-overflow":                "reject-publish",
		}}
	}
	want := map[string]queueInfo{
		"transactions.convert": {Type: "quorum", Args: map[string]any{
			"x-queue-type":              "quorum",
			"x-delivery-limit":          float64(20),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": "transactions.convert.dlq",
			"x-dead-letter-strategy":    "at-least-once",
			"x-overflow":                "reject-publish",
		}},
		"transactions.convert.dlq":       {Type: "quorum", Args: map[string]any{"x-queue-type": "quorum"}},
		"transactions.convert.delay.5s":  delayQueue(5000),
		"transactions.convert.delay.30s": delayQueue(30000),
		"transactions.convert.delay.2m":  delayQueue(120000),
		"transactions.convert.delay.5m":  delayQueue(300000),
		"transactions.convert.delay.8m":  delayQueue(480000),
		"transactions.convert.wait.15m":  delayQueue(900000),
	}
	if diff := cmp.Diff(want, listQueues(t, url)); diff != "" {
		t.Errorf("queues (-want +got):\n%s", diff)
	}

	ch := rawChannel(t, c1)
	if err := ch.ExchangeDeclarePassive("transactions", "direct", true, false, false, false, nil); err != nil {
		t.Errorf("exchange transactions: %v", err)
	}
}

func TestTopologyDeclareRejectsChangedArguments(t *testing.T) {
	t.Parallel()
	url := amqptest.NewVhost(t)
	c := dial(t, url, testTopology())
	changed := testTopology()
	changed.DeliveryLimit++
	if err := changed.Declare(rawChannel(t, c)); err == nil {
		t.Fatal("Declare with a different delivery limit succeeded, want PRECONDITION_FAILED")
	}
}

func TestTopologyDelayQueueName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		delay time.Duration
		want  string
	}{
		{5 * time.Second, "transactions.convert.delay.5s"},
		{30 * time.Second, "transactions.convert.delay.30s"},
		{90 * time.Second, "transactions.convert.delay.90s"},
		{2 * time.Minute, "transactions.convert.delay.2m"},
		{2 * time.Hour, "transactions.convert.delay.2h"},
		{200 * time.Millisecond, "transactions.convert.delay.200ms"},
		{1500 * time.Millisecond, "transactions.convert.delay.1500ms"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := DefaultTopology().DelayQueueName(tt.delay); got != tt.want {
				t.Errorf("DelayQueueName(%s) = %q, want %q", tt.delay, got, tt.want)
			}
		})
	}
}

func TestTopologyWaitQueueName(t *testing.T) {
	t.Parallel()
	if got, want := DefaultTopology().WaitQueueName(), "transactions.convert.wait.15m"; got != want {
		t.Errorf("default WaitQueueName = %q, want %q", got, want)
	}
	if got, want := (Topology{Queue: "q", WaitDelay: 90 * time.Second}).WaitQueueName(), "q.wait.90s"; got != want {
		t.Errorf("WaitQueueName = %q, want %q", got, want)
	}
}

func TestTopologyDelayQueue(t *testing.T) {
	t.Parallel()
	topo := DefaultTopology()
	tests := []struct {
		attempt   int
		wantName  string
		wantDelay time.Duration
		wantOK    bool
	}{
		{-1, "", 0, false},
		{0, "transactions.convert.delay.5s", 5 * time.Second, true},
		{4, "transactions.convert.delay.8m", 8 * time.Minute, true},
		{5, "", 0, false},
	}
	for _, tt := range tests {
		name, delay, ok := topo.DelayQueue(tt.attempt)
		if name != tt.wantName || delay != tt.wantDelay || ok != tt.wantOK {
			t.Errorf("DelayQueue(%d) = %q, %s, %v; want %q, %s, %v", tt.attempt, name, delay, ok, tt.wantName, tt.wantDelay, tt.wantOK)
		}
	}
	var total time.Duration
	for _, d := range topo.RetryDelays {
		total += d
	}
	if total != 15*time.Minute+35*time.Second {
		t.Errorf("default retry delays add up to %s, want 15m35s", total)
	}
}

func TestTopologyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		topo    Topology
		wantErr bool
	}{
		{"zero value takes defaults", Topology{}, false},
		{"milliseconds", Topology{RetryDelays: []time.Duration{time.Millisecond}}, false},
		{"no retries", Topology{RetryDelays: []time.Duration{}}, false},
		{"zero delay", Topology{RetryDelays: []time.Duration{0}}, true},
		{"sub-millisecond delay", Topology{RetryDelays: []time.Duration{1500 * time.Microsecond}}, true},
		{"negative delivery limit", Topology{DeliveryLimit: -1}, true},
		{"wait of milliseconds", Topology{WaitDelay: 250 * time.Millisecond}, false},
		{"negative wait", Topology{WaitDelay: -time.Second}, true},
		{"sub-millisecond wait", Topology{WaitDelay: 1500 * time.Microsecond}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.topo.Validate()
			if (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
