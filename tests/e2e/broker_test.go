package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards connections to upstream; set down, it cuts every open
// connection and refuses new ones, as a broker that went away.
type tcpProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	down     bool
	conns    map[net.Conn]struct{}
}

func newTCPProxy(t *testing.T, upstream string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
	})
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

func (p *tcpProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func readyStatus(t *testing.T, adminURL string) int {
	t.Helper()
	resp, err := http.Get(adminURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBrokerOutage cuts RabbitMQ away from both services: the api keeps
// accepting (transactions wait in the outbox), the converter reports not
// ready, and once the broker is back every accepted transaction is
// processed, none lost.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	var proxy *tcpProxy
	s := start(t, options{amqpVia: func(amqpURL string) string {
		u, err := url.Parse(amqpURL)
		if err != nil {
			t.Fatal(err)
		}
		proxy = newTCPProxy(t, u.Host)
		u.Host = proxy.ln.Addr().String()
		return u.String()
	}})
	if code, _ := s.post("/v1/transactions", body("before", "1", "USD", "2024-09-11T00:00:00Z")); code != http.StatusCreated {
		t.Fatalf("POST before: %d", code)
	}
	s.waitStatus("before", 30*time.Second, "processed")

	proxy.setDown(true)
	const n = 10
	for i := range n {
		id := fmt.Sprintf("during-%d", i)
		if code, res := s.post("/v1/transactions", body(id, "100.0", "USD", "2024-09-11T00:00:00Z")); code != http.StatusCreated {
			t.Fatalf("POST %s while the broker is away: %d %v", id, code, res)
		}
	}
	if code := readyStatus(t, s.apiAdmin); code != http.StatusOK {
		t.Errorf("api readiness while the broker is away: %d, want 200 (it needs PostgreSQL only)", code)
	}
	deadline := time.Now().Add(30 * time.Second)
	for readyStatus(t, s.convAdmin) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("converter still ready 30 s into the broker outage")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if _, res := s.get("/v1/transactions/during-0"); res["status"] != "received" {
		t.Fatalf("during the outage: %v, want received", res)
	}

	proxy.setDown(false)
	for i := range n {
		res := s.waitStatus(fmt.Sprintf("during-%d", i), 60*time.Second, "processed", "failed")
		if res["status"] != "processed" || res["converted_amount"] != "90.56" {
			t.Errorf("after the outage: %v", res)
		}
	}
	if got := metric(t, s.apiAdmin, "txpersister_outbox_backlog"); got != 0 {
		// The gauge is refreshed by the relay's loop; give it one period.
		time.Sleep(1500 * time.Millisecond)
		if got = metric(t, s.apiAdmin, "txpersister_outbox_backlog"); got != 0 {
			t.Errorf("outbox backlog = %v after recovery, want 0", got)
		}
	}
}
