//go:build faults || cluster

// What the fault suite (faults_test.go) and the cluster suite
// (cluster_test.go) share: processes of the services started and killed at
// will, a steady load of clients that never give up on a payment, and the
// check that every accepted transaction was converted once and rightly.

package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/txpersister/txpersister/libs/txmodel"
)

// proc is one running service process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// instance is an api or a converter: its process and addresses.
type instance struct {
	proc  *proc
	http  string // the api's public base URL; empty for a converter
	admin string
}

// faultStack runs ratesd (behind a provider that can fail or slow down),
// any number of apis and converters, on one database and vhost.
type faultStack struct {
	t      *testing.T
	dbURL  string
	env    []string
	rates  *switchableRates
	mu     sync.Mutex
	apis   []*instance
	convs  []*instance
	procs  []*proc
	serial int
}

// switchableRates is the converter's rates provider: ratesd, or 503s, or
// ratesd answering slowly.
type switchableRates struct {
	mode  atomic.Value // "ok", "down" or "slow"
	proxy *httputil.ReverseProxy
}

func (r *switchableRates) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch r.mode.Load() {
	case "down":
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	case "slow":
		time.Sleep(3 * time.Second)
	}
	r.proxy.ServeHTTP(w, req)
}

// startRates starts ratesd behind f.rates, a provider the test can make
// fail or slow down, and returns the converter's RATES_API_URL for it.
func (f *faultStack) startRates() string {
	f.t.Helper()
	ratesAddr := freeAddr(f.t)
	f.spawn("ratesd", binaries.ratesd, []string{"RATESD_ADDR=" + ratesAddr, "LOG_FORMAT=json"})
	waitURL(f.t, "http://"+ratesAddr+"/healthz", 30*time.Second, nil)
	target, _ := url.Parse("http://" + ratesAddr)
	f.rates = &switchableRates{proxy: httputil.NewSingleHostReverseProxy(target)}
	f.rates.mode.Store("ok")
	srv := httptest.NewServer(f.rates)
	f.t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// stopAll stops every process with SIGTERM (SIGKILL after 20 s) and, when
// the test failed, logs the end of each one's log.
func (f *faultStack) stopAll() {
	f.mu.Lock()
	procs := slices.Clone(f.procs)
	f.mu.Unlock()
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if !p.wait(20 * time.Second) {
			p.signal(syscall.SIGKILL)
		}
		if f.t.Failed() {
			b, _ := os.ReadFile(p.log)
			f.t.Logf("--- %s log ---\n%s", p.name, tail(b, 30))
		}
	}
}

// allReady reports an error for each api and converter that stopped by
// itself or is not ready.
func (f *faultStack) allReady() {
	f.t.Helper()
	f.mu.Lock()
	ins := append(slices.Clone(f.apis), f.convs...)
	f.mu.Unlock()
	for _, in := range ins {
		if !in.proc.running() {
			f.t.Errorf("%s stopped by itself", in.proc.name)
		} else if resp, err := http.Get(in.admin + "/readyz"); err != nil {
			f.t.Errorf("%s not ready at the end: %v", in.proc.name, err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				f.t.Errorf("%s not ready at the end: %s", in.proc.name, resp.Status)
			}
		}
	}
}

