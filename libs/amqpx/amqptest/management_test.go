package amqptest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// call is one request the fake management API received.
type call struct {
	Method string
	Path   []string // /api/ and the unescaped segments after it
	Body   map[string]string
	Reason string // X-Reason
}

// fakeManagement speaks the few endpoints of RabbitMQ's management API
// that httpAdmin uses, as user guest:guest, and records every request.
type fakeManagement struct {
	mu     sync.Mutex
	calls  []call
	vhosts map[string]bool
	// conns are the connections listed per vhost once hidden, the number
	// of listings still to answer with none, reaches zero.
	conns  map[string][]string
	hidden int
	// gone are connection names whose DELETE answers 404.
	gone map[string]bool
	// queues is the raw answer to GET /api/queues/{vhost}.
	queues map[string]string
}

func newFakeManagement(t *testing.T) (*fakeManagement, *httptest.Server) {
	t.Helper()
	f := &fakeManagement{vhosts: map[string]bool{"/": true}, conns: map[string][]string{}, gone: map[string]bool{}, queues: map[string]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeManagement) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != "guest" || p != "guest" {
		http.Error(w, `{"error":"not_authorised"}`, http.StatusUnauthorized)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/api/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	c := call{Method: r.Method, Reason: r.Header.Get("X-Reason")}
	for _, s := range strings.Split(rest, "/") {
		seg, err := url.PathUnescape(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.Path = append(c.Path, seg)
	}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
			return
		}
		if err := json.Unmarshal(b, &c.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	f.calls = append(f.calls, c)

	p := c.Path
	switch {
	case r.Method == http.MethodGet && len(p) == 1 && p[0] == "vhosts":
		var rows []map[string]string
		for v := range f.vhosts {
			rows = append(rows, map[string]string{"name": v})
		}
		_ = json.NewEncoder(w).Encode(rows)
	case r.Method == http.MethodPut && len(p) == 2 && p[0] == "vhosts":
		f.vhosts[p[1]] = true
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodDelete && len(p) == 2 && p[0] == "vhosts":
		if !f.vhosts[p[1]] {
			http.Error(w, `{"error":"Object Not Found","reason":"Not Found"}`, http.StatusNotFound)
			return
		}
		delete(f.vhosts, p[1])
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPut && len(p) == 3 && p[0] == "permissions":
		if !f.vhosts[p[1]] {
			http.Error(w, `{"error":"bad_request","reason":"vhost_or_user_not_found"}`, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case (len(p) == 3 && p[0] == "vhosts" || len(p) == 2 && p[0] == "queues") && !f.vhosts[p[1]]:
		http.Error(w, `{"error":"Object Not Found","reason":"Not Found"}`, http.StatusNotFound)
	case r.Method == http.MethodGet && len(p) == 3 && p[0] == "vhosts" && p[2] == "connections":
		rows := []map[string]string{}
		if f.hidden > 0 {
			f.hidden--
		} else {
			for _, name := range f.conns[p[1]] {
				rows = append(rows, map[string]string{"name": name, "vhost": p[1]})
			}
		}
		_ = json.NewEncoder(w).Encode(rows)
	case r.Method == http.MethodDelete && len(p) == 2 && p[0] == "connections":
		if f.gone[p[1]] {
			http.Error(w, `{"error":"Object Not Found","reason":"Not Found"}`, http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodGet && len(p) == 2 && p[0] == "queues":
		_, _ = io.WriteString(w, f.queues[p[1]])
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeManagement) recorded() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// useFake points the helpers at srv through the management API.
func useFake(t *testing.T, srv *httptest.Server) {
	t.Helper()
	t.Setenv(EnvAdmin, "http")
	t.Setenv(EnvManagementURL, srv.URL)
}

func TestHTTPNewVhost(t *testing.T) {
	f, srv := newFakeManagement(t)
	useFake(t, srv)
	t.Setenv(EnvURL, DefaultURL) // NewVhost checks the real broker answers first

	var vhost string
	t.Run("sub", func(t *testing.T) {
		vhost = Vhost(t, NewVhost(t))
	})
	all := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	want := []call{
		{Method: "PUT", Path: []string{"vhosts", vhost}},
		{Method: "PUT", Path: []string{"permissions", vhost, "guest"}, Body: all},
		{Method: "DELETE", Path: []string{"vhosts", vhost}},
	}
	if diff := cmp.Diff(want, f.recorded()); diff != "" {
		t.Errorf("management API calls (-want +got):\n%s", diff)
	}
}

func TestHTTPCloseConnections(t *testing.T) {
	f, srv := newFakeManagement(t)
	useFake(t, srv)
	names := []string{"127.0.0.1:40001 -> 127.0.0.1:5672", "odd/name?#%", "already closed"}
	f.vhosts["a/b"] = true
	f.conns["a/b"] = names
	f.gone["already closed"] = true
	f.hidden = 2 // the API does not list new connections at once

	CloseConnections(t, "amqp://guest:guest@127.0.0.1:5672/a%2Fb")
	list := call{Method: "GET", Path: []string{"vhosts", "a/b", "connections"}}
	want := []call{list, list, list}
	for _, n := range names {
		want = append(want, call{Method: "DELETE", Path: []string{"connections", n}, Reason: "amqptest: forced close"})
	}
	if diff := cmp.Diff(want, f.recorded()); diff != "" {
		t.Errorf("management API calls (-want +got):\n%s", diff)
	}
}

func TestHTTPQueues(t *testing.T) {
	f, srv := newFakeManagement(t)
	useFake(t, srv)
	// Trimmed from a RabbitMQ 3.13 answer.
	f.queues["/"] = `[
	  {"arguments":{"x-queue-type":"quorum","x-delivery-limit":20,"x-dead-letter-exchange":""},
	   "auto_delete":false,"durable":true,"name":"work","node":"rabbit@rabbitmq","type":"quorum","vhost":"/","messages":0},
	  {"arguments":{},"durable":true,"name":"plain","type":"classic","vhost":"/"}
	]`

	want := map[string]Queue{
		"work": {Type: "quorum", Args: map[string]any{
			"x-queue-type": "quorum", "x-delivery-limit": float64(20), "x-dead-letter-exchange": "",
		}},
		"plain": {Type: "classic", Args: map[string]any{}},
	}
	if diff := cmp.Diff(want, Queues(t, "amqp://guest:guest@127.0.0.1:5672/")); diff != "" {
		t.Errorf("Queues (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]call{{Method: "GET", Path: []string{"queues", "/"}}}, f.recorded()); diff != "" {
		t.Errorf("management API calls (-want +got):\n%s", diff)
	}
}

func TestHTTPFailures(t *testing.T) {
	_, srv := newFakeManagement(t)
	for _, tc := range []struct {
		name    string
		mgmtURL string
		amqpURL string
		fn      func(testing.TB)
		want    []string
	}{
		{
			name: "wrong credentials", mgmtURL: srv.URL, amqpURL: "amqp://guest:wrong@127.0.0.1:5672/",
			fn:   func(tb testing.TB) { Queues(tb, "amqp://guest:wrong@127.0.0.1:5672/") },
			want: []string{"401 Unauthorized", "not_authorised", `user "guest" needs the administrator tag`},
		},
		{
			name: "no management API", mgmtURL: "http://" + freeAddr(t), amqpURL: DefaultURL,
			fn:   func(tb testing.TB) { NewVhost(tb) },
			want: []string{"management API not reachable", "rabbitmq_management", EnvManagementURL, "install rabbitmqctl"},
		},
		{
			name: "unknown vhost", mgmtURL: srv.URL, amqpURL: DefaultURL,
			fn:   func(tb testing.TB) { CloseConnections(tb, "amqp://guest:guest@127.0.0.1:5672/nope") },
			want: []string{`list the connections of vhost "nope"`, "404 Not Found"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvAdmin, "http")
			t.Setenv(EnvManagementURL, tc.mgmtURL)
			t.Setenv(EnvURL, tc.amqpURL)
			msg := fatalMessage(t, tc.fn)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("failed with %q, want it to contain %q", msg, w)
				}
			}
		})
	}
}

func TestNewAdmin(t *testing.T) {
	for _, tc := range []struct {
		name              string
		admin, mgmt, path string
		amqpURL           string
		want              string // the management URL and user, "rabbitmqctl", or an error's text
	}{
		{name: "auto without rabbitmqctl", path: t.TempDir(), amqpURL: DefaultURL, want: "http://127.0.0.1:15672 guest:guest"},
		{name: "auto, broker elsewhere", path: t.TempDir(), amqpURL: "amqp://app:pw@mq.example:5673/v", want: "http://mq.example:15672 app:pw"},
		{name: "forced http", admin: "http", mgmt: "https://mgmt.example/rabbit", amqpURL: DefaultURL, want: "https://mgmt.example/rabbit guest:guest"},
		{name: "forced rabbitmqctl, missing", admin: "rabbitmqctl", path: t.TempDir(), amqpURL: DefaultURL, want: "rabbitmqctl is not on PATH"},
		{name: "unknown mode", admin: "ssh", amqpURL: DefaultURL, want: `TEST_AMQP_ADMIN="ssh": want rabbitmqctl, http or empty`},
		{name: "bad management URL", admin: "http", mgmt: "mgmt.example:15672", amqpURL: DefaultURL, want: "want an http:// or https:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvAdmin, tc.admin)
			t.Setenv(EnvManagementURL, tc.mgmt)
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			var got string
			switch a, err := newAdmin(tc.amqpURL); a := a.(type) {
			case nil:
				got = err.Error()
			case *httpAdmin:
				got = a.base.String() + " " + a.user + ":" + a.pass
			case ctlAdmin:
				got = "rabbitmqctl"
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("newAdmin = %q, want %q", got, tc.want)
			}
		})
	}
}
