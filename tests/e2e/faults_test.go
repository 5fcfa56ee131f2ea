//go:build faults

// The fault suite: `make test-faults`. It stops and restarts the machine's
// PostgreSQL and RabbitMQ, so it runs on its own (a build tag keeps it out
// of `go test ./...`), and it starts them again even when it fails.

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
)

// faultRate is the steady load, in transactions a second, that runs through
// every fault.
const faultRate = 200

func TestFaults(t *testing.T) {
	build(t)
	pgVersion := postgresVersion(t)
	// Whatever happens, leave PostgreSQL and RabbitMQ running.
	t.Cleanup(func() {
		_ = exec.Command("rabbitmqctl", "start_app").Run()
		_ = exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", pgVersion, "main", "start").Run()
		_ = exec.Command("rabbitmqctl", "await_startup").Run()
	})

	f := &faultStack{t: t, dbURL: pgtest.NewDatabase(t)}
	amqpURL := amqptest.NewVhost(t)
	f.env = []string{"DATABASE_URL=" + f.dbURL, "AMQP_URL=" + amqpURL, "LOG_FORMAT=json", "LOG_LEVEL=info", "OTEL_SDK_DISABLED=true", "REQUEST_TIMEOUT=3s"}
	t.Cleanup(f.stopAll)
	ratesURL := f.startRates()

	f.addAPI()
	f.addConverter(ratesURL)

	l := startLoad(f, faultRate)

	var results []phaseResult
	phase := func(name string, fault func()) { results = append(results, l.inject(name, fault)) }
	api := func(i int) *instance { f.mu.Lock(); defer f.mu.Unlock(); return f.apis[i] }
	conv := func(i int) *instance { f.mu.Lock(); defer f.mu.Unlock(); return f.convs[i] }

	phase("steady load, no fault", func() { time.Sleep(10 * time.Second) })
	phase("RabbitMQ stopped for 12 s (stop_app, start_app)", func() {
		rabbitmqctl(t, "stop_app")
		time.Sleep(12 * time.Second)
		rabbitmqctl(t, "start_app")
	})
	phase("PostgreSQL restarted", func() {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", pgVersion, "main", "restart").CombinedOutput()
		if err != nil {
			t.Fatalf("restart PostgreSQL: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
	})
	phase("converter killed (SIGKILL) and started again", func() {
		c := conv(0)
		c.proc.signal(syscall.SIGKILL)
		c.proc.wait(10 * time.Second)
		f.remove(c)
		time.Sleep(3 * time.Second)
		f.addConverter(ratesURL)
	})
	phase("api killed (SIGKILL) and started again", func() {
		a := api(0)
		a.proc.signal(syscall.SIGKILL)
		a.proc.wait(10 * time.Second)
		f.remove(a)
		time.Sleep(3 * time.Second)
		f.addAPI()
	})
	phase("converter stopped (SIGTERM) while busy, started again", func() {
		c := conv(0)
		c.proc.signal(syscall.SIGTERM)
		if !c.proc.wait(30 * time.Second) {
			t.Errorf("converter did not stop within 30 s of SIGTERM")
		} else if c.proc.err != nil {
			t.Errorf("converter exited with %v after SIGTERM", c.proc.err)
		}
		f.remove(c)
		f.addConverter(ratesURL)
	})
	phase("api stopped (SIGTERM) while busy, started again", func() {
		a := api(0)
		f.addAPI()
		f.remove(a) // clients move to the new one; the old one finishes what it has
		a.proc.signal(syscall.SIGTERM)
		if !a.proc.wait(30 * time.Second) {
			t.Errorf("api did not stop within 30 s of SIGTERM")
		} else if a.proc.err != nil {
			t.Errorf("api exited with %v after SIGTERM", a.proc.err)
		}
		f.addAPI()
	})
	phase("rates provider answers 503 for 60 s, then 3 s a call for 20 s (converter's cache cold)", func() {
		// Rates of past days are cached for good: a fresh converter, whose
		// cache is empty, makes every (currency, day) ask the provider. It
		// is started, and ready, before the outage: a converter whose
		// provider is down says it is not ready.
		old := conv(0)
		f.addConverter(ratesURL)
		f.rates.mode.Store("down")
		old.proc.signal(syscall.SIGTERM)
		old.proc.wait(30 * time.Second)
		f.remove(old)
		time.Sleep(60 * time.Second)
		f.rates.mode.Store("slow")
		time.Sleep(20 * time.Second)
		f.rates.mode.Store("ok")
	})
	phase("two apis and two converters, one of each killed (SIGKILL)", func() {
		f.addAPI()
		f.addConverter(ratesURL)
		time.Sleep(10 * time.Second)
		a, c := api(0), conv(0)
		a.proc.signal(syscall.SIGKILL)
		c.proc.signal(syscall.SIGKILL)
		a.proc.wait(10 * time.Second)
		c.proc.wait(10 * time.Second)
		f.remove(a)
		f.remove(c)
		time.Sleep(10 * time.Second)
	})

	// Afterwards: every accepted transaction is processed exactly once, with
	// the right amount, and nothing waits in the outbox.
	accepted := l.stop()
	lost, failed, wrong := drainAndCheck(t, f, accepted, 5*time.Minute)
	var retried, maxAttempts int
	if conn, err := pgx.Connect(context.Background(), f.dbURL); err == nil {
		_ = conn.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE attempts > 1), coalesce(max(attempts), 0) FROM conversion_outcomes`).Scan(&retried, &maxAttempts)
		conn.Close(context.Background())
	}

	f.allReady()

	report := faultReport(results, len(accepted), lost, failed, wrong, l.sent.Load())
	report += fmt.Sprintf("%d transactions were converted after more than one delivery through the retry (delay) queues, while the rates provider was away; the most attempts one took: %d.\n", retried, maxAttempts)
	writeReport(t, "FAULTS_REPORT_DIR", "faults", report)
	for _, r := range results {
		r.checkAnswers(t)
		if m := time.Duration(r.stats.max503.Load()); m > 6*time.Second {
			t.Errorf("%s: a 503 took %s: clients were kept waiting", r.name, m)
		}
	}
}

func postgresVersion(t *testing.T) string {
	t.Helper()
	entries, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(entries) == 0 {
		t.Fatalf("the fault suite restarts the local PostgreSQL with pg_ctlcluster; /etc/postgresql: %v", err)
	}
	return entries[len(entries)-1].Name()
}

func rabbitmqctl(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("rabbitmqctl", args...).CombinedOutput(); err != nil {
		t.Fatalf("rabbitmqctl %v: %v\n%s", args, err, out)
	}
}

func faultReport(results []phaseResult, accepted, lost, failed, wrong int, sent int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Fault suite, %s, steady load %d transactions/s (clients retry with the same transaction_id when they get no answer or 503)\n\n", time.Now().UTC().Format(time.RFC3339), faultRate)
	b.WriteString("| fault | requests | 201/200 | 503 (slowest) | other 5xx | no answer | recovery |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		s := r.stats
		fmt.Fprintf(&b, "| %s | %d | %d | %d (%s) | %d | %d | %s |\n", r.name, s.requests.Load(), s.ok.Load(), s.unavailable.Load(),
			time.Duration(s.max503.Load()).Round(time.Millisecond), s.serverErrors.Load(), s.netErrors.Load(), r.recovery.Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "\nTransactions sent %d, accepted %d; lost %d, failed %d, converted wrongly %d; outbox empty at the end.\n", sent, accepted, lost, failed, wrong)
	b.WriteString("Recovery: from the end of the fault until a transaction posted then is processed.\n")
	return b.String()
}