func (f *faultStack) spawn(name, bin string, env []string) *proc {
	f.t.Helper()
	logPath := filepath.Join(f.t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		f.t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	f.mu.Lock()
	f.procs = append(f.procs, p)
	f.mu.Unlock()
	return p
}

func (f *faultStack) addAPI() *instance {
	f.t.Helper()
	f.serial++
	addr, admin := freeAddr(f.t), freeAddr(f.t)
	p := f.spawn(fmt.Sprintf("api-%d", f.serial), binaries.api, append(slices.Clone(f.env), "HTTP_ADDR="+addr, "ADMIN_ADDR="+admin, "AUTH_DISABLED=true"))
	in := &instance{proc: p, http: "http://" + addr, admin: "http://" + admin}
	waitURL(f.t, in.admin+"/readyz", 60*time.Second, nil)
	f.mu.Lock()
	f.apis = append(f.apis, in)
	f.mu.Unlock()
	return in
}

func (f *faultStack) addConverter(ratesURL string) *instance {
	f.t.Helper()
	f.serial++
	admin := freeAddr(f.t)
	p := f.spawn(fmt.Sprintf("converter-%d", f.serial), binaries.converter, append(slices.Clone(f.env), "ADMIN_ADDR="+admin,
		"RATES_API_URL="+ratesURL, "RETRY_DELAYS=1s,2s,4s,8s,15s,30s,45s", "RATES_TIMEOUT=5s"))
	in := &instance{proc: p, admin: "http://" + admin}
	waitURL(f.t, in.admin+"/readyz", 60*time.Second, nil)
	f.mu.Lock()
	f.convs = append(f.convs, in)
	f.mu.Unlock()
	return in
}

// liveAPIs returns the base URLs of the apis that run.
func (f *faultStack) liveAPIs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var urls []string
	for _, in := range f.apis {
		if in.proc.running() {
			urls = append(urls, in.http)
		}
	}
	return urls
}

// remove forgets an instance that was stopped on purpose.
func (f *faultStack) remove(in *instance) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apis = slices.DeleteFunc(f.apis, func(x *instance) bool { return x == in })
	f.convs = slices.DeleteFunc(f.convs, func(x *instance) bool { return x == in })
}

// phaseStats is what clients saw during one phase.
type phaseStats struct {
	requests, ok, unavailable, serverErrors, netErrors, other atomic.Int64
	max503                                                    atomic.Int64 // nanoseconds
	no503RetryAfter                                           atomic.Int64
}

// loader drives a steady load of unique transactions, retrying each with
// the same transaction_id and content until it gets an answer that is not
// "try again": a client that never gives up on an accepted payment.
type loader struct {
	f        *faultStack
	rate     int // transactions a second
	canaries int // sent by inject
	phase    atomic.Pointer[phaseStats]
	mu       sync.Mutex
	accepted map[string]txmodel.Transaction
	rejected map[string]int // id → a final status other than 200/201
	sent     atomic.Int64
	client   *http.Client
	wg       sync.WaitGroup
	stopRun  context.CancelFunc
	done     chan struct{} // closed when run has returned
}

// startLoad starts a steady load of rate transactions a second on f.
func startLoad(f *faultStack, rate int) *loader {
	l := &loader{
		f: f, rate: rate, accepted: map[string]txmodel.Transaction{}, rejected: map[string]int{},
		client: &http.Client{Timeout: 10 * time.Second}, done: make(chan struct{}),
	}
	l.phase.Store(&phaseStats{})
	ctx, cancel := context.WithCancel(context.Background())
	l.stopRun = cancel
	go func() { l.run(ctx); close(l.done) }()
	return l
}

// stop ends the load, waits for its clients' last answers, reports the
// transactions that got a final answer other than 201/200, and returns
// the accepted ones.
func (l *loader) stop() map[string]txmodel.Transaction {
	l.f.t.Helper()
	l.stopRun()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.rejected) > 0 {
		l.f.t.Errorf("%d transactions got a final answer other than 201/200: %v", len(l.rejected), firstN(l.rejected, 5))
	}
	return l.accepted
}

var faultCurrencies = []struct{ code, amount string }{{"USD", "100.25"}, {"GBP", "12.50"}, {"JPY", "12345"}, {"CHF", "7.05"}, {"EUR", "3.99"}, {"SEK", "250.00"}}

