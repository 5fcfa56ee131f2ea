package amqptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// connectionPoll is how often closeConnections asks again for a vhost's
// connections while the management API lists none yet.
const connectionPoll = 100 * time.Millisecond

// httpAdmin administers the broker through the management plugin's HTTP
// API (https://www.rabbitmq.com/docs/http-api-reference), for a broker
// whose node rabbitmqctl cannot reach, e.g. one in a container. The user
// needs the administrator tag.
type httpAdmin struct {
	base       *url.URL // e.g. http://127.0.0.1:15672
	user, pass string
	client     http.Client
}

var _ admin = (*httpAdmin)(nil)

func (a *httpAdmin) addVhost(ctx context.Context, vhost, user string) error {
	if err := a.do(ctx, http.MethodPut, nil, nil, "vhosts", vhost); err != nil {
		return fmt.Errorf("create vhost %q: %w", vhost, err)
	}
	perms := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	if err := a.do(ctx, http.MethodPut, perms, nil, "permissions", vhost, user); err != nil {
		return fmt.Errorf("grant %q all permissions on vhost %q: %w", user, vhost, err)
	}
	return nil
}

func (a *httpAdmin) deleteVhost(ctx context.Context, vhost string) error {
	if err := a.do(ctx, http.MethodDelete, nil, nil, "vhosts", vhost); err != nil {
		return fmt.Errorf("delete vhost %q: %w", vhost, err)
	}
	return nil
}

// closeConnections closes every connection the API lists for vhost. The
// API learns of a new connection only when the broker next collects
// statistics (every 5 s by default), so while it lists none this asks
// again until ctx ends: a test calls it to cut a connection it has.
func (a *httpAdmin) closeConnections(ctx context.Context, vhost string) error {
	for {
		var conns []struct {
			Name string `json:"name"`
		}
		if err := a.do(ctx, http.MethodGet, nil, &conns, "vhosts", vhost, "connections"); err != nil {
			return fmt.Errorf("list the connections of vhost %q: %w", vhost, err)
		}
		for _, c := range conns {
			err := a.do(ctx, http.MethodDelete, nil, nil, "connections", c.Name)
			if err != nil && !errors.Is(err, errNotFound) { // a connection that closed meanwhile is fine
				return fmt.Errorf("close connection %q of vhost %q: %w", c.Name, vhost, err)
			}
		}
		if len(conns) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the management API listed no connection to vhost %q before %w", vhost, context.Cause(ctx))
		case <-time.After(connectionPoll):
		}
	}
}

func (a *httpAdmin) queues(ctx context.Context, vhost string) (map[string]Queue, error) {
	var rows []struct {
		Name      string         `json:"name"`
		Type      string         `json:"type"`
		Arguments map[string]any `json:"arguments"`
	}
	if err := a.do(ctx, http.MethodGet, nil, &rows, "queues", vhost); err != nil {
		return nil, fmt.Errorf("list the queues of vhost %q: %w", vhost, err)
	}
	qs := make(map[string]Queue, len(rows))
	for _, r := range rows {
		args := r.Arguments
		if args == nil {
			args = map[string]any{}
		}
		qs[r.Name] = Queue{Type: r.Type, Args: args}
	}
	return qs, nil
}

func (a *httpAdmin) vhosts(ctx context.Context) ([]string, error) {
	var rows []struct {
		Name string `json:"name"`
	}
	if err := a.do(ctx, http.MethodGet, nil, &rows, "vhosts"); err != nil {
		return nil, fmt.Errorf("list vhosts: %w", err)
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = r.Name
	}
	return names, nil
}

// errNotFound is a 404 from the API.
var errNotFound = errors.New("not found")

// do sends method to /api/<path...>, each element of path escaped as one
// segment (a vhost or a connection name may hold '/' and spaces), with in
// as its JSON body when not nil, and decodes a JSON answer into out when
// not nil. A status other than 2xx is an error holding the answer's text;
// a 404 wraps errNotFound.
func (a *httpAdmin) do(ctx context.Context, method string, in, out any, path ...string) error {
	segs := make([]string, len(path))
	for i, p := range path {
		segs[i] = url.PathEscape(p)
	}
	u := strings.TrimSuffix(a.base.String(), "/") + "/api/" + strings.Join(segs, "/")
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(a.user, a.pass)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodDelete && len(path) > 0 && path[0] == "connections" {
		req.Header.Set("X-Reason", "amqptest: forced close")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("management API not reachable (%w): enable the rabbitmq_management plugin and publish its port, "+
			"set %s, or install rabbitmqctl on this machine", err, EnvManagementURL)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		err := fmt.Errorf("%s %s: %s: %s", method, req.URL.Redacted(), resp.Status, bytes.TrimSpace(text))
		switch resp.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", errNotFound, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w (user %q needs the administrator tag)", err, a.user)
		}
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, req.URL.Redacted(), err)
	}
	return nil
}
