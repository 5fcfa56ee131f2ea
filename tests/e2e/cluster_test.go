//go:build cluster

// The cluster suite: `make test-cluster`. It starts a three-node RabbitMQ
// cluster of its own (scripts/rabbitmq-cluster.sh, beside the machine's
// broker, which it leaves alone), runs the services against all three
// nodes, kills nodes with SIGKILL under load and brings them back, and
// stops the cluster at the end, even when it fails.

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/testkit/pgtest"
)

// clusterRate is the steady load, in transactions a second.
const clusterRate = 300

// convertQueue is the queue whose leader the suite kills.
const convertQueue = "transactions.convert"

// cluster drives scripts/rabbitmq-cluster.sh on a cluster of the test's.
type cluster struct {
	t   *testing.T
	dir string // CLUSTER_DIR
}

func (c *cluster) run(timeout time.Duration, args ...string) (string, error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "rabbitmq-cluster.sh"), args...)
	cmd.Env = append(os.Environ(), "CLUSTER_DIR="+c.dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("rabbitmq-cluster.sh %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func (c *cluster) must(timeout time.Duration, args ...string) string {
	c.t.Helper()
	out, err := c.run(timeout, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// leader returns the node leading the queue, or "" while none does.
func (c *cluster) leader() string {
	out, err := c.run(time.Minute, "leader", convertQueue)
	if err != nil {
		return ""
	}
	return out
}

// waitLeader waits until a node other than not leads the queue, and
// returns it and how long that took.
func (c *cluster) waitLeader(not string, timeout time.Duration) (string, time.Duration) {
	c.t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if l := c.leader(); l != "" && l != not {
			return l, time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("no node other than %s leads %s within %s", not, convertQueue, timeout)
	return "", 0
}

// connected returns the services (by connection name) with a connection to
// node, read from the destination port of each connection's name
// ("127.0.0.1:40312 -> 127.0.0.1:5682").
func (c *cluster) connected(node string) []string {
	c.t.Helper()
	out := c.must(time.Minute, "ctl", "txp-a", "-q", "list_connections", "--no-table-headers", "name", "client_properties")
	if node == "txp-a" {
		out = c.must(time.Minute, "ctl", "txp-b", "-q", "list_connections", "--no-table-headers", "name", "client_properties")
	}
	port := map[string]string{"txp-a": "5681", "txp-b": "5682", "txp-c": "5683"}[node]
	seen := map[string]bool{}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		m := connectionName.FindStringSubmatch(line)
		if m == nil || !strings.Contains(line, "-> 127.0.0.1:"+port) || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		names = append(names, strings.TrimPrefix(m[1], "txpersister-"))
	}
	slices.Sort(names)
	return names
}

var connectionName = regexp.MustCompile(`connection_name","([^"]+)"`)

// clusterFault is one fault and what the cluster did.
type clusterFault struct {
	phaseResult
	killed, leaderAfter string
	on                  []string      // the services with a connection to the node killed
	failover            time.Duration // until another node led the queue
	resumed             time.Duration // until a transaction posted after the kill was processed
}

func TestCluster(t *testing.T) {
	build(t)
	c := &cluster{t: t, dir: t.TempDir()}
	t.Cleanup(func() {
		if _, err := c.run(2*time.Minute, "stop"); err != nil {
			t.Errorf("stop the cluster: %v", err)
		}
	})
	urls := c.must(3*time.Minute, "start")
	t.Logf("cluster: %s", urls)

	f := &faultStack{t: t, dbURL: pgtest.NewDatabase(t)}
	f.env = []string{"DATABASE_URL=" + f.dbURL, "AMQP_URL=" + urls, "LOG_FORMAT=json", "LOG_LEVEL=info", "OTEL_SDK_DISABLED=true", "REQUEST_TIMEOUT=3s"}
	t.Cleanup(f.stopAll)
	ratesURL := f.startRates()
	f.addAPI()
	conv := f.addConverter(ratesURL)

	queues := c.must(time.Minute, "ctl", "txp-a", "-q", "list_queues", "--no-table-headers", "name", "type", "members")
	for _, line := range strings.Split(queues, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[1] != "quorum" {
			t.Errorf("queue %s is %s, want quorum: %s", fields[0], fields[1], line)
		}
		if len(fields) >= 2 && strings.Count(line, "@localhost") != 3 {
			t.Errorf("queue %s is not on all three nodes: %s", fields[0], line)
		}
	}

	l := startLoad(f, clusterRate)

	var faults []clusterFault
	kill := func(name string, pick func(leader string) string) {
		var cf clusterFault
		cf.phaseResult = l.inject(name, func() {
			leader := c.leader()
			if leader == "" {
				t.Fatalf("no node leads %s", convertQueue)
			}
			cf.killed = pick(leader)
			cf.on = c.connected(cf.killed)
			c.must(time.Minute, "kill", cf.killed)
			killedAt := time.Now()
			l.canaries++
			id := fmt.Sprintf("canary-%02d", l.canaries)
			go l.send(context.Background(), id, "USD", "1.00", "2024-09-11T10:00:00Z")
			if cf.killed == leader {
				cf.leaderAfter, cf.failover = c.waitLeader(leader, time.Minute)
			}
			// The node stays down until the pipeline converts again without
			// it: the services must find the surviving nodes by themselves.
			if processedWithin(f, id, time.Minute) {
				cf.resumed = time.Since(killedAt)
			} else {
				t.Errorf("%s: nothing converted within a minute of killing %s, while it was down", name, cf.killed)
			}
			time.Sleep(time.Until(killedAt.Add(20 * time.Second)))
			c.must(3*time.Minute, "restart", cf.killed)
			if cf.leaderAfter == "" {
				cf.leaderAfter = c.leader()
			}
		})
		faults = append(faults, cf)
	}
	faults = append(faults, clusterFault{phaseResult: l.inject("steady load, no fault", func() { time.Sleep(10 * time.Second) })})
	kill("the node leading transactions.convert killed (SIGKILL), started again 20 s later", func(leader string) string { return leader })
	kill("a follower killed (SIGKILL), started again 20 s later", func(leader string) string {
		if leader == "txp-c" {
			return "txp-b"
		}
		return "txp-c"
	})
	kill("the new leader killed (SIGKILL), started again 20 s later", func(leader string) string { return leader })

	accepted := l.stop()
	lost, failed, wrong := drainAndCheck(t, f, accepted, 5*time.Minute)
	twice := outcomesTwice(t, f.dbURL)
	duplicates := metric(t, conv.admin, "messages_duplicate_total")
	f.allReady()
	if out := c.must(time.Minute, "status"); strings.Count(out, "running") != 3 {
		t.Errorf("not every node runs again:\n%s", out)
	}

	report := clusterReport(faults, len(accepted), lost, failed, wrong, twice, duplicates, l.sent.Load())
	writeReport(t, "CLUSTER_REPORT_DIR", "cluster", report)
	for _, cf := range faults {
		cf.checkAnswers(t)
	}
}

// outcomesTwice counts transactions with more than one outcome row: a
// conversion stored twice. The key forbids it; the count says so from the
// data rather than from the schema.
func outcomesTwice(t *testing.T, dbURL string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM conversion_outcomes GROUP BY tenant, transaction_id HAVING count(*) > 1) AS d`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		t.Errorf("%d transactions have more than one outcome", n)
	}
	return n
}

func clusterReport(faults []clusterFault, accepted, lost, failed, wrong, twice int, duplicates float64, sent int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Cluster suite, %s, three RabbitMQ nodes (scripts/rabbitmq-cluster.sh), quorum queues on all three, AMQP_URL listing the three; steady load %d transactions/s (clients retry with the same transaction_id when they get no answer or 503)\n\n",
		time.Now().UTC().Format(time.RFC3339), clusterRate)
	b.WriteString("| fault | node killed | its connections | leader after | failover | converting again | requests | 201/200 | 503 | other 5xx | no answer | recovery |\n|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, cf := range faults {
		s := cf.stats
		failover, resumed := "-", "-"
		if cf.failover > 0 {
			failover = cf.failover.Round(100 * time.Millisecond).String()
		}
		if cf.resumed > 0 {
			resumed = cf.resumed.Round(100 * time.Millisecond).String()
		}
		killed, after, on := cf.killed, cf.leaderAfter, strings.Join(cf.on, ", ")
		if killed == "" {
			killed, after = "-", "-"
		}
		if on == "" {
			on = "-"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %d | %d | %d | %d | %d | %s |\n", cf.name, killed, on, after, failover, resumed,
			s.requests.Load(), s.ok.Load(), s.unavailable.Load(), s.serverErrors.Load(), s.netErrors.Load(), cf.recovery.Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "\nTransactions sent %d, accepted %d; lost %d, failed %d, converted wrongly %d, with more than one outcome %d; outbox empty at the end.\n",
		sent, accepted, lost, failed, wrong, twice)
	fmt.Fprintf(&b, "Deliveries of a transaction already converted (delivered again after a node's death, converted once): %.0f.\n", duplicates)
	b.WriteString("Its connections: the services connected to the node when it was killed. Failover: from the SIGKILL until another node leads transactions.convert (polled with rabbitmqctl, so it includes the poll's own time). Converting again: from the SIGKILL until a transaction posted then is processed. Recovery: from the node's restart until a transaction posted then is processed.\n")
	return b.String()
}