func (l *loader) run(ctx context.Context) {
	tick := time.NewTicker(time.Second / time.Duration(l.rate))
	defer tick.Stop()
	sem := make(chan struct{}, 400)
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			l.wg.Wait()
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // 400 in flight already: the load pauses rather than piles up
		}
		l.wg.Add(1)
		go func() {
			defer func() { <-sem; l.wg.Done() }()
			c := faultCurrencies[n%len(faultCurrencies)]
			day := 2 + n%19
			l.send(ctx, fmt.Sprintf("fault-%07d", n), c.code, c.amount, fmt.Sprintf("2024-09-%02dT10:00:00Z", day))
		}()
	}
}

func (l *loader) send(ctx context.Context, id, currency, amount, ts string) {
	body := fmt.Sprintf(`{"transaction_id": %q, "user_id": "u%d", "amount": %q, "currency": %q, "timestamp": %q}`, id, rand.IntN(50), amount, currency, ts)
	l.sent.Add(1)
	deadline := time.Now().Add(5 * time.Minute)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		apis := l.f.liveAPIs()
		if len(apis) == 0 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		st := l.phase.Load()
		st.requests.Add(1)
		start := time.Now()
		resp, err := l.client.Post(apis[(attempt+rand.IntN(len(apis)))%len(apis)]+"/v1/transactions", "application/json", strings.NewReader(body))
		if err != nil {
			st.netErrors.Add(1)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drained for the connection's reuse; the status is the answer
		resp.Body.Close()
		elapsed := time.Since(start)
		switch {
		case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
			st.ok.Add(1)
			tx, err := txmodel.ParseTransaction([]byte(body), time.Now())
			if err != nil {
				panic(err)
			}
			l.mu.Lock()
			l.accepted[id] = tx
			l.mu.Unlock()
			return
		case resp.StatusCode == http.StatusServiceUnavailable:
			st.unavailable.Add(1)
			for {
				m := st.max503.Load()
				if int64(elapsed) <= m || st.max503.CompareAndSwap(m, int64(elapsed)) {
					break
				}
			}
			wait := 200 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				wait = time.Duration(s) * time.Second
			} else {
				st.no503RetryAfter.Add(1)
			}
			time.Sleep(wait)
		case resp.StatusCode >= 500:
			st.serverErrors.Add(1)
			time.Sleep(200 * time.Millisecond)
		default:
			st.other.Add(1)
			l.mu.Lock()
			l.rejected[id] = resp.StatusCode
			l.mu.Unlock()
			return
		}
		if ctx.Err() != nil && time.Since(start) > time.Minute {
			return
		}
	}
}

// phaseResult is one row of the report.
type phaseResult struct {
	name     string
	stats    *phaseStats
	recovery time.Duration
}

// checkAnswers reports an error when the phase's clients got a 5xx other
// than 503, or a 503 without Retry-After.
func (r phaseResult) checkAnswers(t *testing.T) {
	t.Helper()
	if n := r.stats.serverErrors.Load(); n > 0 {
		t.Errorf("%s: clients got %d answers 5xx other than 503", r.name, n)
	}
	if n := r.stats.no503RetryAfter.Load(); n > 0 {
		t.Errorf("%s: %d answers 503 without Retry-After", r.name, n)
	}
}

// writeReport logs report and, when the environment variable dirVar names
// a folder, writes it there as prefix-<UTC time>.md.
func writeReport(t *testing.T, dirVar, prefix, report string) {
	t.Helper()
	t.Log("\n" + report)
	dir := os.Getenv(dirVar)
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		name := filepath.Join(dir, prefix+"-"+time.Now().UTC().Format("20060102T150405Z")+".md")
		_ = os.WriteFile(name, []byte(report), 0o644)
		t.Logf("report written to %s", name)
	}
}

// inject runs fault under the load, with fresh phase statistics, then
// measures the recovery: from the end of the fault until a transaction
// posted then is processed. A steady stretch of 3 s follows.
func (l *loader) inject(name string, fault func()) phaseResult {
	l.f.t.Helper()
	st := &phaseStats{}
	l.phase.Store(st)
	l.f.t.Logf("fault: %s", name)
	fault()
	start := time.Now()
	l.canaries++
	id := fmt.Sprintf("canary-%02d", l.canaries)
	l.send(context.Background(), id, "USD", "1.00", "2024-09-11T10:00:00Z")
	waitProcessed(l.f.t, l.f, id, 5*time.Minute)
	r := phaseResult{name: name, stats: st, recovery: time.Since(start)}
	time.Sleep(3 * time.Second)
	return r
}

