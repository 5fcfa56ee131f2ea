package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txpersister/txpersister/libs/amqpx/amqptest"
	"github.com/txpersister/txpersister/libs/testkit/pgtest"
)

// binaries holds the paths of the built commands, built once for all tests.
var binaries struct {
	once                   sync.Once
	err                    error
	api, converter, ratesd string
}

// build compiles the three commands from this checkout into a temporary
// folder, as `make build` does.
func build(t *testing.T) {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "txpersister-e2e-bin")
		if err != nil {
			binaries.err = err
			return
		}
		root, err := filepath.Abs("../..")
		if err != nil {
			binaries.err = err
			return
		}
		for _, b := range []struct {
			out *string
			pkg string
		}{{&binaries.api, "./services/api"}, {&binaries.converter, "./services/converter"}, {&binaries.ratesd, "./tools/ratesd"}} {
			*b.out = filepath.Join(dir, filepath.Base(b.pkg))
			cmd := exec.Command("go", "build", "-o", *b.out, b.pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go build %s: %w\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
}

// stack is one running pipeline.
type stack struct {
	t         *testing.T
	api       string // base URL of the public API
	apiAdmin  string
	convAdmin string
	ratesd    string // base URL of ratesd, without /v1
	dbURL     string
	amqpURL   string
	// logs maps each process (ratesd, api, converter) to the file its
	// output, JSON log lines, goes to.
	logs map[string]string
	// pids maps each process (ratesd, api, converter) to its process id.
	pids map[string]int
	// client talks to the api and holds every request and answer against
	// services/api/openapi.yaml, failing the test on a mismatch
	// (contractClient). Use it for every request to s.api.
	client *http.Client
}

// options change how a stack starts.
type options struct {
	// ratesURL replaces ratesd as the converter's RATES_API_URL; it may
	// contain "{ratesd}", replaced with ratesd's base URL.
	ratesURL    string
	retryDelays string
	// amqpVia, when set, maps the test's AMQP URL to the one both services
	// use, e.g. through a proxy that can cut the broker away.
	amqpVia func(amqpURL string) string
	// otlpEndpoint, when set, turns tracing on in the api and the converter
	// and has them export spans there over OTLP/HTTP (e.g.
	// "http://127.0.0.1:4318"), flushed every 100 ms. Unset, the
	// OpenTelemetry SDK is disabled (OTEL_SDK_DISABLED=true).
	otlpEndpoint string
	// apiKeys, when set, is the api's API_KEYS; unset, AUTH_DISABLED=true.
	apiKeys string
	// apiEnv is more of the api's environment, e.g. "RATE_LIMIT=1".
	apiEnv []string
	// converterEnv and ratesdEnv are more of the converter's and
	// ratesd's environment, e.g. "RATE_RULE=as-of", "ECB_SOURCE=…".
	converterEnv, ratesdEnv []string
	// converterUnready starts the converter without waiting for its
	// /readyz (only for /healthz): its rates provider is broken on purpose.
	converterUnready bool
	// prepare, when set, is run on the stack's empty database before the
	// services start (and migrate it), e.g. to build an older schema.
	prepare func(t *testing.T, dbURL string)
}

// handedOut holds every address freeAddr has returned in this process.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// freeAddr returns a loopback address with a port nobody listens on now and
// that it has not returned before. The port is closed again before the
// address is returned, and the kernel may hand the same port to the next
// caller: without the memory of what was handed out, two services of one
// stack could be given one port (the api's public port was once the
// converter's admin port too, and the converter could not start).
func freeAddr(t *testing.T) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return addr
		}
	}
	t.Fatal("no free port found that was not handed out before")
	return ""
}