func firstN(m map[string]int, n int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if len(out) == n {
			break
		}
		out[k] = v
	}
	return out
}

func waitProcessed(t *testing.T, f *faultStack, id string, timeout time.Duration) {
	t.Helper()
	if !processedWithin(f, id, timeout) {
		t.Fatalf("canary %s not processed within %s", id, timeout)
	}
}

// processedWithin reports whether the transaction id is processed within
// timeout, as a live api answers.
func processedWithin(f *faultStack, id string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, base := range f.liveAPIs() {
			resp, err := http.Get(base + "/v1/transactions/" + id)
			if err != nil {
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"status":"processed"`) {
				return true
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// drainAndCheck waits until every accepted transaction has an outcome, then
// checks each: stored once, converted once with amount × rate rounded half
// to even, and the outbox empty. It returns how many were lost (accepted,
// and without a row or an outcome), failed, and wrongly converted.
func drainAndCheck(t *testing.T, f *faultStack, accepted map[string]txmodel.Transaction, timeout time.Duration) (lost, failed, wrong int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ids := make([]string, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	deadline := time.Now().Add(timeout)
	var pending int
	for {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM accepted_transactions t LEFT JOIN conversion_outcomes c USING (tenant, transaction_id)
			WHERE t.transaction_id = ANY($1) AND c.transaction_id IS NULL`, ids).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	rows, err := conn.Query(ctx, `SELECT t.transaction_id, t.amount::text, t.currency, c.status, c.converted_amount::text, c.rate_quotes->>t.currency, c.failure_reason
		FROM accepted_transactions t LEFT JOIN conversion_outcomes c USING (tenant, transaction_id) WHERE t.transaction_id = ANY($1)`, ids)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for rows.Next() {
		var id, amount, currency string
		var status, converted, quote, reason *string
		if err := rows.Scan(&id, &amount, &currency, &status, &converted, &quote, &reason); err != nil {
			t.Fatal(err)
		}
		seen[id] = true
		tx := accepted[id]
		if amount != tx.Amount.String() || currency != tx.Amount.Currency.Code() {
			t.Errorf("%s stored as %s %s, accepted as %s", id, amount, currency, tx.Amount)
		}
		switch {
		case status == nil:
			lost++
		case *status == "failed":
			failed++
			if reason == nil || *reason == "" {
				t.Errorf("%s failed without a reason", id)
			}
		default:
			// Recomputed from the quote the conversion says it used:
			// amount ÷ q(currency) for EUR; a euro's quote is 1.
			q := mustDecimal(t, "1")
			if currency != "EUR" {
				if quote == nil {
					t.Fatalf("%s processed without the quote of %s", id, currency)
				}
				q = mustDecimal(t, *quote)
			}
			if want := txmodel.ConvertQuoted(tx.Amount, q, mustDecimal(t, "1"), txmodel.MustCurrency("EUR")).String(); want != *converted {
				wrong++
				t.Errorf("%s converted to %s, want %s", id, *converted, want)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !seen[id] {
			lost++
			t.Errorf("%s was accepted and is not stored", id)
		}
	}
	if lost > 0 {
		t.Errorf("%d accepted transactions lost (no outcome after %s)", lost, timeout)
	}
	var outbox int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox); err != nil {
		t.Fatal(err)
	}
	if outbox != 0 {
		t.Errorf("%d entries left in the outbox", outbox)
	}
	if failed > 0 {
		t.Errorf("%d transactions failed: with the provider back within the retries, every one must be processed", failed)
	}
	return lost, failed, wrong
}