// start builds the commands if needed and starts ratesd, the api and the
// converter on free ports, each stopped with SIGTERM when the test ends.
func start(t *testing.T, o options) *stack {
	t.Helper()
	build(t)
	s := &stack{t: t, dbURL: pgtest.NewDatabase(t), amqpURL: amqptest.NewVhost(t), logs: map[string]string{}, pids: map[string]int{}}
	if o.prepare != nil {
		o.prepare(t, s.dbURL)
	}
	ratesAddr, apiAddr, apiAdmin, convAdmin := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	s.ratesd = "http://" + ratesAddr
	s.api = "http://" + apiAddr
	s.apiAdmin = "http://" + apiAdmin
	s.convAdmin = "http://" + convAdmin
	ratesURL := s.ratesd + "/v1"
	if o.ratesURL != "" {
		ratesURL = strings.ReplaceAll(o.ratesURL, "{ratesd}", s.ratesd)
	}
	if o.retryDelays == "" {
		o.retryDelays = "200ms,400ms,800ms"
	}
	servicesAMQP := s.amqpURL
	if o.amqpVia != nil {
		servicesAMQP = o.amqpVia(s.amqpURL)
	}
	common := []string{"DATABASE_URL=" + s.dbURL, "AMQP_URL=" + servicesAMQP, "LOG_FORMAT=json", "LOG_LEVEL=debug"}
	if o.otlpEndpoint == "" {
		common = append(common, "OTEL_SDK_DISABLED=true")
	} else {
		common = append(common, "OTEL_SDK_DISABLED=false", "OTEL_EXPORTER_OTLP_ENDPOINT="+o.otlpEndpoint,
			"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_TRACES_EXPORTER=otlp", "OTEL_TRACES_SAMPLER=parentbased_always_on",
			"OTEL_BSP_SCHEDULE_DELAY=100")
	}

	ratesd := s.run("ratesd", binaries.ratesd, append([]string{"RATESD_ADDR=" + ratesAddr, "LOG_FORMAT=json"}, o.ratesdEnv...))
	ratesd.waitReady(t, s.ratesd+"/healthz", 60*time.Second)
	access := "AUTH_DISABLED=true"
	if o.apiKeys != "" {
		access = "API_KEYS=" + o.apiKeys
	}
	s.client = contractClient(t, s.api, o.apiKeys != "")
	api := s.run("api", binaries.api, append(append(common, "HTTP_ADDR="+apiAddr, "ADMIN_ADDR="+apiAdmin, access), o.apiEnv...))
	converter := s.run("converter", binaries.converter, append(append(common, "ADMIN_ADDR="+convAdmin, "RATES_API_URL="+ratesURL, "RETRY_DELAYS="+o.retryDelays), o.converterEnv...))
	api.waitReady(t, s.apiAdmin+"/readyz", 60*time.Second)
	if o.converterUnready {
		converter.waitReady(t, s.convAdmin+"/healthz", 60*time.Second)
	} else {
		converter.waitReady(t, s.convAdmin+"/readyz", 60*time.Second)
	}
	return s
}

// run starts a service, its output in a log file shown when the test
// fails, and stops it with SIGINT (then SIGKILL) when the test ends; a
// service that does not then exit cleanly fails the test.
func (s *stack) run(name, bin string, env []string) *process {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	p := startProcess(s.t, name, cmd, true)
	s.logs[name] = p.log
	s.pids[name] = p.pid
	return p
}

// process is a command started by startProcess.
type process struct {
	name string
	pid  int
	log  string     // the path of its standard output and error
	done chan error // its exit, sent once
}

// startProcess starts cmd with its output in a log file of the test's own,
// and stops it with SIGINT (SIGKILL after 15 s) when the test ends, showing
// the end of its log if the test failed. With mustExitCleanly an exit with
// an error after SIGINT fails the test (our services drain and exit 0);
// otherwise it is only logged (Prometheus, Jaeger).
func startProcess(t *testing.T, name string, cmd *exec.Cmd, mustExitCleanly bool) *process {
	t.Helper()
	p := &process{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan error, 1)}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p.pid = cmd.Process.Pid
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-p.done:
			switch {
			case err != nil && mustExitCleanly:
				t.Errorf("%s exited with %v after SIGINT", name, err)
			case err != nil:
				t.Logf("%s exited: %v", name, err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop within 15 s of SIGINT; killed: %v", name, <-p.done)
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("--- %s log ---\n%s", name, tail(b, 60))
		}
	})
	return p
}

// waitReady waits up to timeout for url to answer 200 OK, and fails the
// test at once, with the end of the log, if the process exits meanwhile.
func (p *process) waitReady(t *testing.T, url string, timeout time.Duration) {
	t.Helper()
	waitURL(t, url, timeout, func() {
		select {
		case err := <-p.done:
			p.done <- err // for the cleanup
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited before it was ready: %v\n%s", p.name, err, tail(b, 40))
		default:
		}
	})
}

// waitURL waits up to timeout for url to answer 200 OK, calling check, when
// not nil, before each try.
func waitURL(t *testing.T, url string, timeout time.Duration, check func()) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if check != nil {
			check()
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("answered %s", resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s (last: %v)", url, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tail(b []byte, lines int) string {
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// post sends body to path and returns the status and decoded JSON answer.
func (s *stack) post(path, body string) (int, map[string]any) {
	s.t.Helper()
	resp, err := s.client.Post(s.api+path, "application/json", strings.NewReader(body))
	if err != nil {
		s.t.Fatalf("POST %s: %v", path, err)
	}
	return decode(s.t, resp)
}

func (s *stack) get(path string) (int, map[string]any) {
	s.t.Helper()
	resp, err := s.client.Get(s.api + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	return decode(s.t, resp)
}

func decode(t *testing.T, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %s", resp.StatusCode, b)
	}
	return resp.StatusCode, m
}

// waitStatus polls a transaction until its status is one of want, and
// returns it; it fails the test after timeout.
func (s *stack) waitStatus(id string, timeout time.Duration, want ...string) map[string]any {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		code, res := s.get("/v1/transactions/" + id)
		if code == http.StatusOK {
			last = res
			for _, w := range want {
				if res["status"] == w {
					return res
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("transaction %s not %v within %s; last seen %v", id, want, timeout, last)
	return nil
}

// metric returns the value of a metric line (name with labels, exactly as
// exposed) from an admin endpoint, or 0 when absent.
func metric(t *testing.T, adminURL, name string) float64 {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric %s: value %q: %v", name, v, err)
			}
			return f
		}
	}
	return 0
}
